/**
 * One call that sets up tracing for a Node.js service on
 * `@opentelemetry/sdk-node`: W3C trace-context + B3 propagation, optional
 * auto-instrumentations, a batch span processor feeding the RabbitMQ
 * exporter, and a flush on SIGTERM/SIGINT bounded by a timeout.
 */
import * as nodeModule from 'node:module';
import { isMainThread } from 'node:worker_threads';
import {
  context,
  createNoopMeter,
  diag,
  DiagConsoleLogger,
  metrics,
  propagation,
  ProxyTracerProvider,
  trace,
  TraceFlags,
  type MeterProvider,
  type TextMapPropagator,
  type TracerProvider,
} from '@opentelemetry/api';
import {
  CompositePropagator,
  diagLogLevelFromString,
  ExportResultCode,
  getStringFromEnv,
  getStringListFromEnv,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} from '@opentelemetry/core';
import { B3InjectEncoding, B3Propagator } from '@opentelemetry/propagator-b3';
import {
  envDetector,
  hostDetector,
  osDetector,
  processDetector,
  serviceInstanceIdDetector,
  type ResourceDetector,
} from '@opentelemetry/resources';
import { NodeSDK, type NodeSDKConfiguration } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor, type SpanExporter, type SpanLimits, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ignoreOtelValue, OTEL_VARIABLES_READ, parseTracingConfig, TracingConfigError, type TracingConfig, type TracingOptions } from './config.js';
import { DROP_REASONS, METER_NAME, registerExporterMetrics, type DropReason, type ExporterStats } from './exporter-stats.js';
import { RabbitMqSpanExporter, type RabbitMqSpanExporterOptions } from './rabbitmq-span-exporter.js';
import { VERSION } from './version.js';

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
    'rabbitmqUrl' | 'queue' | 'encoding' | 'compression' | 'maxMessageBytes' | 'maxBufferedSpans' | 'shutdownTimeoutMillis'
  >;
  /**
   * Propagator. Default: the SDK's from `OTEL_PROPAGATORS` when that is set
   * (in `process.env`, where the SDK reads it), else W3C trace-context + W3C
   * baggage + B3 (extracts single and multi header, injects multi).
   */
  propagator?: TextMapPropagator;
  /**
   * Flush and shut down on these signals, then let the signal take its default
   * course. Default `['SIGTERM', 'SIGINT']`; `[]` to leave signals to the app.
   * When the app listens for the signal too (it closes its server and lets
   * requests finish), tracing only flushes then, and keeps recording the spans
   * still to end: it shuts down when the event loop runs dry or when the app
   * calls `shutdown()`.
   */
  shutdownSignals?: NodeJS.Signals[];
  /**
   * Use this exporter instead of the RabbitMQ one (benchmarks, tests, or
   * another backend); everything else stays the same.
   */
  spanExporter?: SpanExporter;
  /**
   * Metric readers for sdk-node's meter provider (e.g. a Prometheus
   * exporter); the exporter's own counters are registered on that provider.
   * Without readers here or in `OTEL_METRICS_EXPORTER`, they go to the global
   * meter provider, as soon as the app has registered one (checked at start
   * and at each export).
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
  /**
   * Environment the configuration is read from (the `TRACEHOUSE_*` variables,
   * `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_SDK_DISABLED`,
   * `OTEL_BSP_*`); default `process.env`. The SDK reads its other variables
   * (`OTEL_PROPAGATORS`, `OTEL_TRACES_SAMPLER`, ...) from `process.env` only.
   */
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
  spansDropped: Object.freeze(Object.fromEntries(DROP_REASONS.map((reason) => [reason, 0])) as Record<DropReason, number>),
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

/**
 * Span limits from the specification's variables, each checked. sdk-node takes any number, so a
 * negative one (meant as "no limit", say) drops every attribute without a word, and it does not
 * read the specification's names for event and link attributes. Each limit: the first of its
 * variables with a good value; when only bad values are given, a warning and the SDK's default.
 * Only limits some variable speaks of are returned, so the SDK's own defaults apply to the rest.
 */
function spanLimitsFromEnv(): SpanLimits {
  const limits: SpanLimits = {};
  const read = (key: keyof SpanLimits, names: readonly string[], fallback: number): void => {
    let bad: string | undefined;
    for (const name of names) {
      const raw = getStringFromEnv(name)?.trim();
      if (raw === undefined) continue;
      if (/^\d+$/.test(raw)) {
        limits[key] = Number(raw);
        return;
      }
      bad ??= name;
      ignoreOtelValue(name, raw, 'a non-negative integer', 'using the next variable or the default');
    }
    if (bad !== undefined) limits[key] = fallback;
  };
  read('attributeCountLimit', ['OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT', 'OTEL_ATTRIBUTE_COUNT_LIMIT'], 128);
  read('attributeValueLengthLimit', ['OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT', 'OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT'], Infinity);
  read('eventCountLimit', ['OTEL_SPAN_EVENT_COUNT_LIMIT'], 128);
  read('linkCountLimit', ['OTEL_SPAN_LINK_COUNT_LIMIT'], 128);
  read('attributePerEventCountLimit', ['OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT', 'OTEL_SPAN_ATTRIBUTE_PER_EVENT_COUNT_LIMIT'], 128);
  read('attributePerLinkCountLimit', ['OTEL_LINK_ATTRIBUTE_COUNT_LIMIT', 'OTEL_SPAN_ATTRIBUTE_PER_LINK_COUNT_LIMIT'], 128);
  return limits;
}

/** The `OTEL_PROPAGATORS` values sdk-node builds a propagator for (`none`: it sets none). */
const SDK_PROPAGATOR_NAMES: ReadonlySet<string> = new Set(['tracecontext', 'baggage', 'b3', 'b3multi', 'jaeger', 'none']);

/** The default propagator, unless the SDK is to build its own from `OTEL_PROPAGATORS`. */
function propagatorFor(option: TextMapPropagator | undefined): TextMapPropagator | undefined {
  if (option !== undefined) return option;
  const names = getStringListFromEnv('OTEL_PROPAGATORS');
  if (names === undefined || names.length === 0) return defaultPropagator();
  // sdk-node would set no propagator at all when it knows none of the names: one typo would cut
  // every trace at this service. The specification's rule for a bad value is warn and ignore.
  if (!names.some((name) => SDK_PROPAGATOR_NAMES.has(name))) {
    ignoreOtelValue('OTEL_PROPAGATORS', names.join(','), `some of ${[...SDK_PROPAGATOR_NAMES].join(', ')}`, 'using W3C trace-context + baggage + B3');
    return defaultPropagator();
  }
  // sdk-node reads OTEL_PROPAGATORS (from process.env) only when given no propagator.
  return undefined;
}

/**
 * The resource detectors sdk-node picks for itself (0.223: from
 * `OTEL_NODE_RESOURCE_DETECTORS` in process.env, else env, process, host),
 * since giving it a list replaces that choice.
 */
function sdkResourceDetectors(): ResourceDetector[] {
  const names = getStringListFromEnv('OTEL_NODE_RESOURCE_DETECTORS');
  if (names === undefined) return [envDetector, processDetector, hostDetector];
  const byName = new Map<string, ResourceDetector>([
    ['host', hostDetector],
    ['os', osDetector],
    ['serviceinstance', serviceInstanceIdDetector],
    ['process', processDetector],
    ['env', envDetector],
  ]);
  if (names.includes('all')) return [...byName.values()];
  if (names.includes('none')) return [];
  return names.flatMap((name) => {
    const detector = byName.get(name);
    if (detector === undefined) logger.warn(`OTEL_NODE_RESOURCE_DETECTORS: unknown resource detector "${name}"`);
    return detector === undefined ? [] : [detector];
  });
}

/** sdk-node keeps its meter provider private and registers it globally, which fails if the app registered one first. */
function sdkMeterProvider(sdk: NodeSDK): MeterProvider | undefined {
  const candidate = (sdk as unknown as { _meterProvider?: Partial<MeterProvider> })._meterProvider;
  return typeof candidate?.getMeter === 'function' ? (candidate as MeterProvider) : undefined;
}

/** The global meter provider, unless it is still the API's no-op one: the API has no proxy, so instruments made there stay no-ops. */
function globalMeterProvider(): MeterProvider | undefined {
  const provider = metrics.getMeterProvider();
  // Same name and version as registerExporterMetrics, so no stray meter is created.
  return provider.getMeter(METER_NAME, VERSION) === createNoopMeter() ? undefined : provider;
}

/** `OTEL_*` variables in `options.env` that nobody will read: the SDK reads its own from process.env. */
function warnUnreadVariables(env: Readonly<Record<string, string | undefined>> | undefined): void {
  if (env === undefined || env === process.env) return;
  const unread = Object.keys(env).filter(
    (name) => name.startsWith('OTEL_') && !OTEL_VARIABLES_READ.includes(name) && env[name] !== process.env[name],
  );
  if (unread.length > 0) {
    logger.warn(`options.env: ${unread.join(', ')} not applied; the OpenTelemetry SDK reads its variables from process.env`);
  }
}

/** Where nothing goes: the exporter of OTEL_TRACES_EXPORTER=none, which no processor calls. */
const NOTHING_EXPORTER: SpanExporter = {
  export: (_spans, resultCallback) => resultCallback({ code: ExportResultCode.SUCCESS }),
  shutdown: () => Promise.resolve(),
};

function disabledHandle(config: TracingConfig): TracingHandle {
  return {
    config,
    exporter: undefined,
    stats: () => EMPTY_STATS,
    forceFlush: () => Promise.resolve(),
    shutdown: () => Promise.resolve(),
  };
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

/** The handle of the tracing started in this process and not shut down: a second startTracing returns it. */
let running: TracingHandle | undefined;

/** The provider behind the global tracer provider; the API's no-op one when none is registered. */
function registeredTracerProvider(): TracerProvider {
  const global = trace.getTracerProvider();
  return global instanceof ProxyTracerProvider ? global.getDelegate() : global;
}

const NO_TRACER_PROVIDER = new ProxyTracerProvider().getDelegate();

/** Marks this package's signal listeners, which wait for another listener to end the process. */
const DEFERRING_LISTENER = Symbol.for('@tracehouse/instrumentation signal listener');

function markDeferring(listener: object): void {
  Object.defineProperty(listener, DEFERRING_LISTENER, { value: true });
}

/**
 * Listeners of `signal` that end the process themselves, as far as can be told:
 * all of them but this package's and signal-exit's (used by execa, ora and
 * the like), which both take the signal's default action only when they find
 * themselves alone. Counting those as the app's, each would wait for the
 * other and the process would never stop.
 */
function appListenerCount(signal: NodeJS.Signals): number {
  const listeners = process.listeners(signal);
  let deferring = listeners.filter((listener) => DEFERRING_LISTENER in listener).length;
  // signal-exit v4 and v3 keep a process-wide count of their loaded instances, one listener each.
  const v4 = (globalThis as Record<symbol, { count?: unknown } | undefined>)[Symbol.for('signal-exit emitter')];
  const v3 = (process as unknown as { __signal_exit_emitter__?: { count?: unknown } }).__signal_exit_emitter__;
  for (const emitter of [v4, v3]) if (typeof emitter?.count === 'number') deferring += emitter.count;
  return Math.max(0, listeners.length - deferring);
}

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

/**
 * sdk-node installs a console diag logger from `OTEL_LOG_LEVEL` in its
 * constructor, so what is reported before it (a bad `OTEL_BSP_*` value, an
 * unknown resource detector...) would go nowhere: the same logger is installed
 * first. Returns what to call just before constructing the SDK, so that its
 * own install replaces nothing and prints no "logger will be overwritten".
 */
function installDiagLoggerEarly(): () => void {
  const level = getStringFromEnv('OTEL_LOG_LEVEL');
  if (level === undefined) return () => undefined;
  diag.setLogger(new DiagConsoleLogger(), { logLevel: diagLogLevelFromString(level), suppressOverrideMessage: true });
  return () => diag.disable();
}

/**
 * The batch processor drops, uncounted, every span that ends after its
 * shutdown began. Those go to the exporter instead: it takes them while it is
 * still open (the SDK shuts down before it), and counts them as dropped
 * (`shutdown`) after.
 */
class ShutdownAwareProcessor implements SpanProcessor {
  readonly #batch: BatchSpanProcessor;
  readonly #exporter: SpanExporter;
  #shutDown = false;

  constructor(batch: BatchSpanProcessor, exporter: SpanExporter) {
    this.#batch = batch;
    this.#exporter = exporter;
  }

  onStart(span: Parameters<SpanProcessor['onStart']>[0], parentContext: Parameters<SpanProcessor['onStart']>[1]): void {
    this.#batch.onStart(span, parentContext);
  }

  onEnd(span: Parameters<SpanProcessor['onEnd']>[0]): void {
    if (!this.#shutDown) {
      this.#batch.onEnd(span);
      return;
    }
    // As the batch processor: a span recorded but not sampled is never exported.
    if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
    // span.end() runs in the app's code: another exporter's error must not reach it.
    try {
      this.#exporter.export([span], () => undefined);
    } catch (error) {
      logger.warn('a span ended after shutdown could not be handed to the exporter', error);
    }
  }

  forceFlush(): Promise<void> {
    return this.#batch.forceFlush();
  }

  shutdown(): Promise<void> {
    this.#shutDown = true;
    return this.#batch.shutdown();
  }
}

function bounded(promise: Promise<unknown>, millis: number, what: string): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, millis);
    promise.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      (error: unknown) => {
        clearTimeout(timer);
        logger.warn(`${what} failed`, error);
        resolve();
      },
    );
  });
}

/**
 * Starts tracing. Reads the configuration once (options over `OTEL_*` /
 * `TRACEHOUSE_*` variables) and throws {@link TracingConfigError} on a bad
 * option or `TRACEHOUSE_*` value (a bad `OTEL_*` value is logged through
 * `diag` and ignored); after that, nothing it does throws into the app.
 */
export function startTracing(options: StartTracingOptions = {}): TracingHandle {
  if (running !== undefined) {
    // A preload plus a call in the entry file, say: a second SDK would trace every call twice.
    logger.warn('startTracing called while tracing runs: the running setup is kept (call shutdown() first to start anew)');
    return running;
  }
  const beforeSdkLogger = installDiagLoggerEarly();
  const config = parseTracingConfig(options, options.env ?? process.env);
  if (config.disabled) return disabledHandle(config);
  if (!isMainThread) {
    // Node runs --require preloads again in its module-hooks thread, and a worker's spans
    // would need a process of their own to flush: tracing belongs to the main thread.
    logger.debug('startTracing outside the main thread: tracing stays off in this thread');
    return disabledHandle(Object.freeze({ ...config, disabled: true }));
  }
  // NodeSDK reads OTEL_SDK_DISABLED from process.env whatever `env` or `disabled` say, and would then start nothing.
  if (process.env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') {
    logger.warn('OTEL_SDK_DISABLED=true in process.env disables the OpenTelemetry SDK: tracing stays off');
    return disabledHandle(Object.freeze({ ...config, disabled: true }));
  }
  const registered = registeredTracerProvider();
  if (registered !== NO_TRACER_PROVIDER) {
    // The SDK could not register its own: every span would go to the other one, and this exporter would get none.
    throw new TracingConfigError(
      'the global tracer provider',
      'none registered before startTracing (start one SDK only, or give RabbitMqSpanExporter to the one started first)',
      registered.constructor.name,
    );
  }
  warnUnreadVariables(options.env);

  let exporter: RabbitMqSpanExporter | undefined;
  let spanExporter: SpanExporter;
  // OTEL_TRACES_EXPORTER=none: no exporter and no processor of ours, so sdk-node registers no
  // tracer provider (unless the app gave processors); context still flows through the service.
  const exportsNothing = options.spanExporter === undefined && config.tracesExporter === 'none';
  if (options.spanExporter !== undefined) {
    spanExporter = options.spanExporter;
  } else if (exportsNothing) {
    logger.info('OTEL_TRACES_EXPORTER=none: spans are not exported (trace context is still propagated)');
    spanExporter = NOTHING_EXPORTER;
  } else {
    exporter = new RabbitMqSpanExporter({
      connectionName: `tracehouse-instrumentation ${config.serviceName ?? 'unknown_service'} pid ${process.pid}`,
      ...options.exporter,
      // Unless told where, the counters are registered below, once there is a meter provider to hold them.
      meterProvider: options.exporter?.meterProvider ?? false,
      rabbitmqUrl: config.rabbitmqUrl,
      queue: config.queue,
      encoding: config.encoding,
      compression: config.compression,
      maxMessageBytes: config.maxMessageBytes,
      maxBufferedSpans: config.maxBufferedSpans,
      shutdownTimeoutMillis: config.shutdownTimeoutMillis,
    });
    spanExporter = exporter;
  }
  const rabbitMq = exporter;
  let metricsPending = rabbitMq !== undefined && options.exporter?.meterProvider === undefined;
  function registerMetrics(): void {
    if (!metricsPending || rabbitMq === undefined) return;
    const provider = sdkMeterProvider(sdk) ?? globalMeterProvider();
    if (provider === undefined) return;
    metricsPending = false;
    try {
      registerExporterMetrics(provider, () => rabbitMq.stats());
    } catch (error) {
      logger.warn('could not register the exporter metrics', error);
    }
  }

  let exporterShutdown: Promise<void> | undefined;
  const shutdownExporter = (): Promise<void> => (exporterShutdown ??= Promise.resolve().then(() => spanExporter.shutdown()));
  // What the batch processor calls: the exporter, plus the metrics check, and a shutdown that runs once.
  const batchExporter: SpanExporter = {
    export: (spans, resultCallback) => {
      registerMetrics();
      spanExporter.export(spans, resultCallback);
    },
    shutdown: shutdownExporter,
    forceFlush: () => spanExporter.forceFlush?.() ?? Promise.resolve(),
  };
  const batchProcessor = new BatchSpanProcessor(batchExporter, {
    scheduledDelayMillis: config.scheduledDelayMillis,
    exportTimeoutMillis: config.exportTimeoutMillis,
    maxQueueSize: config.maxQueueSize,
    maxExportBatchSize: config.maxExportBatchSize,
  });

  const instrumentations: (Instrumentation | Instrumentation[])[] = [...(options.instrumentations ?? [])];
  if (options.esmLoaderHook ?? true) registerEsmLoaderHook();
  if (options.autoInstrumentations) instrumentations.push(loadAutoInstrumentations(options.autoInstrumentations));

  const resourceAttributes = config.resourceAttributes;
  const spanProcessor = new ShutdownAwareProcessor(batchProcessor, batchExporter);
  beforeSdkLogger();
  const sdk = new NodeSDK({
    // Merged by sdk-node over the detected resource, so it wins over everything.
    serviceName: config.serviceName,
    // sdk-node merges detected attributes over `resource` (and `resource` would replace its default
    // one, telemetry.sdk.* included): the configured attributes come as the last detector instead.
    ...(Object.keys(resourceAttributes).length > 0
      ? { resourceDetectors: [...sdkResourceDetectors(), { detect: () => ({ attributes: { ...resourceAttributes } }) }] }
      : {}),
    textMapPropagator: propagatorFor(options.propagator),
    spanLimits: spanLimitsFromEnv(),
    spanProcessors: [...(options.spanProcessors ?? []), ...(exportsNothing ? [] : [spanProcessor])],
    instrumentations,
    // sdk-node would otherwise start OTLP metric and log exporters by default; this is a tracing
    // setup, so those start only when asked for (sdk-node reads these variables from process.env).
    ...(options.metricReaders
      ? { metricReaders: options.metricReaders }
      : getStringFromEnv('OTEL_METRICS_EXPORTER') !== undefined
        ? {}
        : { metricReaders: [] }),
    ...(getStringFromEnv('OTEL_LOGS_EXPORTER') !== undefined ? {} : { logRecordProcessors: [] }),
  });
  sdk.start();
  const ownTracerProvider = registeredTracerProvider();
  exporter?.start();
  registerMetrics();

  // Flushing can take at most the exporter's shutdown timeout plus the SDK's own bookkeeping.
  const shutdownBudget = config.shutdownTimeoutMillis + 1500;
  let shutdownPromise: Promise<void> | undefined;
  let exitDeferredFrom: typeof process.exit | undefined;
  const signals = options.shutdownSignals ?? ['SIGTERM', 'SIGINT'];

  const shutdown = (): Promise<void> => {
    shutdownPromise ??= (async () => {
      process.removeListener('beforeExit', onBeforeExit);
      const deadline = Date.now() + shutdownBudget;
      await bounded(sdk.shutdown(), shutdownBudget, 'SDK shutdown');
      // The batch processor shuts the exporter down only after a successful last flush, and a batch
      // with dropped spans fails it: without this, what the exporter buffers is neither sent nor counted.
      await bounded(shutdownExporter(), Math.max(0, deadline - Date.now()), 'exporter shutdown');
      // The SDK leaves its globals registered: take them back, so that tracing can be started again.
      if (registeredTracerProvider() === ownTracerProvider) {
        trace.disable();
        propagation.disable();
        context.disable();
      }
      restoreExit();
      // Only now: a listener alone on the signal (signal-exit's) takes it as the end of the process.
      for (const signal of signals) process.removeListener(signal, onSignal);
      if (running === handle) running = undefined;
    })();
    return shutdownPromise;
  };

  function onSignal(signal: NodeJS.Signals): void {
    // The app listens for the signal too: it decides when to stop, and the spans of
    // the requests it lets finish are still to come. Hand what is batched to the
    // exporter now (without holding the process); the shutdown comes when the event
    // loop runs dry (beforeExit), when the app asks, or when it calls process.exit.
    if (appListenerCount(signal) > 0) {
      batchProcessor.forceFlush().catch((error: unknown) => logger.warn('flush at the signal failed', error));
      shutDownBeforeExit();
      return;
    }
    void shutdown().then(() => {
      // Take the signal's default action now that our listener is gone, unless the app
      // started listening meanwhile (then it decides when to exit). signal-exit's
      // listeners take it when they find themselves alone, as they now are.
      if (appListenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
  markDeferring(onSignal);

  /**
   * Until the shutdown, process.exit first delivers what is buffered (bounded by
   * the shutdown budget): an app's signal handler that ends with process.exit()
   * would otherwise lose the spans of its last requests without a word.
   */
  function shutDownBeforeExit(): void {
    if (shutdownPromise !== undefined || exitDeferredFrom !== undefined) return;
    // eslint-disable-next-line @typescript-eslint/unbound-method -- put back as it was, and called on process
    const exit = process.exit;
    exitDeferredFrom = exit;
    let firstCode: number | string | null | undefined;
    let called = false;
    // Calls after the first (the handler goes on after process.exit returns) wait for the same shutdown.
    process.exit = ((code?: number | string | null) => {
      if (!called) firstCode = code;
      called = true;
      void shutdown().finally(() => exit.call(process, firstCode));
    }) as typeof process.exit;
  }
  function restoreExit(): void {
    if (exitDeferredFrom !== undefined) process.exit = exitDeferredFrom;
    exitDeferredFrom = undefined;
  }
  // When the event loop runs dry without an explicit shutdown, deliver what is buffered first.
  function onBeforeExit(): void {
    void shutdown();
  }
  for (const signal of signals) process.on(signal, onSignal);
  process.on('beforeExit', onBeforeExit);

  const handle: TracingHandle = {
    config,
    exporter,
    stats: () => exporter?.stats() ?? EMPTY_STATS,
    forceFlush: async () => {
      try {
        await bounded(batchProcessor.forceFlush(), config.exportTimeoutMillis, 'forceFlush');
        await spanExporter.forceFlush?.();
      } catch (error) {
        logger.error('forceFlush failed', error);
      }
    },
    shutdown,
  };
  running = handle;
  return handle;
}
