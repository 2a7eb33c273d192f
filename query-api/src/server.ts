/**
 * The running query API: opens the ClickHouse store (in the background while
 * ClickHouse cannot be reached), builds the app, listens, and closes both
 * gracefully (in-flight requests finish, new ones get 503).
 */
import { ClickHouseStore } from '@tracehouse/storage';
import type { Logger } from 'pino';
import { buildApp, type QueryApp } from './app.js';
import { BackgroundStore } from './background-store.js';
import type { QueryApiConfig } from './config.js';

export interface QueryServer {
  readonly app: QueryApp;
  /** The bound address, e.g. http://127.0.0.1:9411. */
  readonly url: string;
  /** Stops accepting connections, lets in-flight requests finish, closes the store. Idempotent. */
  stop(): Promise<void>;
}

export interface StartServerOptions {
  config: QueryApiConfig;
  logger: Logger;
  /**
   * Called once if the store, opening in the background, fails for good (a
   * ClickHouse that came up refusing the credentials). The bin logs it and
   * exits 1. A failure found at start rejects startServer instead.
   */
  onFatal?: (error: unknown, server: QueryServer) => void;
}

export async function startServer(options: StartServerOptions): Promise<QueryServer> {
  const { config, logger } = options;
  const storeLogger = logger.child({ component: 'storage' });
  // A failure for good may come while the app is still being built: it is reported once the server exists.
  const started: { server?: QueryServer; fatal?: { error: unknown } } = {};
  const store = await BackgroundStore.start({
    open: () =>
      ClickHouseStore.open({
        url: config.clickhouseUrl,
        database: config.clickhouseDatabase,
        queryTimeoutMs: config.queryTimeoutMs,
        maxResultBytes: config.maxResultBytes,
        strictTraceId: config.strictTraceId,
        ...(config.autocompleteKeys === undefined ? {} : { autocompleteKeys: config.autocompleteKeys }),
        // The store adds its own component to what it logs.
        logger,
      }),
    logger: storeLogger,
    onFatal: (error) => {
      storeLogger.fatal({ err: error }, 'the ClickHouse store cannot be opened');
      if (started.server === undefined) started.fatal ??= { error };
      else options.onFatal?.(error, started.server);
    },
  });
  let app: QueryApp;
  try {
    app = await buildApp({
      reader: store,
      config,
      logger: logger.child({ component: 'http' }),
      ping: () => store.ping(),
    });
    await app.listen({ port: config.port, host: config.host });
  } catch (error) {
    await store.close();
    throw error;
  }
  const address = app.server.address();
  const url =
    address !== null && typeof address === 'object'
      ? `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`
      : String(address);
  logger.info({ url, database: config.clickhouseDatabase, serverVersion: store.store?.serverVersion ?? null }, 'query API listening');

  let stopping: Promise<void> | undefined;
  const server: QueryServer = {
    app,
    url,
    stop() {
      stopping ??= (async () => {
        try {
          await app.close();
        } finally {
          await store.close();
        }
        logger.info('query API stopped');
      })();
      return stopping;
    },
  };
  started.server = server;
  if (started.fatal !== undefined) options.onFatal?.(started.fatal.error, server);
  return server;
}

/**
 * Stops `server` on SIGTERM or SIGINT, then exits. A second signal, or a close
 * that takes longer than `graceMs`, exits at once.
 */
export function stopOnSignals(server: QueryServer, logger: Logger, graceMs = 10_000): void {
  let received = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (received) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    received = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      logger.error({ graceMs }, 'graceful shutdown timed out: exiting');
      process.exit(1);
    }, graceMs);
    force.unref();
    server.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'error while shutting down');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
