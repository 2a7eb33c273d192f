/**
 * The demo `frontend` service as a process. Environment:
 *   TRACEHOUSE_DEMO_FRONTEND_PORT  port [8080]
 *   TRACEHOUSE_DEMO_HOST           address to listen on [0.0.0.0]
 *   TRACEHOUSE_DEMO_BACKEND_URL    the backend [http://127.0.0.1:8081/]
 * plus the tracing variables of @tracehouse/instrumentation (TRACEHOUSE_RABBITMQ_URL, TRACEHOUSE_QUEUE, OTEL_*).
 */
import { readHttpUrl, readPort, readString } from './env.js';
import { runService } from './run-service.js';

await runService({
  name: 'frontend',
  traced: true,
  readConfig: () =>
    Object.freeze({
      host: readString(process.env, 'TRACEHOUSE_DEMO_HOST', '0.0.0.0'),
      port: readPort(process.env, 'TRACEHOUSE_DEMO_FRONTEND_PORT', 8080),
      backendUrl: readHttpUrl(process.env, 'TRACEHOUSE_DEMO_BACKEND_URL', 'http://127.0.0.1:8081/'),
      backendTimeoutMillis: 5_000,
    }),
  start: async (config) => {
    const { startFrontend } = await import('./frontend.js');
    return startFrontend(config);
  },
});
