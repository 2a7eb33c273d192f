/**
 * The demo `backend` service as a process. Environment:
 *   TRACEHOUSE_DEMO_BACKEND_PORT           port [8081]
 *   TRACEHOUSE_DEMO_HOST                   address to listen on [0.0.0.0]
 *   TRACEHOUSE_DEMO_BACKEND_ERROR_PERCENT  share of price look-ups that fail, 0-100 [5]
 *   TRACEHOUSE_DEMO_BACKEND_MAX_DELAY_MS   longest simulated work [40]
 * plus the tracing variables of @tracehouse/instrumentation (TRACEHOUSE_RABBITMQ_URL, TRACEHOUSE_QUEUE, OTEL_*).
 */
import { readInteger, readPort, readString } from './env.js';
import { runService } from './run-service.js';

await runService({
  name: 'backend',
  traced: true,
  readConfig: () =>
    Object.freeze({
      host: readString(process.env, 'TRACEHOUSE_DEMO_HOST', '0.0.0.0'),
      port: readPort(process.env, 'TRACEHOUSE_DEMO_BACKEND_PORT', 8081),
      errorPercent: readInteger(process.env, 'TRACEHOUSE_DEMO_BACKEND_ERROR_PERCENT', 5, 0, 100),
      maxDelayMillis: readInteger(process.env, 'TRACEHOUSE_DEMO_BACKEND_MAX_DELAY_MS', 40, 0, 10_000),
    }),
  start: async (config) => {
    const { startBackend } = await import('./backend.js');
    return startBackend(config);
  },
});
