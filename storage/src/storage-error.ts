/**
 * The one error type the storage package throws. `retryable` tells a caller
 * (the collector) whether the same request may succeed later: connection
 * problems, timeouts, overload and unknown server errors are retryable; rows
 * the server cannot parse, bad input and a schema mismatch are not.
 */
export type StorageErrorCode =
  | 'connection' // could not reach the server, or the connection dropped
  | 'timeout' // the request exceeded queryTimeoutMs
  | 'overloaded' // the server refused work for now (too many parts, memory, too many queries)
  | 'server' // the server answered with another error
  | 'too_many_partitions' // one INSERT touched more day partitions than the server allows (rows spanning many days)
  | 'auth' // the server refused the credentials or the rights (unknown user, wrong password, access denied, read-only)
  | 'bad_input' // the caller's input cannot be bound (wrong type, out of range)
  | 'too_large' // the answer holds more bytes than the read allows (maxBytes)
  | 'schema' // migrations failed or the schema is not what this version expects
  | 'closed'; // the store was closed (retryable: another process may do it)

export class StorageError extends Error {
  readonly code: StorageErrorCode;
  readonly retryable: boolean;
  override readonly cause?: unknown;

  constructor(options: { code: StorageErrorCode; message: string; retryable?: boolean; cause?: unknown }) {
    super(options.message);
    this.name = 'StorageError';
    this.code = options.code;
    this.retryable = options.retryable ?? defaultRetryable(options.code);
    if (options.cause !== undefined) this.cause = options.cause;
  }
}

function defaultRetryable(code: StorageErrorCode): boolean {
  return code === 'connection' || code === 'timeout' || code === 'overloaded' || code === 'closed';
}

/** Work refused because the store was closed: may succeed elsewhere, so retryable (never dead-letter for it). */
export function closedError(): StorageError {
  return new StorageError({ code: 'closed', retryable: true, message: 'the ClickHouse store is closed' });
}
