#!/usr/bin/env node
// tracehouse-query-api: the Zipkin v2 query API over ClickHouse.
import { pino } from 'pino';
import { CONFIG_HELP, ConfigError, parseConfig, type QueryApiConfig } from './config.js';
import { startServer, stopOnSignals } from './server.js';

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log(`Usage: tracehouse-query-api\n\n${CONFIG_HELP}`);
  process.exit(0);
}

let config: QueryApiConfig;
try {
  config = parseConfig(process.env);
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(`tracehouse-query-api: ${error.message}`);
    process.exit(2);
  }
  throw error;
}

// Synchronous writes to stdout, as console.log writes to a pipe: pino's
// asynchronous default flushes at process.exit with a loop that retries a
// broken pipe (EPIPE) forever, so a dead log reader would keep the process from
// ever exiting. A reader gone (EPIPE) or not reading a non-blocking stdout
// (EAGAIN, not retried) costs log lines, never the process.
const logDestination = pino.destination({ dest: 1, sync: true, retryEAGAIN: () => false });
logDestination.on('error', () => undefined);
const logger = pino({ name: 'tracehouse-query-api', level: config.logLevel }, logDestination);
try {
  const server = await startServer({
    config,
    logger,
    // ClickHouse came up with something retrying cannot fix (startServer logged it).
    onFatal: (_error, failed) => void failed.stop().finally(() => process.exit(1)),
  });
  stopOnSignals(server, logger);
} catch (error) {
  const portTaken = (error as { code?: unknown } | undefined)?.code === 'EADDRINUSE';
  const hint = portTaken ? `: port ${config.port} on ${config.host} is taken (set TRACEHOUSE_QUERY_PORT, or stop what holds it)` : '';
  logger.fatal({ err: error }, `query API failed to start${hint}`);
  process.exit(1);
}
