/**
 * The collector's configuration, read once from the environment into a frozen,
 * typed object. A bad value throws a ConfigError naming the variable and what
 * it accepts; the bin turns that into a message and a non-zero exit.
 */
import { ClickHouseStore, checkIdentifier } from '@tracehouse/storage';

export type QueueType = 'classic' | 'quorum';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface CollectorConfig {
  readonly rabbitmqUrl: string;
  /** TCP connect plus AMQP handshake; a broker that accepts and never answers is given up after this. */
  readonly rabbitmqConnectTimeoutMs: number;
  /** The span queue; spans arrive on the default exchange with this routing key. */
  readonly queue: string;
  /** Used only when the collector has to declare the queue itself. */
  readonly queueType: QueueType;
  /** Extra `x-` arguments used only when the collector declares the span queue; never given to the dead-letter queue. */
  readonly queueArguments: Readonly<Record<string, unknown>>;
  readonly deadLetterExchange: string;
  readonly deadLetterQueue: string;
  readonly clickhouseUrl: string;
  readonly clickhouseDatabase: string;
  /** Days of spans kept; undefined leaves the store's default. */
  readonly retentionDays: number | undefined;
  readonly retentionIntervalMs: number;
  readonly adminHost: string;
  readonly adminPort: number;
  /** A batch is written once it holds this many spans... */
  readonly batchSpans: number;
  /** ...or this many messages... */
  readonly batchMessages: number;
  /** ...or its first message is this old. */
  readonly batchAgeMs: number;
  /** Unacked messages the broker may hand this replica (basic.qos). */
  readonly prefetch: number;
  /** Batches being written to ClickHouse at the same time. */
  readonly insertConcurrency: number;
  /** Batches that queue up while ClickHouse is busy are merged into one insert of up to this many spans. */
  readonly insertMaxSpans: number;
  /** Largest message accepted, compressed and after decompression. */
  readonly maxMessageBytes: number;
  /** Rows of unacked messages, in bytes, at which consumption pauses (resuming below half). */
  readonly maxPendingBytes: number;
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
  readonly reconnectInitialMs: number;
  readonly reconnectMaxMs: number;
  /** Upper bound for a graceful stop: flush, ack, close. */
  readonly shutdownTimeoutMs: number;
  readonly queryTimeoutMs: number;
  /** How long one INSERT may take before it is retried: ClickHouse finishes an insert its client gave up on. */
  readonly insertTimeoutMs: number;
  readonly logLevel: LogLevel;
}

export class ConfigError extends Error {
  /** Stable, for callers that branch on it; `variable` names the culprit. */
  readonly code = 'config_invalid';
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

function raw(env: Env, name: string): string | undefined {
  const value = env[name];
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  return trimmed === '' ? undefined : trimmed;
}

function str(env: Env, name: string, fallback: string): string {
  return raw(env, name) ?? fallback;
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value)) {
    throw new ConfigError(name, `expected a whole number from ${min} to ${max}, got "${value}"`);
  }
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new ConfigError(name, `expected a whole number from ${min} to ${max}, got "${value}"`);
  }
  return n;
}

function optionalInt(env: Env, name: string, min: number, max: number): number | undefined {
  return raw(env, name) === undefined ? undefined : int(env, name, 0, min, max);
}

function url(env: Env, name: string, fallback: string, protocols: readonly string[]): string {
  const value = str(env, name, fallback);
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new ConfigError(name, `expected a URL (${protocols.join(', ')}), got "${value}"`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `expected a URL with scheme ${protocols.join(' or ')}, got "${value}"`);
  }
  return value;
}

function name(env: Env, variable: string, fallback: string): string {
  const value = str(env, variable, fallback);
  // AMQP short strings: at most 255 bytes; keep to printable characters.
  if (Buffer.byteLength(value) > 255 || !/^[\w.:@/-]+$/.test(value)) {
    throw new ConfigError(
      variable,
      `expected a name of letters, digits and . _ - : @ / (at most 255 bytes), got "${value}"`,
    );
  }
  return value;
}

/** Storage's rule for database names, checked here so that a bad one stops the start naming the variable. */
function database(env: Env, variable: string, fallback: string): string {
  const value = str(env, variable, fallback);
  try {
    return checkIdentifier('database', value);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConfigError(variable, `${reason}; expected letters, digits and _, not starting with a digit, at most 63, and not ClickHouse's own (system, information_schema)`);
  }
}

/** An http(s) URL the store can use: storage's rule, i.e. what @clickhouse/client accepts (it reads options from URL parameters and refuses unknown ones). */
function clickhouseUrl(env: Env, variable: string, fallback: string): string {
  const value = url(env, variable, fallback, ['http:', 'https:']);
  try {
    ClickHouseStore.checkUrl(value);
  } catch (error) {
    throw new ConfigError(variable, error instanceof Error ? error.message : String(error));
  }
  return value;
}

function oneOf<T extends string>(env: Env, variable: string, fallback: T, allowed: readonly T[]): T {
  const value = str(env, variable, fallback).toLowerCase();
  if (!(allowed as readonly string[]).includes(value)) {
    throw new ConfigError(variable, `expected one of ${allowed.join(', ')}, got "${value}"`);
  }
  return value as T;
}

function jsonObject(env: Env, variable: string): Record<string, unknown> {
  const value = raw(env, variable);
  if (value === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new ConfigError(variable, `expected a JSON object such as {"x-max-length":1000000}, got "${value}"`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(variable, `expected a JSON object such as {"x-max-length":1000000}, got "${value}"`);
  }
  return parsed as Record<string, unknown>;
}

const MiB = 1024 * 1024;

/** Reads every variable the collector knows. Throws ConfigError on the first bad one. */
export function parseConfig(env: Env = process.env): CollectorConfig {
  const queue = name(env, 'TRACEHOUSE_QUEUE', 'zipkin');
  const batchSpans = int(env, 'TRACEHOUSE_COLLECTOR_BATCH_SPANS', 10_000, 1, 1_000_000);
  const insertConcurrency = int(env, 'TRACEHOUSE_COLLECTOR_INSERT_CONCURRENCY', 2, 1, 16);
  const insertMaxSpans = int(env, 'TRACEHOUSE_COLLECTOR_INSERT_MAX_SPANS', Math.max(50_000, batchSpans), 1, 1_000_000);
  if (insertMaxSpans < batchSpans) {
    throw new ConfigError('TRACEHOUSE_COLLECTOR_INSERT_MAX_SPANS', `must be at least TRACEHOUSE_COLLECTOR_BATCH_SPANS (${batchSpans})`);
  }
  // Zipkin reporters send hundreds of spans per message; assume ~50 so that a
  // batch fills by span count, and let the broker hand out enough messages for
  // every concurrent batch plus the one being filled.
  const batchMessagesDefault = Math.max(10, Math.ceil(batchSpans / 50));
  const batchMessages = int(env, 'TRACEHOUSE_COLLECTOR_BATCH_MESSAGES', batchMessagesDefault, 1, 65_535);
  const prefetchDefault = Math.min(65_535, batchMessages * (insertConcurrency + 1));
  const prefetch = int(env, 'TRACEHOUSE_COLLECTOR_PREFETCH', prefetchDefault, 1, 65_535);
  const queueType = oneOf<QueueType>(env, 'TRACEHOUSE_QUEUE_TYPE', 'classic', ['classic', 'quorum']);
  const queueArguments = jsonObject(env, 'TRACEHOUSE_QUEUE_ARGUMENTS');
  if ('x-queue-type' in queueArguments && queueArguments['x-queue-type'] !== queueType) {
    throw new ConfigError('TRACEHOUSE_QUEUE_ARGUMENTS', 'set the queue type with TRACEHOUSE_QUEUE_TYPE, not x-queue-type');
  }
  const retryInitialMs = int(env, 'TRACEHOUSE_COLLECTOR_RETRY_INITIAL_MS', 200, 1, 600_000);
  const retryMaxMs = int(env, 'TRACEHOUSE_COLLECTOR_RETRY_MAX_MS', 5_000, 1, 3_600_000);
  if (retryMaxMs < retryInitialMs) {
    throw new ConfigError('TRACEHOUSE_COLLECTOR_RETRY_MAX_MS', `must be at least TRACEHOUSE_COLLECTOR_RETRY_INITIAL_MS (${retryInitialMs})`);
  }
  const reconnectInitialMs = int(env, 'TRACEHOUSE_COLLECTOR_RECONNECT_INITIAL_MS', 200, 1, 600_000);
  const reconnectMaxMs = int(env, 'TRACEHOUSE_COLLECTOR_RECONNECT_MAX_MS', 5_000, 1, 3_600_000);
  if (reconnectMaxMs < reconnectInitialMs) {
    throw new ConfigError('TRACEHOUSE_COLLECTOR_RECONNECT_MAX_MS', `must be at least TRACEHOUSE_COLLECTOR_RECONNECT_INITIAL_MS (${reconnectInitialMs})`);
  }
  const deadLetterQueue = name(env, 'TRACEHOUSE_DEAD_LETTER_QUEUE', `${queue}.dlq`);
  // Dead letters would be consumed again, dead-lettered again, forever.
  if (deadLetterQueue === queue) {
    throw new ConfigError('TRACEHOUSE_DEAD_LETTER_QUEUE', `must differ from TRACEHOUSE_QUEUE ("${queue}"), or poison messages loop back into the span queue`);
  }

  return Object.freeze({
    rabbitmqUrl: url(env, 'TRACEHOUSE_RABBITMQ_URL', 'amqp://guest:guest@127.0.0.1:5672', ['amqp:', 'amqps:']),
    rabbitmqConnectTimeoutMs: int(env, 'TRACEHOUSE_RABBITMQ_CONNECT_TIMEOUT_MS', 10_000, 100, 600_000),
    queue,
    queueType,
    queueArguments: Object.freeze(queueArguments),
    deadLetterExchange: name(env, 'TRACEHOUSE_DEAD_LETTER_EXCHANGE', `${queue}.dlx`),
    deadLetterQueue,
    clickhouseUrl: clickhouseUrl(env, 'TRACEHOUSE_CLICKHOUSE_URL', 'http://127.0.0.1:8123'),
    clickhouseDatabase: database(env, 'TRACEHOUSE_CLICKHOUSE_DATABASE', 'tracehouse'),
    retentionDays: optionalInt(env, 'TRACEHOUSE_RETENTION_DAYS', 1, 36_500),
    retentionIntervalMs: int(env, 'TRACEHOUSE_COLLECTOR_RETENTION_INTERVAL_MS', 3_600_000, 1_000, 86_400_000 * 7),
    adminHost: str(env, 'TRACEHOUSE_COLLECTOR_HOST', '0.0.0.0'),
    adminPort: int(env, 'TRACEHOUSE_COLLECTOR_PORT', 9412, 0, 65_535),
    batchSpans,
    batchMessages,
    batchAgeMs: int(env, 'TRACEHOUSE_COLLECTOR_BATCH_AGE_MS', 1_000, 1, 600_000),
    prefetch,
    insertConcurrency,
    insertMaxSpans,
    maxMessageBytes: int(env, 'TRACEHOUSE_COLLECTOR_MAX_MESSAGE_BYTES', 4 * MiB, 1_024, 512 * MiB),
    maxPendingBytes: int(env, 'TRACEHOUSE_COLLECTOR_MAX_PENDING_BYTES', 256 * MiB, 1_024, 1024 * 1024 * MiB),
    retryInitialMs,
    retryMaxMs,
    reconnectInitialMs,
    reconnectMaxMs,
    shutdownTimeoutMs: int(env, 'TRACEHOUSE_COLLECTOR_SHUTDOWN_TIMEOUT_MS', 10_000, 100, 600_000),
    queryTimeoutMs: int(env, 'TRACEHOUSE_CLICKHOUSE_TIMEOUT_MS', 30_000, 100, 3_600_000),
    insertTimeoutMs: int(env, 'TRACEHOUSE_CLICKHOUSE_INSERT_TIMEOUT_MS', 300_000, 100, 3_600_000),
    logLevel: oneOf<LogLevel>(env, 'TRACEHOUSE_LOG_LEVEL', 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  });
}

/** The variables parseConfig reads, with what they accept, for `--help`. */
export const CONFIG_HELP = `Environment variables (defaults in brackets):
  TRACEHOUSE_RABBITMQ_URL                 amqp(s) URL [amqp://guest:guest@127.0.0.1:5672]
  TRACEHOUSE_RABBITMQ_CONNECT_TIMEOUT_MS  TCP connect + AMQP handshake bound [10000]
  TRACEHOUSE_QUEUE                        span queue [zipkin]
  TRACEHOUSE_QUEUE_TYPE                   classic | quorum, used when declaring the queue [classic]
  TRACEHOUSE_QUEUE_ARGUMENTS              JSON object of extra x- arguments when declaring the span queue (not the dead-letter queue) [{}]
  TRACEHOUSE_DEAD_LETTER_EXCHANGE         exchange for poison messages [<queue>.dlx]
  TRACEHOUSE_DEAD_LETTER_QUEUE            queue for poison messages, not the span queue [<queue>.dlq]
  TRACEHOUSE_CLICKHOUSE_URL               http(s) URL; parameters only those @clickhouse/client knows [http://127.0.0.1:8123]
  TRACEHOUSE_CLICKHOUSE_DATABASE          database: letters, digits and _, not starting with a digit, at most 63 [tracehouse]
  TRACEHOUSE_CLICKHOUSE_TIMEOUT_MS        per-request timeout [30000]
  TRACEHOUSE_CLICKHOUSE_INSERT_TIMEOUT_MS  per-INSERT timeout; the server finishes an insert given up on, so a retry stores it twice [300000]
  TRACEHOUSE_RETENTION_DAYS               days of spans kept, also set as the tables' TTL [the tables' TTL; 7 on a new database]
  TRACEHOUSE_COLLECTOR_RETENTION_INTERVAL_MS  how often retention runs [3600000]
  TRACEHOUSE_COLLECTOR_HOST               admin server address [0.0.0.0]
  TRACEHOUSE_COLLECTOR_PORT               admin server port: /health /ready /metrics [9412]
  TRACEHOUSE_COLLECTOR_BATCH_SPANS        spans per insert [10000]
  TRACEHOUSE_COLLECTOR_BATCH_MESSAGES     messages per insert [batch spans / 50]
  TRACEHOUSE_COLLECTOR_BATCH_AGE_MS       oldest span waits at most this long [1000]
  TRACEHOUSE_COLLECTOR_INSERT_CONCURRENCY inserts in flight [2]
  TRACEHOUSE_COLLECTOR_INSERT_MAX_SPANS   batches waiting for ClickHouse are merged into inserts of up to this many spans [max(50000, batch spans)]
  TRACEHOUSE_COLLECTOR_PREFETCH           unacked messages per replica [batch messages x (concurrency + 1)]
  TRACEHOUSE_COLLECTOR_MAX_MESSAGE_BYTES  largest message, compressed or not [4194304]
  TRACEHOUSE_COLLECTOR_MAX_PENDING_BYTES  rows of unacked messages at which consumption pauses, resuming below half [268435456]
  TRACEHOUSE_COLLECTOR_RETRY_INITIAL_MS / _RETRY_MAX_MS          insert retry backoff [200 / 5000]
  TRACEHOUSE_COLLECTOR_RECONNECT_INITIAL_MS / _RECONNECT_MAX_MS  RabbitMQ reconnect backoff [200 / 5000]
  TRACEHOUSE_COLLECTOR_SHUTDOWN_TIMEOUT_MS  bound for a graceful stop [10000]
  TRACEHOUSE_LOG_LEVEL                    fatal | error | warn | info | debug | trace | silent [info]
`;
