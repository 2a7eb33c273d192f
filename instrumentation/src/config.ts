/**
 * Configuration of the tracing setup: read once from the environment (the
 * standard `OTEL_*` variables plus `TRACEHOUSE_*`), overridden field by field
 * by typed options, validated, and frozen.
 *
 * A bad typed option or `TRACEHOUSE_*` variable throws. A bad `OTEL_*`
 * variable is, as the OpenTelemetry specification asks, reported through
 * `diag` and ignored: the default applies.
 */
import { diag } from '@opentelemetry/api';

export type WireEncoding = 'json' | 'proto3';
/** How message bodies are compressed: `gzip` (with the `content-encoding: gzip` property) or `none`. */
export type BodyCompression = 'gzip' | 'none';
/**
 * What becomes of the spans unless another exporter is given: published to
 * RabbitMQ, or, with `OTEL_TRACES_EXPORTER=none`, not recorded at all (the
 * instrumentations still carry the trace context through the service).
 */
export type TracesExporter = 'rabbitmq' | 'none';

/** Options a service may pass to override what the environment says. */
export interface TracingOptions {
  /** `service.name` of the resource. Env: `OTEL_SERVICE_NAME`. */
  serviceName?: string;
  /**
   * Resource attributes, over those of `OTEL_RESOURCE_ATTRIBUTES` and of the
   * SDK's resource detectors. A `service.name` here stands for `serviceName`.
   */
  resourceAttributes?: Record<string, string | number | boolean>;
  /** AMQP URL of the broker. Env: `TRACEHOUSE_RABBITMQ_URL`. */
  rabbitmqUrl?: string;
  /** Queue the spans are published to (default exchange, routing key = queue). Env: `TRACEHOUSE_QUEUE`. */
  queue?: string;
  /** Body encoding. Env: `TRACEHOUSE_ENCODING` (`json` or `proto3`). */
  encoding?: WireEncoding;
  /**
   * Body compression. Env: `TRACEHOUSE_COMPRESSION` (`gzip`, the default, or
   * `none` for a consumer that ignores `content-encoding`).
   */
  compression?: BodyCompression;
  /** Largest message body in bytes, before compression. Env: `TRACEHOUSE_MAX_MESSAGE_BYTES`. */
  maxMessageBytes?: number;
  /** Spans held while the broker is slow or away; beyond it spans are dropped and counted. Env: `TRACEHOUSE_MAX_BUFFERED_SPANS`. */
  maxBufferedSpans?: number;
  /** How long a shutdown may spend delivering buffered spans. Env: `TRACEHOUSE_SHUTDOWN_TIMEOUT_MS`. */
  shutdownTimeoutMillis?: number;
  /** Batch span processor delay. Env: `OTEL_BSP_SCHEDULE_DELAY`. */
  scheduledDelayMillis?: number;
  /** Batch span processor export timeout. Env: `OTEL_BSP_EXPORT_TIMEOUT`. */
  exportTimeoutMillis?: number;
  /** Batch span processor queue size. Env: `OTEL_BSP_MAX_QUEUE_SIZE`. */
  maxQueueSize?: number;
  /** Batch span processor batch size. Env: `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`. */
  maxExportBatchSize?: number;
  /** Disable the whole setup. Env: `OTEL_SDK_DISABLED`. */
  disabled?: boolean;
}

/** The largest value an `OTEL_*` integer must be allowed (the specification: 0 to 2^31 - 1). */
const OTEL_INTEGER_MAX = 2 ** 31 - 1;

/** The configuration in use. When `disabled`, nothing else was read or checked and the other fields hold the defaults. */
export interface TracingConfig {
  readonly serviceName: string | undefined;
  /** `OTEL_RESOURCE_ATTRIBUTES` with the `resourceAttributes` option over it; applied over the SDK's resource detectors. */
  readonly resourceAttributes: Readonly<Record<string, string | number | boolean>>;
  readonly rabbitmqUrl: string;
  readonly queue: string;
  readonly encoding: WireEncoding;
  readonly compression: BodyCompression;
  readonly maxMessageBytes: number;
  readonly maxBufferedSpans: number;
  readonly shutdownTimeoutMillis: number;
  readonly scheduledDelayMillis: number;
  readonly exportTimeoutMillis: number;
  readonly maxQueueSize: number;
  readonly maxExportBatchSize: number;
  /** From `OTEL_TRACES_EXPORTER`; applies only when no `spanExporter` is given to startTracing. */
  readonly tracesExporter: TracesExporter;
  readonly disabled: boolean;
}

export const DEFAULT_RABBITMQ_URL = 'amqp://guest:guest@127.0.0.1:5672';
export const DEFAULT_QUEUE = 'zipkin';
/** Zipkin's own senders cap a message at 500 KB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 500_000;
export const DEFAULT_MAX_BUFFERED_SPANS = 8192;
export const DEFAULT_SHUTDOWN_TIMEOUT_MILLIS = 5000;

/** A configuration value that cannot be used; names the variable or option and what it accepts. */
export class TracingConfigError extends Error {
  override readonly name = 'TracingConfigError';
  /** Stable, for callers that branch on it; `variable` names the culprit. */
  readonly code = 'config_invalid';
  constructor(
    readonly variable: string,
    readonly accepts: string,
    value: unknown,
  ) {
    super(`${variable}: got ${JSON.stringify(value)}, expected ${accepts}`);
  }
}

type Env = Readonly<Record<string, string | undefined>>;

/** The `OTEL_*` variables read here (from `env`); the SDK reads all others itself, from `process.env`. */
export const OTEL_VARIABLES_READ: readonly string[] = [
  'OTEL_SDK_DISABLED',
  'OTEL_SERVICE_NAME',
  'OTEL_RESOURCE_ATTRIBUTES',
  'OTEL_BSP_SCHEDULE_DELAY',
  'OTEL_BSP_EXPORT_TIMEOUT',
  'OTEL_BSP_MAX_QUEUE_SIZE',
  'OTEL_BSP_MAX_EXPORT_BATCH_SIZE',
  'OTEL_TRACES_EXPORTER',
];

const logger = diag.createComponentLogger({ namespace: '@tracehouse/instrumentation/config' });

/** The specification's rule for OTEL_* variables: warn and use the default rather than stop the host. */
export function ignoreOtelValue(name: string, value: string, accepts: string, instead: string): void {
  logger.warn(`${name}: got ${JSON.stringify(value)}, expected ${accepts}; ignored, ${instead}`);
}

function envString(env: Env, name: string): string | undefined {
  const raw = env[name];
  if (raw === undefined) return undefined;
  const trimmed = raw.trim();
  return trimmed === '' ? undefined : trimmed;
}

/** What a setting accepts: the check, and its words for a message. The exporter checks its own options with these too. */
export interface Accepts<T> {
  test(value: T): boolean;
  readonly text: string;
}

export function integerIn(min: number, max: number): Accepts<number> {
  return { test: (value) => Number.isSafeInteger(value) && value >= min && value <= max, text: `an integer from ${min} to ${max}` };
}

/** AMQP 0-9-1 short strings: at most 255 bytes; an empty name would mean a server-named queue, a new one on every connect. */
export const QUEUE_NAME: Accepts<string> = {
  test: (value) => typeof value === 'string' && value.length > 0 && Buffer.byteLength(value, 'utf8') <= 255,
  text: 'a queue name of 1 to 255 bytes',
};

function checkInteger(name: string, value: number, min: number, max: number): number {
  const accepts = integerIn(min, max);
  if (!accepts.test(value)) throw new TracingConfigError(name, accepts.text, value);
  return value;
}

/** One of `allowed` (the first is the default), from the option or else the `TRACEHOUSE_*` variable. */
function oneOf<T extends string>(env: Env, envName: string, optionName: string, option: T | undefined, allowed: readonly [T, ...T[]]): T {
  const accepts = allowed.map((value) => JSON.stringify(value)).join(' or ');
  if (option !== undefined) {
    if (!allowed.includes(option)) throw new TracingConfigError(`option ${optionName}`, accepts, option);
    return option;
  }
  const raw = envString(env, envName) ?? allowed[0];
  if (!(allowed as readonly string[]).includes(raw)) throw new TracingConfigError(envName, accepts, raw);
  return raw as T;
}

function integer(
  env: Env,
  envName: string,
  optionName: string,
  option: number | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (option !== undefined) return checkInteger(`option ${optionName}`, option, min, max);
  const raw = envString(env, envName);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (/^\d+$/.test(raw) && value >= min && value <= max) return value;
  const accepts = integerIn(min, max).text;
  if (envName.startsWith('OTEL_')) {
    ignoreOtelValue(envName, raw, accepts, `using ${fallback}`);
    return fallback;
  }
  throw new TracingConfigError(envName, accepts, raw);
}

function amqpUrl(name: string, value: string): string {
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new TracingConfigError(name, 'an amqp:// or amqps:// URL', value);
  }
  if (parsed.protocol !== 'amqp:' && parsed.protocol !== 'amqps:') {
    throw new TracingConfigError(name, 'an amqp:// or amqps:// URL', value);
  }
  return value;
}

function queueName(name: string, value: string): string {
  if (!QUEUE_NAME.test(value)) throw new TracingConfigError(name, QUEUE_NAME.text, value);
  return value;
}

/** Only a case-insensitive "true" disables (the specification's boolean variables); anything else but "false" is reported. */
function disabledFrom(options: TracingOptions, env: Env): boolean {
  if (options.disabled !== undefined) {
    if (typeof options.disabled !== 'boolean') throw new TracingConfigError('option disabled', 'true or false', options.disabled);
    return options.disabled;
  }
  const raw = envString(env, 'OTEL_SDK_DISABLED');
  if (raw === undefined) return false;
  const lower = raw.toLowerCase();
  if (lower !== 'true' && lower !== 'false') ignoreOtelValue('OTEL_SDK_DISABLED', raw, '"true" or "false"', 'tracing stays enabled');
  return lower === 'true';
}

const RESOURCE_ATTRIBUTES_ACCEPTS =
  'comma-separated key=value pairs, with "," "=" and "%" percent-encoded, keys and values of at most 255 characters';

/**
 * The SDK's parser of `OTEL_RESOURCE_ATTRIBUTES` (`EnvDetector` of
 * @opentelemetry/resources 2.12), which discards the whole variable on any
 * error; throws the reason.
 */
function parseResourceAttributes(raw: string): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (const pair of raw.split(',')) {
    if (pair.trim() === '') continue;
    const parts = pair.split('=');
    if (parts.length !== 2) throw new Error(`"${pair}" is not one key=value pair`);
    const key = (parts[0] as string).trim();
    const value = (parts[1] as string).trim();
    if (key === '') throw new Error(`"${pair}" has an empty key`);
    let decodedKey: string;
    let decodedValue: string;
    try {
      decodedKey = decodeURIComponent(key);
      decodedValue = decodeURIComponent(value);
    } catch {
      throw new Error(`"${pair}" is not valid percent-encoding`);
    }
    if (decodedKey.length > 255 || decodedValue.length > 255) throw new Error(`"${pair}" is longer than 255 characters`);
    attributes[decodedKey] = decodedValue;
  }
  return attributes;
}

function resourceAttributesFromEnv(env: Env): Record<string, string> {
  const raw = envString(env, 'OTEL_RESOURCE_ATTRIBUTES');
  if (raw === undefined) return {};
  try {
    return parseResourceAttributes(raw);
  } catch (error) {
    // The SDK's env detector discards it too, silently unless diag is at DEBUG.
    ignoreOtelValue('OTEL_RESOURCE_ATTRIBUTES', raw, `${RESOURCE_ATTRIBUTES_ACCEPTS} (${(error as Error).message})`, 'none of its attributes apply');
    return {};
  }
}

function resourceAttributesOption(option: unknown): Record<string, string | number | boolean> {
  if (option === undefined) return {};
  if (option === null || typeof option !== 'object' || Array.isArray(option)) {
    throw new TracingConfigError('option resourceAttributes', 'an object of string, number or boolean values', option);
  }
  for (const [key, value] of Object.entries(option)) {
    if (key === '' || (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean')) {
      throw new TracingConfigError(`option resourceAttributes[${JSON.stringify(key)}]`, 'a non-empty key with a string, number or boolean value', value);
    }
  }
  return option as Record<string, string | number | boolean>;
}

/** What `OTEL_SDK_DISABLED` or `disabled` yield: nothing else is read, so that a bad value elsewhere cannot stop a disabled start. */
const DISABLED_CONFIG: TracingConfig = Object.freeze({
  serviceName: undefined,
  resourceAttributes: Object.freeze({}),
  rabbitmqUrl: DEFAULT_RABBITMQ_URL,
  queue: DEFAULT_QUEUE,
  encoding: 'json',
  compression: 'gzip',
  maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
  maxBufferedSpans: DEFAULT_MAX_BUFFERED_SPANS,
  shutdownTimeoutMillis: DEFAULT_SHUTDOWN_TIMEOUT_MILLIS,
  scheduledDelayMillis: 5000,
  exportTimeoutMillis: 30_000,
  maxQueueSize: 2048,
  maxExportBatchSize: 512,
  tracesExporter: 'rabbitmq',
  disabled: true,
});

/**
 * Reads the environment once and applies the options on top. Throws
 * {@link TracingConfigError} naming the first bad option or `TRACEHOUSE_*`
 * variable; a bad `OTEL_*` variable is reported through `diag` and ignored.
 */
export function parseTracingConfig(options: TracingOptions = {}, env: Env = process.env): TracingConfig {
  if (disabledFrom(options, env)) return DISABLED_CONFIG;

  const typedAttributes = resourceAttributesOption(options.resourceAttributes);
  const resourceAttributes = Object.freeze({ ...resourceAttributesFromEnv(env), ...typedAttributes });
  const typedServiceName = typedAttributes['service.name'];
  if (options.serviceName !== undefined && (typeof options.serviceName !== 'string' || options.serviceName.trim() === '')) {
    throw new TracingConfigError('option serviceName', 'a non-empty service name', options.serviceName);
  }
  // Typed options over the environment: a service.name among the attributes wins over OTEL_SERVICE_NAME.
  const serviceName =
    options.serviceName ??
    (typeof typedServiceName === 'string' && typedServiceName.trim() !== '' ? typedServiceName : envString(env, 'OTEL_SERVICE_NAME'));

  const rabbitmqUrl =
    options.rabbitmqUrl !== undefined
      ? amqpUrl('option rabbitmqUrl', options.rabbitmqUrl)
      : amqpUrl('TRACEHOUSE_RABBITMQ_URL', envString(env, 'TRACEHOUSE_RABBITMQ_URL') ?? DEFAULT_RABBITMQ_URL);

  const queue =
    options.queue !== undefined
      ? queueName('option queue', options.queue)
      : queueName('TRACEHOUSE_QUEUE', envString(env, 'TRACEHOUSE_QUEUE') ?? DEFAULT_QUEUE);

  const encoding = oneOf(env, 'TRACEHOUSE_ENCODING', 'encoding', options.encoding, ['json', 'proto3']);
  const compression = oneOf(env, 'TRACEHOUSE_COMPRESSION', 'compression', options.compression, ['gzip', 'none']);

  const maxQueueSize = integer(env, 'OTEL_BSP_MAX_QUEUE_SIZE', 'maxQueueSize', options.maxQueueSize, 2048, 1, OTEL_INTEGER_MAX);
  const maxExportBatchSize = integer(
    env,
    'OTEL_BSP_MAX_EXPORT_BATCH_SIZE',
    'maxExportBatchSize',
    options.maxExportBatchSize,
    Math.min(512, maxQueueSize),
    1,
    maxQueueSize,
  );

  return Object.freeze({
    serviceName,
    resourceAttributes,
    rabbitmqUrl,
    queue,
    encoding,
    compression,
    maxMessageBytes: integer(
      env,
      'TRACEHOUSE_MAX_MESSAGE_BYTES',
      'maxMessageBytes',
      options.maxMessageBytes,
      DEFAULT_MAX_MESSAGE_BYTES,
      1024,
      128 * 1024 * 1024,
    ),
    maxBufferedSpans: integer(
      env,
      'TRACEHOUSE_MAX_BUFFERED_SPANS',
      'maxBufferedSpans',
      options.maxBufferedSpans,
      DEFAULT_MAX_BUFFERED_SPANS,
      1,
      10_000_000,
    ),
    shutdownTimeoutMillis: integer(
      env,
      'TRACEHOUSE_SHUTDOWN_TIMEOUT_MS',
      'shutdownTimeoutMillis',
      options.shutdownTimeoutMillis,
      DEFAULT_SHUTDOWN_TIMEOUT_MILLIS,
      0,
      600_000,
    ),
    scheduledDelayMillis: integer(
      env,
      'OTEL_BSP_SCHEDULE_DELAY',
      'scheduledDelayMillis',
      options.scheduledDelayMillis,
      5000,
      0,
      OTEL_INTEGER_MAX,
    ),
    exportTimeoutMillis: integer(
      env,
      'OTEL_BSP_EXPORT_TIMEOUT',
      'exportTimeoutMillis',
      options.exportTimeoutMillis,
      30_000,
      1,
      OTEL_INTEGER_MAX,
    ),
    maxQueueSize,
    maxExportBatchSize,
    tracesExporter: tracesExporterFromEnv(env),
    disabled: false,
  });
}

/**
 * `OTEL_TRACES_EXPORTER`, as sdk-node reads it: `none` alone turns exporting off
 * (platforms set it to silence a service); `none` among others is ignored. This
 * package exports to RabbitMQ only, so any other exporter it names (`otlp`,
 * `zipkin`, ...) is reported and ignored rather than silently not started.
 */
function tracesExporterFromEnv(env: Env): TracesExporter {
  const raw = envString(env, 'OTEL_TRACES_EXPORTER');
  if (raw === undefined) return 'rabbitmq';
  const names = [...new Set(raw.split(',').map((name) => name.trim().toLowerCase()))].filter((name) => name !== '');
  if (names.length === 1 && names[0] === 'none') return 'none';
  if (names.includes('none')) {
    ignoreOtelValue('OTEL_TRACES_EXPORTER', raw, '"none" alone or exporters', 'spans go to RabbitMQ');
    return 'rabbitmq';
  }
  const unavailable = names.filter((name) => name !== 'rabbitmq');
  if (unavailable.length > 0) {
    ignoreOtelValue('OTEL_TRACES_EXPORTER', raw, '"rabbitmq" or "none" (this package offers no other exporter)', 'spans go to RabbitMQ');
  }
  return 'rabbitmq';
}
