/**
 * One call that sets up tracing for a Node.js service on
 * `@opentelemetry/sdk-node`: W3C trace-context + B3 propagation, optional
 * auto-instrumentations, a batch span processor feeding the RabbitMQ
 * exporter, and a flush on SIGTERM/SIGINT bounded by a timeout.
 */
import * as nodeModule from 'node:module';
import { diag, type TextMapPropagator } from '@opentelemetry/api';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { B3InjectEncoding, B3Propagator } from '@opentelemetry/propagator-b3';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeSDK, type NodeSDKConfiguration } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { parseTracingConfig, type TracingConfig, type TracingOptions } from './config.js';
import type { ExporterStats } from './exporter-stats.js';
import { RabbitMqSpanExporter, type RabbitMqSpanExporterOptions } from './rabbitmq-span-exporter.js';

export interface StartTracingOptions extends TracingOptions {
  /** Instrumentations to register (e.g. `new HttpInstrumentation()`). */
  instrumentations?: (Instrumentation | Instrumentation[])[];
  /**
   * Also register `@opentelemetry/auto-instrumentations-node` (an optional peer
   * dependency, loaded only when asked for): `true`, or its per-instrumentation
   * config. When it is not installed, a warning is logged and tracing starts without it.
   */
  autoInstrumentations?: boolean | Record<string, unknown>;
  /** Exporter settings beyond the config (resource tags, reconnect delays, meter provider...). */
  exporter?: Omit<
    RabbitMqSpanExporterOptions,
    'rabbitmqUrl' | 'queue' | 'encoding' | 'maxMessageBytes' | 'maxBufferedSpans' | 'shutdownTimeoutMillis'
  >;
  /** Propagator; default W3C trace-context + W3C baggage + B3 (extracts single and multi header, injects multi). */
  propagator?: TextMapPropagator;
  /** Flush and shut down on these signals, then let the signal take its default course. Default `['SIGTERM', 'SIGINT']`; `[]` to leave signals to the app. */
  shutdownSignals?: NodeJS.Signals[];
  /**
   * Use this exporter instead of the RabbitMQ one (benchmarks, tests, or
   * another backend); everything else stays the same.
   */
  spanExporter?: SpanExporter;
  /**
   * Metric readers for sdk-node's meter provider (e.g. a Prometheus exporter).
   * The exporter's own counters are registered on the global meter provider
   * right after the SDK starts, so readers given here see them.
   */
  metricReaders?: NodeSDKConfiguration['metricReaders'];
  /** Extra span processors run before the exporter's batch processor. */
  spanProcessors?: SpanProcessor[];
  /**
   * Register OpenTelemetry's ESM loader hook (import-in-the-middle) so that
   * ES modules imported after this call, including `node:http`, can be
   * instrumented. Default true; a CommonJS-only app may turn it off.
   */
  esmLoaderHook?: boolean;
  /** Environment to read; default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
}

export interface TracingHandle {
  readonly config: TracingConfig;
  /** The exporter, or undefined when tracing is disabled (`OTEL_SDK_DISABLED`) or another exporter was given. */
  readonly exporter: RabbitMqSpanExporter | undefined;
  /** The exporter's counters (all zero when disabled). */
  stats(): ExporterStats;
  /** Exports what the SDK holds and waits (bounded) for the broker to confirm it. Never rejects. */
  forceFlush(): Promise<void>;
  /** Flushes and stops tracing; runs once, bounded by the shutdown timeout, never rejects. */
  shutdown(): Promise<void>;
}

type Instrumentation = Exclude<NonNullable<NodeSDKConfiguration['instrumentations']>[number], unknown[]>;

const logger = diag.createComponentLogger({ namespace: '@tracehouse/instrumentation/start-tracing' });

const EMPTY_STATS: ExporterStats = Object.freeze({
  spansExported: 0,
  spansDropped: Object.freeze({ buffer_full: 0, too_large: 0, conversion_error: 0, shutdown: 0 }),
  messagesPublished: 0,
  publishFailures: 0,
  bufferedSpans: 0,
  bufferedBytes: 0,
  connected: false,
});

function defaultPropagator(): TextMapPropagator {
  return new CompositePropagator({
    propagators: [
      new W3CTraceContextPropagator(),
      new W3CBaggagePropagator(),
      // Extracts both B3 forms; injects the multi-header form Brave and Sleuth send.
      new B3Propagator({ injectEncoding: B3InjectEncoding.MULTI_HEADER }),
    ],
  });
}

function loadAutoInstrumentations(config: true | Record<string, unknown>): Instrumentation[] {
  const require = nodeModule.createRequire(import.meta.url);
  let module: { getNodeAutoInstrumentations: (config?: Record<string, unknown>) => Instrumentation[] };
  try {
    module = require('@opentelemetry/auto-instrumentations-node') as typeof module;
  } catch (error) {
    logger.warn(
      'autoInstrumentations requested but @opentelemetry/auto-instrumentations-node is not installed; continuing without it',
      error instanceof Error ? error.message : error,
    );
    return [];
  }
  return module.getNodeAutoInstrumentations(config === true ? {} : config);
}

let esmHookRegistered = false;

/** Registers the import-in-the-middle loader once per process (Node >= 20.6 has `module.register`). */
function registerEsmLoaderHook(): void {
  if (esmHookRegistered) return;
  esmHookRegistered = true;
  if (typeof nodeModule.register !== 'function') {
    logger.warn('module.register is not available: ES modules will not be instrumented');
    return;
  }
  try {
    nodeModule.register('@opentelemetry/instrumentation/hook.mjs', import.meta.url);
  } catch (error) {
    logger.warn('could not register the ESM loader hook; ES modules will not be instrumented', error);
  }
}

function bounded(promise: Promise<unknown>, millis: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, millis);
    promise.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      (error: unknown) => {
        clearTimeout(timer);
        logger.error('tracing shutdown failed', error);
        resolve();
      },
    );
  });
}

/**
 * Starts tracing. Reads the configuration once (options over `OTEL_*` /
 * `TRACEHOUSE_*` variables) and throws {@link TracingConfigError} on a bad
 * value; after that, nothing it does throws into the app.
 */
export function startTracing(options: StartTracingOptions = {}): TracingHandle {
  const config = parseTracingConfig(options, options.env ?? process.env);
  if (config.disabled) {
    return {
      config,
      exporter: undefined,
      stats: () => EMPTY_STATS,
      forceFlush: () => Promise.resolve(),
      shutdown: () => Promise.resolve(),
    };
  }

  let exporter: RabbitMqSpanExporter | undefined;
  let spanExporter: SpanExporter;
  if (options.spanExporter !== undefined) {
    spanExporter = options.spanExporter;
  } else {
    exporter = new RabbitMqSpanExporter({
      connectionName: `tracehouse-instrumentation ${config.serviceName ?? 'unknown_service'} pid ${process.pid}`,
      ...options.exporter,
      rabbitmqUrl: config.rabbitmqUrl,
      queue: config.queue,
      encoding: config.encoding,
      maxMessageBytes: config.maxMessageBytes,
      maxBufferedSpans: config.maxBufferedSpans,
      shutdownTimeoutMillis: config.shutdownTimeoutMillis,
    });
    spanExporter = exporter;
  }
  const batchProcessor = new BatchSpanProcessor(spanExporter, {
    scheduledDelayMillis: config.scheduledDelayMillis,
    exportTimeoutMillis: config.exportTimeoutMillis,
    maxQueueSize: config.maxQueueSize,
    maxExportBatchSize: config.maxExportBatchSize,
  });

  const instrumentations: (Instrumentation | Instrumentation[])[] = [...(options.instrumentations ?? [])];
  if (options.esmLoaderHook ?? true) registerEsmLoaderHook();
  if (options.autoInstrumentations) instrumentations.push(loadAutoInstrumentations(options.autoInstrumentations));

  const env = options.env ?? process.env;
  const sdk = new NodeSDK({
    serviceName: config.serviceName,
    ...(options.resourceAttributes ? { resource: resourceFromAttributes(options.resourceAttributes) } : {}),
    textMapPropagator: options.propagator ?? defaultPropagator(),
    spanProcessors: [...(options.spanProcessors ?? []), batchProcessor],
    instrumentations,
    // sdk-node would otherwise start OTLP metric and log exporters by default;
    // this is a tracing setup, so those start only when asked for explicitly.
    ...(options.metricReaders ? { metricReaders: options.metricReaders } : env.OTEL_METRICS_EXPORTER ? {} : { metricReaders: [] }),
    ...(env.OTEL_LOGS_EXPORTER ? {} : { logRecordProcessors: [] }),
  });
  sdk.start();
  exporter?.start();

  // Flushing can take at most the exporter's shutdown timeout plus the SDK's own bookkeeping.
  const shutdownBudget = config.shutdownTimeoutMillis + 1500;
  let shutdownPromise: Promise<void> | undefined;
  const signals = options.shutdownSignals ?? ['SIGTERM', 'SIGINT'];

  const shutdown = (): Promise<void> => {
    shutdownPromise ??= (async () => {
      for (const signal of signals) process.removeListener(signal, onSignal);
      process.removeListener('beforeExit', onBeforeExit);
      await bounded(sdk.shutdown(), shutdownBudget);
    })();
    return shutdownPromise;
  };

  function onSignal(signal: NodeJS.Signals): void {
    void shutdown().then(() => {
      // If the app listens for the signal too, it decides when to exit; otherwise
      // take the signal's default action now that our listener is gone.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
  // When the event loop runs dry without an explicit shutdown, deliver what is buffered first.
  function onBeforeExit(): void {
    void shutdown();
  }
  for (const signal of signals) process.on(signal, onSignal);
  process.on('beforeExit', onBeforeExit);

  return {
    config,
    exporter,
    stats: () => exporter?.stats() ?? EMPTY_STATS,
    forceFlush: async () => {
      try {
        await bounded(batchProcessor.forceFlush(), config.exportTimeoutMillis);
        await spanExporter.forceFlush?.();
      } catch (error) {
        logger.error('forceFlush failed', error);
      }
    },
    shutdown,
  };
}
