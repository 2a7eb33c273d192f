/**
 * Configuration of the tracing setup: read once from the environment (the
 * standard `OTEL_*` variables plus `TRACEHOUSE_*`), overridden field by field
 * by typed options, validated, and frozen.
 */

export type WireEncoding = 'json' | 'proto3';

/** Options a service may pass to override what the environment says. */
export interface TracingOptions {
  /** `service.name` of the resource. Env: `OTEL_SERVICE_NAME`. */
  serviceName?: string;
  /** Extra resource attributes. Env: `OTEL_RESOURCE_ATTRIBUTES` (read by the SDK's env detector). */
  resourceAttributes?: Record<string, string | number | boolean>;
  /** AMQP URL of the broker. Env: `TRACEHOUSE_RABBITMQ_URL`. */
  rabbitmqUrl?: string;
  /** Queue the spans are published to (default exchange, routing key = queue). Env: `TRACEHOUSE_QUEUE`. */
  queue?: string;
  /** Body encoding. Env: `TRACEHOUSE_ENCODING` (`json` or `proto3`). */
  encoding?: WireEncoding;
  /** Largest message body in bytes. Env: `TRACEHOUSE_MAX_MESSAGE_BYTES`. */
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

export interface TracingConfig {
  readonly serviceName: string | undefined;
  readonly rabbitmqUrl: string;
  readonly queue: string;
  readonly encoding: WireEncoding;
  readonly maxMessageBytes: number;
  readonly maxBufferedSpans: number;
  readonly shutdownTimeoutMillis: number;
  readonly scheduledDelayMillis: number;
  readonly exportTimeoutMillis: number;
  readonly maxQueueSize: number;
  readonly maxExportBatchSize: number;
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

function envString(env: Env, name: string): string | undefined {
  const raw = env[name];
  if (raw === undefined) return undefined;
  const trimmed = raw.trim();
  return trimmed === '' ? undefined : trimmed;
}

function checkInteger(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new TracingConfigError(name, `an integer from ${min} to ${max}`, value);
  }
  return value;
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
  if (!/^\d+$/.test(raw)) throw new TracingConfigError(envName, `an integer from ${min} to ${max}`, raw);
  return checkInteger(envName, Number(raw), min, max);
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
  // AMQP 0-9-1 short strings: at most 255 bytes; an empty name would mean a server-named queue.
  if (value.length === 0 || Buffer.byteLength(value) > 255) {
    throw new TracingConfigError(name, 'a queue name of 1 to 255 bytes', value);
  }
  return value;
}

function booleanFromEnv(env: Env, name: string): boolean {
  const raw = envString(env, name);
  if (raw === undefined) return false;
  const lower = raw.toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  throw new TracingConfigError(name, '"true" or "false"', raw);
}

/**
 * `OTEL_RESOURCE_ATTRIBUTES` is applied by the SDK's env detector, which
 * skips a malformed value silently; check it here so a typo stops the start.
 */
function checkResourceAttributes(env: Env): void {
  const raw = envString(env, 'OTEL_RESOURCE_ATTRIBUTES');
  if (raw === undefined) return;
  const accepts = 'comma-separated key=value pairs with percent-encoded values';
  for (const pair of raw.split(',')) {
    if (pair.trim() === '') continue;
    const equals = pair.indexOf('=');
    if (equals <= 0 || pair.slice(0, equals).trim() === '') throw new TracingConfigError('OTEL_RESOURCE_ATTRIBUTES', accepts, raw);
    try {
      decodeURIComponent(pair.slice(equals + 1));
    } catch {
      throw new TracingConfigError('OTEL_RESOURCE_ATTRIBUTES', accepts, raw);
    }
  }
}

/**
 * Reads the environment once and applies the options on top. Throws
 * {@link TracingConfigError} naming the first bad variable or option.
 */
export function parseTracingConfig(options: TracingOptions = {}, env: Env = process.env): TracingConfig {
  checkResourceAttributes(env);
  const serviceName = options.serviceName ?? envString(env, 'OTEL_SERVICE_NAME');
  if (serviceName !== undefined && serviceName.trim() === '') {
    throw new TracingConfigError('option serviceName', 'a non-empty service name', serviceName);
  }

  const rabbitmqUrl =
    options.rabbitmqUrl !== undefined
      ? amqpUrl('option rabbitmqUrl', options.rabbitmqUrl)
      : amqpUrl('TRACEHOUSE_RABBITMQ_URL', envString(env, 'TRACEHOUSE_RABBITMQ_URL') ?? DEFAULT_RABBITMQ_URL);

  const queue =
    options.queue !== undefined
      ? queueName('option queue', options.queue)
      : queueName('TRACEHOUSE_QUEUE', envString(env, 'TRACEHOUSE_QUEUE') ?? DEFAULT_QUEUE);

  let encoding: WireEncoding;
  if (options.encoding !== undefined) {
    if (options.encoding !== 'json' && options.encoding !== 'proto3') {
      throw new TracingConfigError('option encoding', '"json" or "proto3"', options.encoding);
    }
    encoding = options.encoding;
  } else {
    const raw = envString(env, 'TRACEHOUSE_ENCODING') ?? 'json';
    if (raw !== 'json' && raw !== 'proto3') throw new TracingConfigError('TRACEHOUSE_ENCODING', '"json" or "proto3"', raw);
    encoding = raw;
  }

  const maxQueueSize = integer(env, 'OTEL_BSP_MAX_QUEUE_SIZE', 'maxQueueSize', options.maxQueueSize, 2048, 1, 1_000_000);
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
    rabbitmqUrl,
    queue,
    encoding,
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
      600_000,
    ),
    exportTimeoutMillis: integer(
      env,
      'OTEL_BSP_EXPORT_TIMEOUT',
      'exportTimeoutMillis',
      options.exportTimeoutMillis,
      30_000,
      1,
      600_000,
    ),
    maxQueueSize,
    maxExportBatchSize,
    disabled: options.disabled ?? booleanFromEnv(env, 'OTEL_SDK_DISABLED'),
  });
}
