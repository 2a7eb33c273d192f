import { StorageError } from './storage-error.js';

// ClickHouse error codes after which the same request may well succeed later.
const OVERLOADED_CODES = new Set([
  202, // TOO_MANY_SIMULTANEOUS_QUERIES
  241, // MEMORY_LIMIT_EXCEEDED
  252, // TOO_MANY_PARTS
  236, // ABORTED
  242, // TABLE_IS_READ_ONLY
  319, // UNKNOWN_STATUS_OF_INSERT
  425, // SYSTEM_ERROR
  439, // CANNOT_SCHEDULE_TASK
]);
const TIMEOUT_CODES = new Set([159, 160, 209]); // TIMEOUT_EXCEEDED, TOO_SLOW, SOCKET_TIMEOUT
const NETWORK_CODES = new Set([210, 279, 394]); // NETWORK_ERROR, ALL_CONNECTION_TRIES_FAILED, QUERY_WAS_CANCELLED

const NETWORK_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
]);

/** The numeric ClickHouse error code carried by a driver error, if any. */
export function clickhouseCode(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const record = error as Record<string, unknown>;
  for (const key of ['clickhouseCode', 'code']) {
    const raw = record[key];
    if (typeof raw === 'number' && Number.isInteger(raw)) return raw;
    if (typeof raw === 'string' && /^\d+$/.test(raw)) return Number(raw);
  }
  const message = typeof record.message === 'string' ? record.message : '';
  const match = /Code: (\d+)/.exec(message);
  return match ? Number(match[1]) : undefined;
}

/** Turns whatever a driver threw into a StorageError saying whether to retry. */
export function toStorageError(error: unknown, what: string): StorageError {
  if (error instanceof StorageError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const errno = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  if (typeof errno === 'string' && NETWORK_ERRNOS.has(errno)) {
    return new StorageError({ code: 'connection', message: `${what}: ${message}`, cause: error });
  }
  if (/timeout/i.test(message) && clickhouseCode(error) === undefined) {
    return new StorageError({ code: 'timeout', message: `${what}: ${message}`, cause: error });
  }
  if (/socket hang up|other side closed|ECONNRESET|ECONNREFUSED/i.test(message)) {
    return new StorageError({ code: 'connection', message: `${what}: ${message}`, cause: error });
  }
  const code = clickhouseCode(error);
  if (code !== undefined) {
    if (TIMEOUT_CODES.has(code)) return new StorageError({ code: 'timeout', message: `${what}: ${message}`, cause: error });
    if (NETWORK_CODES.has(code)) return new StorageError({ code: 'connection', message: `${what}: ${message}`, cause: error });
    if (OVERLOADED_CODES.has(code)) {
      return new StorageError({ code: 'overloaded', message: `${what}: ${message}`, cause: error });
    }
  }
  return new StorageError({ code: 'server', message: `${what}: ${message}`, cause: error, retryable: false });
}
