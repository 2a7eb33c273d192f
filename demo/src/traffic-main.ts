/**
 * The demo traffic generator as a process (not traced: it plays the user).
 * Environment:
 *   TRACEHOUSE_DEMO_TARGET_URL          the frontend [http://127.0.0.1:8080/]
 *   TRACEHOUSE_DEMO_TRAFFIC_INTERVAL_MS mean pause between requests, 100-60000 [750]
 *   TRACEHOUSE_DEMO_TRAFFIC_PORT        port of its /health [8082]
 *   TRACEHOUSE_DEMO_HOST                address to listen on [0.0.0.0]
 */
import { readHttpUrl, readInteger, readPort, readString } from './env.js';
import { runService } from './run-service.js';

await runService({
  name: 'traffic',
  traced: false,
  readConfig: () =>
    Object.freeze({
      targetUrl: readHttpUrl(process.env, 'TRACEHOUSE_DEMO_TARGET_URL', 'http://127.0.0.1:8080/'),
      intervalMillis: readInteger(process.env, 'TRACEHOUSE_DEMO_TRAFFIC_INTERVAL_MS', 750, 100, 60_000),
      requestTimeoutMillis: 5_000,
      host: readString(process.env, 'TRACEHOUSE_DEMO_HOST', '0.0.0.0'),
      port: readPort(process.env, 'TRACEHOUSE_DEMO_TRAFFIC_PORT', 8082),
    }),
  start: async (config, log) => {
    const { startTraffic } = await import('./traffic.js');
    return startTraffic({ ...config, log });
  },
});
