import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** A started HTTP server and the way to stop it. */
export interface RunningServer {
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  /** Stops accepting, lets requests in flight finish, and closes what is left after `graceMillis`. */
  stop(): Promise<void>;
}

export interface ListenOptions {
  readonly host: string;
  readonly port: number;
  /** How long requests in flight may take to finish on stop. */
  readonly graceMillis?: number;
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>;

export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
  res.end(payload);
}

/**
 * Listens with `handler`; a handler that throws answers 500 instead of
 * crashing the process.
 */
export async function listen(options: ListenOptions, handler: Handler): Promise<RunningServer> {
  // `http.createServer` is looked up on the module object at call time so that
  // the OpenTelemetry HTTP instrumentation, which patches that object, sees it.
  const server = http.createServer((req, res) => {
    handler(req, res).catch((error: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: error instanceof Error ? error.message : String(error) });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const graceMillis = options.graceMillis ?? 3_000;
  let stopping: Promise<void> | undefined;
  return {
    port,
    stop() {
      stopping ??= new Promise<void>((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), graceMillis);
        force.unref();
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      });
      return stopping;
    },
  };
}
