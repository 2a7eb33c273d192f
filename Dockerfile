# syntax=docker/dockerfile:1
# The tracehouse images, one target per deployable, sharing one build stage.
# Build from the repository root:
#   docker build --target collector -t tracehouse-collector .
#   docker build --target query-api -t tracehouse-query-api .
#   docker build --target demo -t tracehouse-demo .
# The demo image holds frontend, backend and traffic; the command picks which:
#   docker run tracehouse-demo node demo/dist/backend-main.js
ARG NODE_IMAGE=node:22-bookworm-slim

# --- manifests: npm ci needs every workspace's manifest to match the lockfile
FROM ${NODE_IMAGE} AS manifests
WORKDIR /app
COPY package.json package-lock.json ./
COPY model/package.json model/
COPY storage/package.json storage/
COPY instrumentation/package.json instrumentation/
COPY collector/package.json collector/
COPY query-api/package.json query-api/
COPY demo/package.json demo/
COPY test/package.json test/

# --- build: dev dependencies, tsc -b of every deployable, once --------------
FROM manifests AS build
# No install scripts: only TypeScript and type packages are needed to build.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.base.json tsconfig.json ./
COPY model/ model/
COPY storage/ storage/
COPY instrumentation/ instrumentation/
COPY collector/ collector/
COPY query-api/ query-api/
COPY demo/ demo/
RUN npx tsc -b collector query-api demo \
 && find */dist \
      \( -name '*.test.*' -o -name '*.tsbuildinfo' -o -path '*/bench*' \) -prune -exec rm -rf {} +

# --- runtime targets: production dependencies of one deployable, non-root ---
# The files stay root-owned and read-only to the process.
FROM manifests AS collector
ENV NODE_ENV=production
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund -w @tracehouse/collector \
 && npm cache clean --force
COPY --from=build /app/model/dist model/dist
COPY --from=build /app/storage/dist storage/dist
COPY --from=build /app/collector/dist collector/dist
USER node
ENV TRACEHOUSE_COLLECTOR_PORT=9412
EXPOSE 9412
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+process.env.TRACEHOUSE_COLLECTOR_PORT+'/ready',{signal:AbortSignal.timeout(3000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
CMD ["node", "collector/dist/bin.js"]

FROM manifests AS query-api
ENV NODE_ENV=production
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund -w @tracehouse/query-api \
 && npm cache clean --force
COPY --from=build /app/model/dist model/dist
COPY --from=build /app/storage/dist storage/dist
COPY --from=build /app/query-api/dist query-api/dist
USER node
ENV TRACEHOUSE_QUERY_PORT=9411
EXPOSE 9411
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+process.env.TRACEHOUSE_QUERY_PORT+'/health',{signal:AbortSignal.timeout(3000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
CMD ["node", "query-api/dist/bin.js"]

FROM manifests AS demo
ENV NODE_ENV=production
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund -w @tracehouse/demo \
 && npm cache clean --force
COPY --from=build /app/model/dist model/dist
COPY --from=build /app/instrumentation/dist instrumentation/dist
COPY --from=build /app/demo/dist demo/dist
USER node
ENV TRACEHOUSE_DEMO_HOST=0.0.0.0
EXPOSE 8080 8081 8082
# Checks the frontend by default; docker-compose.yml checks each service on its own port.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "demo/dist/healthcheck.js", "http://127.0.0.1:8080/health"]
STOPSIGNAL SIGTERM
CMD ["node", "demo/dist/frontend-main.js"]
