#!/usr/bin/env node
/**
 * tracehouse-collector: consumes spans from RabbitMQ into ClickHouse.
 * Configured by environment variables only (see --help).
 */
import { pino } from 'pino';
import { Collector } from './collector.js';
import { CONFIG_HELP, ConfigError, parseConfig, type CollectorConfig } from './config.js';

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log(`Usage: tracehouse-collector\n\n${CONFIG_HELP}`);
  process.exit(0);
}

let config: CollectorConfig;
try {
  config = parseConfig(process.env);
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(`tracehouse-collector: invalid configuration: ${error.message}`);
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
const logger = pino({ level: config.logLevel, base: { service: 'tracehouse-collector', pid: process.pid } }, logDestination);
const collector = new Collector({ config, logger });

let signals = 0;
function onSignal(signal: NodeJS.Signals): void {
  signals++;
  if (signals > 1) {
    logger.warn({ signal }, 'second signal: exiting now');
    process.exit(130);
  }
  logger.info({ signal }, 'shutting down');
  // stop() is bounded by the shutdown timeout; this is the backstop if something hangs anyway.
  setTimeout(() => {
    logger.error('shutdown did not finish in time; exiting');
    process.exit(1);
  }, config.shutdownTimeoutMs + 5_000).unref();
  collector.stop().then(
    () => process.exit(0),
    (error: unknown) => {
      logger.error({ err: error }, 'shutdown failed');
      process.exit(1);
    },
  );
}
process.on('SIGTERM', onSignal);
process.on('SIGINT', onSignal);
process.on('unhandledRejection', (reason) => {
  logger.error({ err: reason }, 'unhandled rejection');
});

// done() rejects when the collector gives up by itself (a span store that can never open, a queue RabbitMQ refuses).
collector
  .start()
  .then(() => collector.done())
  .catch((error: unknown) => {
    const portTaken = (error as { code?: unknown } | undefined)?.code === 'EADDRINUSE';
    const hint = portTaken ? ' (the admin port is taken: set TRACEHOUSE_COLLECTOR_PORT, or stop what holds it)' : '';
    logger.fatal({ err: error }, `tracehouse-collector failed: ${error instanceof Error ? error.message : String(error)}${hint}`);
    process.exit(1);
  });
