import { Readable } from 'node:stream';
import { ClickHouseLogLevel, EXCEPTION_TAG_HEADER_NAME, createClient, extractErrorAtTheEndOfChunk, type ClickHouseClient } from '@clickhouse/client';
import type { Engine, ReadOptions, TextReadOptions } from './engine.js';
import type { BoundSql } from './sql-binding.js';
import { toStorageError } from './error-mapping.js';
import { closedError } from './storage-error.js';

export interface HttpEngineOptions {
  url: string;
  username?: string;
  password?: string;
  queryTimeoutMs: number;
  /** How long an INSERT may take before the engine gives up on it (default: queryTimeoutMs). */
  insertTimeoutMs?: number;
}

/** How long ping() waits for ClickHouse's /ping (at most the query timeout). */
const PING_TIMEOUT_MS = 5_000;

/** ClickHouse over HTTP through @clickhouse/client (any server version). */
export class HttpEngine implements Engine {
  readonly kind = 'http' as const;
  readonly #client: ClickHouseClient;
  /**
   * INSERTs go through a client of their own, with their own timeout: a server finishes an
   * INSERT the client gave up on, so an insert timed out too soon is stored, then sent again by
   * the caller's retry, again and again while the server is slow.
   */
  readonly #inserter: ClickHouseClient;
  #closed = false;
  readonly #pingTimeoutMs: number;
  readonly #readSettings: { max_execution_time: number; use_uncompressed_cache: 0 | 1 };

  constructor(options: HttpEngineOptions) {
    const client = (requestTimeoutMs: number): ClickHouseClient =>
      createClient({
        url: options.url,
        username: options.username ?? 'default',
        password: options.password ?? '',
        request_timeout: requestTimeoutMs,
        // Local traffic: compression would only cost CPU on both sides.
        compression: { request: false, response: false },
        max_open_connections: 16,
        // Failures reach the caller as StorageError; the driver need not print them too.
        log: { level: ClickHouseLogLevel.OFF },
      });
    this.#pingTimeoutMs = Math.min(PING_TIMEOUT_MS, options.queryTimeoutMs);
    this.#client = client(options.queryTimeoutMs);
    this.#inserter = client(options.insertTimeoutMs ?? options.queryTimeoutMs);
    this.#readSettings = {
      max_execution_time: Math.max(1, Math.ceil(options.queryTimeoutMs / 1000)),
      // Lookups by trace id read a few granules again and again (trace_index,
      // spans); keeping them decompressed roughly halves their latency. The
      // server only uses this cache for small reads, so searches are unaffected.
      use_uncompressed_cache: 1,
    };
  }

  async execute(statement: BoundSql): Promise<void> {
    this.#open();
    try {
      await this.#client.command({ query: statement.sql, ...this.#params(statement) });
    } catch (error) {
      throw toStorageError(error, 'ClickHouse statement failed');
    }
  }

  /** A read with the read settings, as JSONEachRow unless told otherwise; `maxBytes` has the server refuse a larger answer. */
  #select(
    statement: BoundSql,
    options: TextReadOptions | undefined,
    format: 'JSONEachRow' | 'TabSeparatedRaw' | 'TabSeparated' = 'JSONEachRow',
  ) {
    const maxBytes = options?.maxBytes;
    return this.#client.query({
      query: statement.sql,
      format,
      clickhouse_settings:
        maxBytes === undefined ? this.#readSettings : { ...this.#readSettings, max_result_bytes: String(maxBytes), result_overflow_mode: 'throw' },
      ...this.#params(statement),
      ...this.#abort(options),
    });
  }

  async query<T>(statement: BoundSql, options?: ReadOptions): Promise<T[]> {
    this.#open();
    options?.signal?.throwIfAborted();
    try {
      const result = await this.#select(statement, options);
      return await result.json<T>();
    } catch (error) {
      throw this.#readError(error, options);
    }
  }

  async queryEach<T>(statement: BoundSql, onRow: (row: T) => void, options?: ReadOptions): Promise<void> {
    this.#open();
    options?.signal?.throwIfAborted();
    let consumerError: { error: unknown } | undefined;
    try {
      const result = await this.#select(statement, options);
      // Leaving the loop early (an error) destroys the response stream.
      for await (const rows of result.stream<T>()) {
        for (const row of rows) {
          const value = parseRow<T>(row.text);
          try {
            onRow(value);
          } catch (error) {
            consumerError = { error };
            throw error;
          }
        }
      }
    } catch (error) {
      if (consumerError !== undefined) throw consumerError.error;
      throw this.#readError(error, options);
    }
  }

  async queryText(statement: BoundSql, format: 'TabSeparatedRaw' | 'TabSeparated', options?: TextReadOptions): Promise<string> {
    this.#open();
    options?.signal?.throwIfAborted();
    try {
      const result = await this.#select(statement, options, format);
      const text = await result.text();
      const tag = result.response_headers[EXCEPTION_TAG_HEADER_NAME];
      const failure = trailingServerError(text, typeof tag === 'string' ? tag : undefined);
      if (failure !== undefined) throw failure;
      return text;
    } catch (error) {
      throw this.#readError(error, options);
    }
  }

  async insertTabSeparated(table: string, columns: readonly string[], parts: readonly Buffer[]): Promise<void> {
    this.#open();
    try {
      await this.#inserter.insert({
        table,
        // The parts go out one after the other: no copy into one body.
        values: Readable.from(parts, { objectMode: false }),
        format: 'TabSeparated',
        columns: columns as [string, ...string[]],
      });
    } catch (error) {
      throw toStorageError(error, 'ClickHouse insert failed');
    }
  }

  async ping(): Promise<boolean> {
    if (this.#closed) return false;
    try {
      // A health check: a server that leaves /ping unanswered this long is not healthy, and
      // readiness must say so now, not after the query timeout (30 s by default).
      const result = await this.#client.ping({ select: false, abort_signal: AbortSignal.timeout(this.#pingTimeoutMs) });
      return result.success;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([this.#client.close(), this.#inserter.close()]);
  }

  #open(): void {
    if (this.#closed) throw closedError();
  }

  #params(statement: BoundSql): { query_params?: Record<string, unknown> } {
    return Object.keys(statement.params).length > 0 ? { query_params: statement.params } : {};
  }

  /** The driver cancels the HTTP request when the signal aborts. */
  #abort(options: ReadOptions | undefined): { abort_signal?: AbortSignal } {
    return options?.signal === undefined ? {} : { abort_signal: options.signal };
  }

  /** A read the caller aborted rejects with the signal's reason, not the driver's "aborted" error. */
  #readError(error: unknown, options: ReadOptions | undefined): unknown {
    const signal = options?.signal;
    return signal?.aborted === true ? signal.reason : toStorageError(error, 'ClickHouse query failed');
  }
}

/**
 * The server error that ends a text answer, if one does. A server that fails
 * after it started answering has already sent "200 OK" and some rows: it
 * appends the error, either as a last line "Code: N, ... DB::Exception ..."
 * (before 25.11) or framed with the exception tag of its response headers
 * (25.11 on; the driver's extractErrorAtTheEndOfChunk reads that frame, but
 * only its stream() applies it, not text()). Read as rows, that error would
 * pass for a shorter, whole answer.
 */
export function trailingServerError(text: string, exceptionTag: string | undefined): Error | undefined {
  if (exceptionTag !== undefined && exceptionTag !== '' && text.endsWith(` ${exceptionTag}\r\n__exception__\r\n`)) {
    // The frame carries its message's length: the tail holds all of it unless a message is huge.
    return extractErrorAtTheEndOfChunk(Buffer.from(text.slice(-TAGGED_ERROR_TAIL_CHARS)), exceptionTag);
  }
  const end = text.endsWith('\n') ? text.length - 1 : text.length;
  const lastLine = text.slice(text.lastIndexOf('\n', end - 1) + 1, end);
  return /^Code: \d+[.,] .*DB::Exception/.test(lastLine) ? new Error(lastLine) : undefined;
}

/** How much of a text answer's end a tagged error frame is looked for in. */
const TAGGED_ERROR_TAIL_CHARS = 65_536;

/**
 * One JSONEachRow line. A server that fails after it started answering either
 * appends "Code: N, ..." as a line of its own (18.16) or, with
 * http_write_exception_in_output_format, a row `{"exception":"Code: N, ..."}`
 * (later servers): both become an Error carrying the text, for toStorageError.
 */
export function parseRow<T>(text: string): T {
  let row: unknown;
  try {
    row = JSON.parse(text);
  } catch (error) {
    if (/^Code: \d+/.test(text)) throw new Error(text.trim(), { cause: error });
    throw error;
  }
  const exception = (row as { exception?: unknown } | null)?.exception;
  if (typeof exception === 'string' && Object.keys(row as object).length === 1) throw new Error(exception.trim());
  return row as T;
}
