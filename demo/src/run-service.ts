import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { startTracing, TracingConfigError, type TracingHandle } from '@tracehouse/instrumentation';
import { DemoConfigError } from './env.js';
import { createLog, type Log } from './log.js';
import type { RunningServer } from './http-server.js';
import { spanNameFor } from './route-name.js';

export interface ServiceMainOptions<C> {
  /** Component name in log lines, and the service name traces carry when `traced`. */
  readonly name: string;
  /** Whether the process is instrumented with `startTracing`. */
  readonly traced: boolean;
  /** Reads the configuration; a DemoConfigError stops the process with exit code 2 before anything starts. */
  readonly readConfig: () => C;
  readonly start: (config: C, log: Log) => Promise<RunningServer>;
  /** Bound for a graceful stop, after which the process exits anyway. */
  readonly stopTimeoutMillis?: number;
}

/**
 * Runs one demo process: configuration, tracing (before any HTTP module is
 * used, so that the HTTP auto-instrumentation sees every request), the
 * server, and a graceful stop on SIGTERM or SIGINT that flushes the spans.
 */
export async function runService<C>(options: ServiceMainOptions<C>): Promise<void> {
  const log = createLog(options.name);
  let config: C;
  try {
    config = options.readConfig();
  } catch (error) {
    if (error instanceof DemoConfigError) {
      process.stderr.write(`${options.name}: bad configuration: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }

  const serviceName = process.env['OTEL_SERVICE_NAME']?.trim() || options.name;
  let tracing: TracingHandle | undefined;
  try {
    tracing = options.traced
      ? startTracing({
          serviceName,
          instrumentations: [
            new HttpInstrumentation({
              ignoreIncomingRequestHook: (req) => req.url === '/health',
              applyCustomAttributesOnSpan: (span, request) => span.updateName(spanNameFor(request)),
            }),
          ],
          // This process stops its server first and then flushes; see stop() below.
          shutdownSignals: [],
        })
      : undefined;
  } catch (error) {
    if (error instanceof TracingConfigError) {
      process.stderr.write(`${options.name}: bad tracing configuration: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  if (tracing !== undefined) log(`tracing on as service "${serviceName}"`);

  const server = await options.start(config, log);
  log(`listening on port ${server.port}`);

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping`);
    const deadline = setTimeout(() => {
      log('stop took too long; exiting');
      process.exit(1);
    }, options.stopTimeoutMillis ?? 10_000);
    deadline.unref();
    server
      .stop()
      .then(() => tracing?.shutdown())
      .then(
        () => {
          log('stopped');
          process.exit(0);
        },
        (error: unknown) => {
          log(`stop failed: ${error instanceof Error ? error.message : String(error)}`);
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
