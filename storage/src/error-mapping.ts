import { StorageError } from './storage-error.js';

// ClickHouse error codes after which the same request may well succeed later.
const OVERLOADED_CODES = new Set([
  202, // TOO_MANY_SIMULTANEOUS_QUERIES
  241, // MEMORY_LIMIT_EXCEEDED
  252, // TOO_MANY_PARTS (but see TOO_MANY_PARTITIONS)
  236, // ABORTED
  242, // TABLE_IS_READ_ONLY
  319, // UNKNOWN_STATUS_OF_INSERT
  425, // SYSTEM_ERROR
  439, // CANNOT_SCHEDULE_TASK
]);
const TIMEOUT_CODES = new Set([159, 160, 209]); // TIMEOUT_EXCEEDED, TOO_SLOW, SOCKET_TIMEOUT
const NETWORK_CODES = new Set([210, 279, 394]); // NETWORK_ERROR, ALL_CONNECTION_TRIES_FAILED, QUERY_WAS_CANCELLED
// The user or its rights: an operator must act. Retryable all the same: an
// insert waits for the fix rather than dead-letter good spans; opening a store
// (collector, query API) gives up on them instead.
const AUTH_CODES = new Set([
  164, // READONLY
  192, // UNKNOWN_USER
  193, // WRONG_PASSWORD
  194, // REQUIRED_PASSWORD
  195, // IP_ADDRESS_NOT_ALLOWED
  497, // ACCESS_DENIED
  516, // AUTHENTICATION_FAILED
]);
const TOO_MANY_ROWS_OR_BYTES = 396; // the read's max_result_bytes (TextReadOptions.maxBytes) was exceeded

// Errors caused by the rows themselves: sending the same rows again fails the
// same way, so a caller may set them aside (the collector dead-letters them).
// Every other server error (a full disk, a proxy's 502, replication trouble,
// an error code this list does not know) is retryable: giving up on good spans
// because of a server-side condition would lose them.
const REJECTED_DATA_CODES = new Set([
  6, // CANNOT_PARSE_TEXT
  26, // CANNOT_PARSE_QUOTED_STRING
  27, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  32, // ATTEMPT_TO_READ_AFTER_EOF
  33, // CANNOT_READ_ALL_DATA
  38, // CANNOT_PARSE_DATE
  41, // CANNOT_PARSE_DATETIME
  53, // TYPE_MISMATCH
  69, // ARGUMENT_OUT_OF_BOUND
  70, // CANNOT_CONVERT_TYPE
  72, // CANNOT_PARSE_NUMBER
  117, // INCORRECT_DATA
  131, // TOO_LARGE_STRING_SIZE
  349, // CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
]);

// Code 252 also covers one INSERT touching more partitions (days) than
// max_partitions_per_insert_block allows (modern servers; 18.16 has no such
// limit). That depends on the rows alone, so retrying the same batch never
// succeeds: it is refused for good, and the collector narrows the batch down
// and dead-letters only a message that spans too many days by itself.
const TOO_MANY_PARTITIONS = /too many partitions for single insert block/i;

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
  const code = clickhouseCode(error);
  if (TOO_MANY_PARTITIONS.test(message)) {
    return new StorageError({
      code: 'too_many_partitions',
      retryable: false,
      message:
        `${what}: the spans cover more days than ClickHouse accepts in one INSERT ` +
        `(tables are partitioned by day; server setting max_partitions_per_insert_block): ${message}`,
      cause: error,
    });
  }
  if (typeof errno === 'string' && NETWORK_ERRNOS.has(errno)) {
    return new StorageError({ code: 'connection', message: `${what}: ${message}`, cause: error });
  }
  if (/timeout/i.test(message) && code === undefined) {
    return new StorageError({ code: 'timeout', message: `${what}: ${message}`, cause: error });
  }
  if (/socket hang up|other side closed|ECONNRESET|ECONNREFUSED/i.test(message)) {
    return new StorageError({ code: 'connection', message: `${what}: ${message}`, cause: error });
  }
  if (code !== undefined) {
    if (TIMEOUT_CODES.has(code)) return new StorageError({ code: 'timeout', message: `${what}: ${message}`, cause: error });
    if (NETWORK_CODES.has(code)) return new StorageError({ code: 'connection', message: `${what}: ${message}`, cause: error });
    if (code === TOO_MANY_ROWS_OR_BYTES) {
      return new StorageError({ code: 'too_large', message: `${what}: ${message}`, cause: error, retryable: false });
    }
    if (AUTH_CODES.has(code)) return new StorageError({ code: 'auth', message: `${what}: ${message}`, cause: error, retryable: true });
    if (OVERLOADED_CODES.has(code)) {
      return new StorageError({ code: 'overloaded', message: `${what}: ${message}`, cause: error });
    }
    if (REJECTED_DATA_CODES.has(code)) {
      return new StorageError({ code: 'server', message: `${what}: ${message}`, cause: error, retryable: false });
    }
  }
  return new StorageError({ code: 'server', message: `${what}: ${message}`, cause: error, retryable: true });
}
