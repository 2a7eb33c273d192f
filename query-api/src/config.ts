/**
 * The query API's configuration, read once from the environment into a frozen
 * object. A bad value is a ConfigError naming the variable and what it accepts;
 * the bin prints it and exits.
 */
import { DEFAULT_MAX_RESULT_BYTES, checkIdentifier } from '@tracehouse/storage';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export interface QueryApiConfig {
  /** TRACEHOUSE_QUERY_PORT, default 9411. */
  readonly port: number;
  /** TRACEHOUSE_QUERY_HOST, default 0.0.0.0. */
  readonly host: string;
  /** TRACEHOUSE_CLICKHOUSE_URL, default http://127.0.0.1:8123 (`chdb:` opens the embedded engine). */
  readonly clickhouseUrl: string;
  /** TRACEHOUSE_CLICKHOUSE_DATABASE, default tracehouse. */
  readonly clickhouseDatabase: string;
  /** TRACEHOUSE_QUERY_DEFAULT_LIMIT, default 10 (Zipkin's). */
  readonly defaultLimit: number;
  /** TRACEHOUSE_QUERY_MAX_LIMIT, default 1000: a larger `limit` is a 400. */
  readonly maxLimit: number;
  /** TRACEHOUSE_QUERY_DEFAULT_LOOKBACK_MS, default 86400000 (1 day, Zipkin's QUERY_LOOKBACK). */
  readonly defaultLookbackMs: number;
  /** TRACEHOUSE_QUERY_MAX_LOOKBACK_MS, default 604800000 (7 days): a larger `lookback` is clamped to it. */
  readonly maxLookbackMs: number;
  /** TRACEHOUSE_QUERY_TIMEOUT_MS, default 10000: a slower read answers 504. */
  readonly queryTimeoutMs: number;
  /**
   * TRACEHOUSE_QUERY_MAX_RESULT_BYTES, default 67108864 (64 MiB): the most bytes of stored spans
   * one request reads; a larger answer is a 400 RESULT_TOO_LARGE rather than a process out of memory.
   */
  readonly maxResultBytes: number;
  /**
   * TRACEHOUSE_QUERY_CORS_ORIGINS, default `*`: `*` (any origin), `off` (no CORS
   * headers), or a comma-separated list of origins such as `http://localhost:3000`.
   */
  readonly corsOrigins: '*' | 'off' | readonly string[];
  /** TRACEHOUSE_QUERY_BEARER_TOKEN, optional: when set every route but /health needs `Authorization: Bearer <token>`. */
  readonly bearerToken: string | undefined;
  /**
   * TRACEHOUSE_QUERY_STRICT_TRACE_ID, default true (Zipkin's STRICT_TRACE_ID):
   * when false a 16-character trace id also finds the 32-character trace with those low 64 bits.
   */
  readonly strictTraceId: boolean;
  /** TRACEHOUSE_AUTOCOMPLETE_KEYS, optional comma-separated tag keys (Zipkin's AUTOCOMPLETE_KEYS); absent: every tag key. */
  readonly autocompleteKeys: readonly string[] | undefined;
  /** TRACEHOUSE_LOG_LEVEL, default info. */
  readonly logLevel: LogLevel;
}

export class ConfigError extends Error {
  /** Stable, for callers that branch on it; `variable` names the culprit. */
  readonly code = 'config_invalid';
  readonly variable: string;
  /** `reason`, when given, says why this value was refused (a rule `accepts` alone does not make plain). */
  /** `value`: the text refused, or for a secret only its length (the message must not carry it into logs). */
  constructor(variable: string, accepts: string, value: string | { secretLength: number }, reason?: string) {
    const why = reason === undefined ? '' : ` (${reason})`;
    const shown = typeof value === 'string' ? `=${JSON.stringify(value)}` : ` (${value.secretLength} characters, not shown)`;
    super(`${variable}${shown} is invalid${why}: ${variable} accepts ${accepts}`);
    this.name = 'ConfigError';
    this.variable = variable;
  }
}

type Env = Readonly<Record<string, string | undefined>>;

function raw(env: Env, name: string): string | undefined {
  const value = env[name];
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  return trimmed === '' ? undefined : trimmed;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  const accepts = `an integer from ${min} to ${max}`;
  if (!/^\d+$/.test(value)) throw new ConfigError(name, accepts, value);
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) throw new ConfigError(name, accepts, value);
  return parsed;
}

function httpUrl(env: Env, name: string, fallback: string): string {
  const value = raw(env, name) ?? fallback;
  const accepts = 'an http:// or https:// URL such as http://127.0.0.1:8123, or chdb: / chdb:<dir> for the embedded engine';
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(name, accepts, value);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:' && url.protocol !== 'chdb:') throw new ConfigError(name, accepts, value);
  return value;
}

/** Storage's rule for database names, so that a bad one stops the start naming the variable. */
function identifier(env: Env, name: string, fallback: string): string {
  const value = raw(env, name) ?? fallback;
  try {
    return checkIdentifier('database', value);
  } catch (error) {
    // Storage's message tells which rule failed: the pattern, or being ClickHouse's own database.
    throw new ConfigError(
      name,
      "a database name of letters, digits and underscores (not starting with a digit), at most 63, other than ClickHouse's own (system, information_schema)",
      value,
      error instanceof Error ? error.message : String(error),
    );
  }
}

function corsOrigins(env: Env, name: string): QueryApiConfig['corsOrigins'] {
  const value = raw(env, name);
  if (value === undefined || value === '*') return '*';
  if (value.toLowerCase() === 'off') return 'off';
  const accepts = '`*`, `off`, or a comma-separated list of origins such as http://localhost:3000';
  const origins = value.split(',').map((origin) => origin.trim());
  for (const origin of origins) {
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      throw new ConfigError(name, accepts, value);
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin !== origin.replace(/\/$/, '')) {
      throw new ConfigError(name, accepts, value);
    }
  }
  return Object.freeze(origins.map((origin) => origin.replace(/\/$/, '')));
}

function bearerToken(env: Env, name: string): string | undefined {
  const value = raw(env, name);
  if (value === undefined) return undefined;
  // RFC 6750 b64token characters, so the header can carry it verbatim.
  if (!/^[A-Za-z0-9\-._~+/]+=*$/.test(value) || value.length < 8) {
    throw new ConfigError(name, 'a token of at least 8 characters from A-Z a-z 0-9 - . _ ~ + / (optionally ending in =)', {
      secretLength: value.length,
    });
  }
  return value;
}

function boolean(env: Env, name: string, fallback: boolean): boolean {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if (/^(true|1|yes)$/i.test(value)) return true;
  if (/^(false|0|no)$/i.test(value)) return false;
  throw new ConfigError(name, 'true or false', value);
}

function keyList(env: Env, name: string): readonly string[] | undefined {
  const value = raw(env, name);
  if (value === undefined) return undefined;
  const keys = value.split(',').map((key) => key.trim());
  // eslint-disable-next-line no-control-regex -- rejecting control characters is the point
  if (keys.some((key) => key === '' || key.length > 256 || /[\u0000-\u001f\u007f]/.test(key))) {
    throw new ConfigError(name, 'a comma-separated list of tag keys such as http.method,environment', value);
  }
  return Object.freeze(keys);
}

function logLevel(env: Env, name: string): LogLevel {
  const value = raw(env, name);
  if (value === undefined) return 'info';
  const level = LOG_LEVELS.find((candidate) => candidate === value.toLowerCase());
  if (level === undefined) throw new ConfigError(name, LOG_LEVELS.join(', '), value);
  return level;
}

const DAY_MS = 86_400_000;
const MAX_LOOKBACK_CEILING_MS = 3650 * DAY_MS;

/** Reads the configuration from `env` (default `process.env`). Throws ConfigError on a bad value. */
export function parseConfig(env: Env = process.env): QueryApiConfig {
  const maxLimit = integer(env, 'TRACEHOUSE_QUERY_MAX_LIMIT', 1000, 1, 100_000);
  const defaultLimit = integer(env, 'TRACEHOUSE_QUERY_DEFAULT_LIMIT', Math.min(10, maxLimit), 1, maxLimit);
  const maxLookbackMs = integer(env, 'TRACEHOUSE_QUERY_MAX_LOOKBACK_MS', 7 * DAY_MS, 1, MAX_LOOKBACK_CEILING_MS);
  const defaultLookbackMs = integer(
    env,
    'TRACEHOUSE_QUERY_DEFAULT_LOOKBACK_MS',
    Math.min(DAY_MS, maxLookbackMs),
    1,
    maxLookbackMs,
  );
  return Object.freeze({
    port: integer(env, 'TRACEHOUSE_QUERY_PORT', 9411, 0, 65_535),
    host: raw(env, 'TRACEHOUSE_QUERY_HOST') ?? '0.0.0.0',
    clickhouseUrl: httpUrl(env, 'TRACEHOUSE_CLICKHOUSE_URL', 'http://127.0.0.1:8123'),
    clickhouseDatabase: identifier(env, 'TRACEHOUSE_CLICKHOUSE_DATABASE', 'tracehouse'),
    defaultLimit,
    maxLimit,
    defaultLookbackMs,
    maxLookbackMs,
    queryTimeoutMs: integer(env, 'TRACEHOUSE_QUERY_TIMEOUT_MS', 10_000, 100, 600_000),
    maxResultBytes: integer(env, 'TRACEHOUSE_QUERY_MAX_RESULT_BYTES', DEFAULT_MAX_RESULT_BYTES, 1024, 1024 ** 3),
    corsOrigins: corsOrigins(env, 'TRACEHOUSE_QUERY_CORS_ORIGINS'),
    bearerToken: bearerToken(env, 'TRACEHOUSE_QUERY_BEARER_TOKEN'),
    strictTraceId: boolean(env, 'TRACEHOUSE_QUERY_STRICT_TRACE_ID', true),
    autocompleteKeys: keyList(env, 'TRACEHOUSE_AUTOCOMPLETE_KEYS'),
    logLevel: logLevel(env, 'TRACEHOUSE_LOG_LEVEL'),
  });
}

/** What `tracehouse-query-api --help` prints: every variable, its default and what it accepts. */
export const CONFIG_HELP = `Environment variables (read once at start):
  TRACEHOUSE_QUERY_PORT                  port to listen on [9411]
  TRACEHOUSE_QUERY_HOST                  address to bind [0.0.0.0]
  TRACEHOUSE_CLICKHOUSE_URL              ClickHouse HTTP URL, or chdb: for the embedded engine [http://127.0.0.1:8123]
  TRACEHOUSE_CLICKHOUSE_DATABASE         database name: letters, digits, _, at most 63; not system [tracehouse]
  TRACEHOUSE_QUERY_DEFAULT_LIMIT         traces returned when limit is absent [10]
  TRACEHOUSE_QUERY_MAX_LIMIT             largest accepted limit, 1-100000 [1000]
  TRACEHOUSE_QUERY_DEFAULT_LOOKBACK_MS   lookback when absent [86400000]
  TRACEHOUSE_QUERY_MAX_LOOKBACK_MS       longer lookbacks are clamped to this [604800000]
  TRACEHOUSE_QUERY_TIMEOUT_MS            per-request query timeout, 100-600000 [10000]
  TRACEHOUSE_QUERY_MAX_RESULT_BYTES      most bytes of spans one request reads, 1024-1073741824 [67108864]
  TRACEHOUSE_QUERY_CORS_ORIGINS          *, off, or comma-separated origins [*]
  TRACEHOUSE_QUERY_BEARER_TOKEN          when set (8+ characters), required on every route but /health
  TRACEHOUSE_QUERY_STRICT_TRACE_ID       true/false: match trace ids exactly, as Zipkin does [true]
  TRACEHOUSE_AUTOCOMPLETE_KEYS           comma-separated tag keys offered by /autocompleteKeys [every key]
  TRACEHOUSE_LOG_LEVEL                   fatal, error, warn, info, debug, trace, silent [info]`;
