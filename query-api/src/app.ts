/**
 * The query API as a fastify plugin (`queryApi`): the Zipkin v2 read
 * endpoints under /api/v2, /health and /openapi.json, with its error and
 * not-found handlers, all encapsulated in the plugin's scope. `buildApp` gives
 * it an instance of its own; neither does I/O of its own or listens
 * (server.ts does), so tests drive them with `inject()`.
 */
import { timingSafeEqual } from 'node:crypto';
import fastifyCompress from '@fastify/compress';
import fastifyCors from '@fastify/cors';
import fastifySwagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Span } from '@tracehouse/model';
import { StorageError, type TraceReader } from '@tracehouse/storage';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyPluginAsync,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import { MAX_REQUEST_HEADER_BYTES, answerClientError } from './client-errors.js';
import type { QueryApiConfig } from './config.js';
import { ApiError, QueryTimeoutError, badParameter, missingParameter, type ErrorBody, type ErrorCode } from './errors.js';
import {
  normalizeTraceId,
  parseName,
  parseTagKey,
  parseTraceIds,
  checkIntegerParameters,
  parseTracesQuery,
  parseWindow,
} from './params.js';
import {
  AutocompleteValuesQuery,
  DependenciesQuery,
  ErrorRef,
  HealthSchema,
  ListOfDependencyLinksSchema,
  ListOfTracesRef,
  SHARED_SCHEMAS,
  ServiceNameQuery,
  StringListSchema,
  TraceIdParams,
  TraceManyQuery,
  TraceRef,
  tracesQuery,
} from './schemas.js';
import { mergeTrace } from './trace-merge.js';
import { STREAM_MIN_SPANS, spanCount, streamTrace, streamTraceList } from './json-stream.js';

/** The part of the configuration the app itself uses. */
export type AppConfig = Pick<
  QueryApiConfig,
  'defaultLimit' | 'maxLimit' | 'defaultLookbackMs' | 'maxLookbackMs' | 'queryTimeoutMs' | 'corsOrigins' | 'bearerToken'
>;

export interface QueryApiOptions {
  reader: TraceReader;
  config: AppConfig;
  /** Whether ClickHouse answers, for /health. Default: always true. */
  ping?: () => Promise<boolean>;
  /** Epoch milliseconds; tests pin it. Default: Date.now. */
  now?: () => number;
}

export interface BuildAppOptions extends QueryApiOptions {
  /** A pino logger (or any fastify-compatible one). Default: no logging. */
  logger?: FastifyBaseLogger;
}

export type QueryApp = FastifyInstance<
  import('node:http').Server,
  import('node:http').IncomingMessage,
  import('node:http').ServerResponse,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

/**
 * Rejects with QueryTimeoutError when `work` takes longer than `timeoutMs`. Given as a function,
 * `work` gets a signal that aborts with that error when the time is up, or with `cancel`'s
 * reason when `cancel` aborts first (the client went away): a read of several queries then
 * starts no more of them.
 */
export function withTimeout<T>(
  work: Promise<T> | ((signal: AbortSignal) => Promise<T>),
  timeoutMs: number,
  cancel?: AbortSignal,
): Promise<T> {
  const controller = new AbortController();
  const onCancel = (): void => controller.abort(cancel?.reason);
  if (cancel?.aborted === true) onCancel();
  else cancel?.addEventListener('abort', onCancel, { once: true });
  const running = typeof work === 'function' ? work(controller.signal) : work;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new QueryTimeoutError(timeoutMs);
      reject(error);
      controller.abort(error);
    }, timeoutMs);
    timer.unref();
  });
  return Promise.race([running, timeout]).finally(() => {
    clearTimeout(timer);
    cancel?.removeEventListener('abort', onCancel);
  });
}

const errorResponses = { 400: ErrorRef, 401: ErrorRef, 503: ErrorRef, 504: ErrorRef } as const;

/** Zipkin's server.compression.min-response-size: smaller answers are not worth compressing. */
const COMPRESS_MIN_BYTES = 2048;

const JSON_TYPE = 'application/json; charset=utf-8';

/** One trace: through the response schema when small, streamed when large (see json-stream.ts). */
function sendTrace(reply: FastifyReply, trace: Span[]): Span[] | FastifyReply {
  if (trace.length < STREAM_MIN_SPANS) return trace;
  return reply.type(JSON_TYPE).send(streamTrace(trace));
}

/** A list of traces, likewise. */
function sendTraces(reply: FastifyReply, traces: Span[][]): Span[][] | FastifyReply {
  if (spanCount(traces) < STREAM_MIN_SPANS) return traces;
  return reply.type(JSON_TYPE).send(streamTraceList(traces));
}

/**
 * The headers @fastify/cors adds to an answer other than a preflight, for the answers given
 * before its hook could run (queryApiFrameworkErrors).
 */
function addCorsHeaders(origins: AppConfig['corsOrigins'], request: FastifyRequest, reply: FastifyReply): void {
  if (origins === 'off') return;
  if (origins === '*') {
    void reply.header('access-control-allow-origin', '*');
    return;
  }
  void reply.header('vary', 'Origin');
  const origin = request.headers.origin;
  if (origin !== undefined && origins.includes(origin)) void reply.header('access-control-allow-origin', origin);
}

function bearerMatches(header: string | undefined, token: string): boolean {
  if (header === undefined) return false;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (match === null) return false;
  const given = Buffer.from(match[1] as string);
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The 404 body for a request no route takes. */
function notFoundBody(method: string, url: string): ErrorBody {
  const path = url.split('?')[0] ?? '';
  // Zipkin's HTTP senders post here by default: say where spans go instead.
  const hint =
    method === 'POST' && path.replace(/\/+$/, '').endsWith('/api/v2/spans')
      ? ': this API only reads; tracehouse takes spans from its RabbitMQ queue (a Zipkin RabbitMQ sender, or @tracehouse/instrumentation)'
      : '';
  return { code: 'NOT_FOUND', message: `no route ${method} ${path}${hint}` };
}

/** Maps any error a handler or fastify raised to a status and a documented body. */
function toErrorResponse(error: FastifyError | Error, log: FastifyBaseLogger): { status: number; body: ErrorBody } {
  if (error instanceof ApiError) return { status: error.statusCode, body: error.toBody() };
  const validation = (error as FastifyError).validation;
  if (validation !== undefined && validation.length > 0) {
    const first = validation[0] as { instancePath?: string; params?: Record<string, unknown>; message?: string };
    const missing = first.params?.['missingProperty'];
    if (typeof missing === 'string') return { status: 400, body: missingParameter(missing).toBody() };
    const parameter = (first.instancePath ?? '').replace(/^\//, '').split('/')[0] || 'query';
    return { status: 400, body: badParameter(parameter, first.message ?? 'is invalid').toBody() };
  }
  if (error instanceof QueryTimeoutError) {
    log.warn({ err: error }, 'query timed out');
    return { status: 504, body: { code: 'QUERY_TIMEOUT', message: error.message } };
  }
  if (error instanceof StorageError) {
    if (error.code === 'too_large') {
      log.warn({ err: error }, 'read refused: too large');
      // Storage's message says how many traces and how large a read may be; nothing of ClickHouse's own.
      const message = `${error.message}: ask for fewer (limit, lookback, traceIds) or raise TRACEHOUSE_QUERY_MAX_RESULT_BYTES`;
      return { status: 400, body: { code: 'RESULT_TOO_LARGE', message } };
    }
    log.error({ err: error, storageCode: error.code }, 'storage error');
    if (error.code === 'timeout') return { status: 504, body: { code: 'QUERY_TIMEOUT', message: 'the query took too long' } };
    if (error.code === 'connection' || error.code === 'overloaded' || error.code === 'closed' || error.code === 'auth') {
      return { status: 503, body: { code: 'STORAGE_UNAVAILABLE', message: 'the trace store is unavailable; try again' } };
    }
    if (error.code === 'bad_input') return { status: 400, body: { code: 'INVALID_PARAMETER', message: 'a parameter cannot be used in a query' } };
    return { status: 500, body: { code: 'INTERNAL', message: 'the trace store failed to answer' } };
  }
  const statusCode = (error as FastifyError).statusCode;
  if (statusCode !== undefined && statusCode >= 400 && statusCode < 500) {
    return { status: statusCode, body: { code: statusCode === 404 ? 'NOT_FOUND' : 'INVALID_PARAMETER', message: error.message } };
  }
  log.error({ err: error }, 'unexpected error');
  return { status: 500, body: { code: 'INTERNAL', message: 'internal error' } };
}

/**
 * fastify's `frameworkErrors` for a server serving the query API under `prefix`. fastify's
 * router refuses a URL with a malformed percent-escape (FST_ERR_BAD_URL) or a path parameter
 * longer than maxParamLength (FST_ERR_MAX_PARAM_LENGTH, 100 characters) before any route,
 * hook or error handler runs, and answers in its own shape. This answers in the API's: on
 * `/trace/{traceId}` (the only route with a path parameter) a 400 INVALID_PARAMETER naming
 * traceId, on any other path NOT_FOUND (no route holds a `%` or a segment that long), with
 * the CORS headers the other answers carry. The bearer token is not checked: these answers
 * reveal nothing.
 */
export function queryApiFrameworkErrors(options: {
  config: Pick<AppConfig, 'corsOrigins'>;
  prefix?: string;
}): (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => void {
  const prefix = (options.prefix ?? '').replace(/\/+$/, '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  // The raw URL, as the router saw it: ignoreTrailingSlash accepts one trailing slash.
  const tracePath = new RegExp(`^${prefix}/api/v2/trace/[^/?]+/?(?:\\?|$)`);
  return (error, request, reply) => {
    let status: number;
    let body: ErrorBody;
    if (error.code === 'FST_ERR_BAD_URL' || error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
      if (tracePath.test(request.url)) {
        const refused =
          error.code === 'FST_ERR_BAD_URL'
            ? badParameter('traceId', 'is not valid percent-encoding')
            : badParameter('traceId', 'a trace id has at most 32 hex characters');
        status = refused.statusCode;
        body = refused.toBody();
      } else {
        status = 404;
        body = notFoundBody(request.method, request.url);
      }
    } else {
      ({ status, body } = toErrorResponse(error, request.log));
    }
    addCorsHeaders(options.config.corsOrigins, request, reply);
    void reply.status(status).send(body);
  };
}

/**
 * Everything the query API serves, registered on `instance`. Set
 * `routerOptions.ignoreTrailingSlash`, `return503OnClosing: false` and
 * `frameworkErrors` (queryApiFrameworkErrors) on the server, as buildApp does:
 * the plugin cannot set instance options.
 */
async function registerQueryApi(instance: FastifyInstance, options: QueryApiOptions): Promise<void> {
  const { reader, config } = options;
  const now = options.now ?? Date.now;
  const ping = options.ping ?? (() => Promise.resolve(true));
  const timed = <T>(work: Promise<T>): Promise<T> => withTimeout(work, config.queryTimeoutMs);
  // A read of several queries (a search, trace ids, dependency passes): none starts, and the one
  // running is cancelled, once the time is up or the client has gone.
  const stoppable = <T>(request: FastifyRequest, read: (signal: AbortSignal) => Promise<T>): Promise<T> =>
    withTimeout(read, config.queryTimeoutMs, request.signal);
  const app = instance.withTypeProvider<TypeBoxTypeProvider>();

  // From close() on, requests still arriving on open connections get a documented 503 and the
  // connection is closed; in-flight ones finish.
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.addHook('onRequest', async (_request, reply) => {
    if (!closing) return;
    await reply
      .status(503)
      .header('connection', 'close')
      .send({ code: 'SHUTTING_DOWN' satisfies ErrorCode, message: 'the server is shutting down; try again' });
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    // The client went away and the read it asked for stopped (request.signal): nobody gets this
    // answer, and nothing failed. 499 as nginx logs it.
    if (request.signal.aborted && (error as unknown) === request.signal.reason) {
      request.log.info('client closed the connection; its read was stopped');
      return reply.status(499).send();
    }
    const { status, body } = toErrorResponse(error, request.log);
    return reply.status(status).send(body);
  });
  app.setNotFoundHandler((request, reply) => reply.status(404).send(notFoundBody(request.method, request.url)));

  // As Zipkin's server (server.compression: application/json, min-response-size 2048): answers of
  // 2 KiB or more go out compressed to a client that accepts it. Registered before the routes: it
  // hooks each route as it is added, in this scope only. A host server that already registered
  // @fastify/compress keeps its own settings (a second registration would fail on its decorator).
  // The API takes no request bodies, so nothing is decompressed.
  if (!app.hasReplyDecorator('compress')) {
    await app.register(fastifyCompress, { threshold: COMPRESS_MIN_BYTES, globalDecompression: false });
  }

  if (config.corsOrigins !== 'off') {
    await app.register(fastifyCors, {
      origin: config.corsOrigins === '*' ? '*' : [...config.corsOrigins],
      methods: ['GET', 'HEAD', 'OPTIONS'],
      allowedHeaders: ['Authorization', 'Content-Type'],
    });
  }

  const token = config.bearerToken;
  if (token !== undefined) {
    // The matched route, not the URL: under a prefix /health is `${prefix}/health`.
    const healthRoute = `${app.prefix}/health`;
    app.addHook('onRequest', async (request, reply) => {
      if (request.method === 'OPTIONS' || request.routeOptions.url === healthRoute) return;
      if (!bearerMatches(request.headers.authorization, token)) {
        await reply
          .status(401)
          .header('www-authenticate', 'Bearer')
          .send({ code: 'UNAUTHORIZED', message: 'missing or wrong bearer token' });
      }
    });
  }

  for (const schema of SHARED_SCHEMAS) app.addSchema(schema);

  await app.register(fastifySwagger, {
    // Shared schemas keep their names (Span, Trace, ...) under components/schemas.
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json['$id'] === 'string' ? json['$id'] : `def-${i}`) },
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'tracehouse query API (Zipkin v2)',
        version: '2',
        description:
          "Zipkin's v2 read API over traces stored in ClickHouse. Errors answer `{ code, message, parameter? }`; see the Error schema.",
      },
      // The bearer scheme only when a token is needed, and then for every route but /health.
      ...(token === undefined
        ? {}
        : { components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } }, security: [{ bearer: [] }] }),
    },
  });

  app.get('/openapi.json', { schema: { hide: true } }, () => app.swagger());

  app.get(
    '/health',
    {
      schema: {
        description: 'Liveness, and whether ClickHouse answers.',
        response: { 200: HealthSchema, 503: HealthSchema },
        // No token needed here: overrides the document's bearer requirement.
        ...(token === undefined ? {} : { security: [] }),
      },
    },
    async (_request, reply) => {
      const up = await ping().catch(() => false);
      return reply.status(up ? 200 : 503).send({ status: up ? 'UP' : 'DOWN', clickhouse: up ? 'UP' : 'DOWN' });
    },
  );

  await app.register(
    (api: QueryApp, _opts, done) => {
      // Before the schema coerces them: ajv reads "0x10" or "1e1" as a number, Zipkin's Long.valueOf does not.
      api.addHook('preValidation', (request, _reply, done) => {
        try {
          checkIntegerParameters(request.query);
          done();
        } catch (error) {
          done(error as Error);
        }
      });
      api.get(
        '/services',
        {
          schema: {
            description: 'Returns a list of all service names associated with span endpoints.',
            response: { 200: StringListSchema, ...errorResponses },
          },
        },
        () => timed(reader.getServiceNames()),
      );

      api.get(
        '/spans',
        {
          schema: {
            description: 'Get all the span names recorded by a particular service.',
            querystring: ServiceNameQuery,
            response: { 200: StringListSchema, ...errorResponses },
          },
        },
        (request) => timed(reader.getSpanNames(parseName('serviceName', request.query.serviceName, { required: true }))),
      );

      api.get(
        '/remoteServices',
        {
          schema: {
            description: 'Get all the remote service names recorded by a particular service.',
            querystring: ServiceNameQuery,
            response: { 200: StringListSchema, ...errorResponses },
          },
        },
        (request) =>
          timed(reader.getRemoteServiceNames(parseName('serviceName', request.query.serviceName, { required: true }))),
      );

      api.get(
        '/traces',
        {
          schema: {
            description:
              'Traces matching the filters, newest first, nearest to endTs within lookback. endTs and lookback are milliseconds; durations are microseconds.',
            querystring: tracesQuery(config),
            response: { 200: ListOfTracesRef, ...errorResponses },
          },
        },
        async (request, reply) => {
          const query = parseTracesQuery(request.query, config, now());
          const traces = await stoppable(request, (signal) => reader.getTraces(query, { signal }));
          return sendTraces(reply, traces.map((trace: Span[]) => mergeTrace(trace)));
        },
      );

      api.get(
        '/trace/:traceId',
        {
          schema: {
            description: 'The spans of one trace, client and server halves of shared spans merged as Zipkin does.',
            params: TraceIdParams,
            response: { 200: TraceRef, 404: ErrorRef, ...errorResponses },
          },
        },
        async (request, reply) => {
          // Trimmed first, as Zipkin's getTrace does (and /traceMany does for each id).
          const traceId = normalizeTraceId('traceId', request.params.traceId.trim());
          const spans = await stoppable(request, (signal) => reader.getTrace(traceId, { signal }));
          if (spans.length === 0) {
            throw new ApiError({ statusCode: 404, code: 'TRACE_NOT_FOUND', message: `trace ${traceId} not found` });
          }
          return sendTrace(reply, mergeTrace(spans));
        },
      );

      api.get(
        '/traceMany',
        {
          schema: {
            description: 'The traces with the given ids, in any order; empty when none match. Fewer than two ids is a bad request.',
            querystring: TraceManyQuery,
            response: { 200: ListOfTracesRef, ...errorResponses },
          },
        },
        async (request, reply) => {
          const ids = parseTraceIds(request.query.traceIds);
          const traces = await stoppable(request, (signal) => reader.getTraceMany(ids, { signal }));
          return sendTraces(reply, traces.map((trace: Span[]) => mergeTrace(trace)));
        },
      );

      api.get(
        '/dependencies',
        {
          schema: {
            description: 'Service links derived from parent/child spans across services in the window.',
            querystring: DependenciesQuery,
            response: { 200: ListOfDependencyLinksSchema, ...errorResponses },
          },
        },
        (request) => {
          const window = parseWindow(request.query, config, now());
          return stoppable(request, (signal) => reader.getDependencies(window, { signal }));
        },
      );

      api.get(
        '/autocompleteKeys',
        {
          schema: {
            description: 'Tag keys offered for value autocompletion in annotationQuery.',
            response: { 200: StringListSchema, ...errorResponses },
          },
        },
        () => timed(reader.getAutocompleteKeys()),
      );

      api.get(
        '/autocompleteValues',
        {
          schema: {
            description: 'Known values of Span.tags for an autocomplete key; empty when none or the key is not configured.',
            querystring: AutocompleteValuesQuery,
            response: { 200: StringListSchema, ...errorResponses },
          },
        },
        (request) => timed(reader.getAutocompleteValues(parseTagKey('key', request.query.key))),
      );
      done();
    },
    { prefix: '/api/v2' },
  );
}

/**
 * The query API as an ordinary (encapsulated) plugin: a `prefix` applies, and
 * its hooks, error and not-found handlers, CORS and OpenAPI stay inside its scope.
 */
export const queryApi: FastifyPluginAsync<QueryApiOptions> = registerQueryApi;

// buildApp's copy skips encapsulation so its handlers answer for the whole instance
// (unknown routes included). A function of its own: fastify-plugin marks the function it is given.
const queryApiOnInstance = fastifyPlugin((instance: FastifyInstance, options: QueryApiOptions) => registerQueryApi(instance, options), {
  fastify: '5.x',
  name: '@tracehouse/query-api',
});

/** A fastify instance serving only the query API. */
export async function buildApp(options: BuildAppOptions): Promise<QueryApp> {
  const app = Fastify({
    ...(options.logger === undefined ? { logger: false } : { loggerInstance: options.logger }),
    // Zipkin clients (and the Zipkin UI) do not expect a trailing-slash 404.
    routerOptions: { ignoreTrailingSlash: true },
    // fastify's own 503 while closing has another body shape; the plugin answers in ours.
    return503OnClosing: false,
    // So do the router's refusals of a malformed or over-long trace id in the path.
    frameworkErrors: queryApiFrameworkErrors({ config: options.config }),
    // Room for the longest parameters the API accepts, and its own answer beyond.
    http: { maxHeaderSize: MAX_REQUEST_HEADER_BYTES },
    clientErrorHandler: answerClientError,
  }).withTypeProvider<TypeBoxTypeProvider>() as QueryApp;
  const { logger: _logger, ...pluginOptions } = options;
  await app.register(queryApiOnInstance, pluginOptions);
  return app;
}
