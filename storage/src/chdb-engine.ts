import type { Session } from 'chdb';
import type { Engine, ReadOptions, TextReadOptions } from './engine.js';
import type { BoundSql } from './sql-binding.js';
import { StorageError, closedError } from './storage-error.js';
import { toStorageError } from './error-mapping.js';

/**
 * The embedded current ClickHouse engine (npm `chdb`, a devDependency used by
 * tests). chdb allows one data directory per process, so every ChdbEngine of
 * a process shares one Session, closed when the last engine closes.
 */
interface SharedSession {
  session: Session;
  path: string | undefined;
  users: number;
}

let shared: SharedSession | undefined;

export class ChdbEngine implements Engine {
  readonly kind = 'chdb' as const;
  #session: Session | undefined;
  readonly #timeoutMs: number;

  private constructor(session: Session, timeoutMs: number) {
    this.#session = session;
    this.#timeoutMs = timeoutMs;
  }

  /** `path` undefined: a temporary directory shared by the process. */
  static async open(options: { path?: string; queryTimeoutMs: number }): Promise<ChdbEngine> {
    if (shared !== undefined) {
      if (options.path !== undefined && options.path !== shared.path) {
        throw new StorageError({
          code: 'connection',
          retryable: false,
          message: `chdb already has ${shared.path ?? 'a temporary directory'} open in this process; it cannot open ${options.path} too`,
        });
      }
      shared.users += 1;
      return new ChdbEngine(shared.session, options.queryTimeoutMs);
    }
    let chdb: typeof import('chdb');
    try {
      chdb = await import('chdb');
    } catch (error) {
      throw new StorageError({
        code: 'connection',
        retryable: false,
        message: 'the chdb: URL needs the optional package "chdb" (npm install chdb)',
        cause: error,
      });
    }
    // Another open() may have raced us through the await above.
    if (shared === undefined) {
      // Same JSON shape as a server over HTTP: 64-bit integers as strings.
      const session = new chdb.Session(options.path, { connectionArgs: ['--output_format_json_quote_64bit_integers=1'] });
      shared = { session, path: options.path, users: 0 };
    }
    shared.users += 1;
    return new ChdbEngine(shared.session, options.queryTimeoutMs);
  }

  #live(): Session {
    if (this.#session === undefined) throw closedError();
    return this.#session;
  }

  async #run(statement: BoundSql, format: string, read?: ReadOptions): Promise<string> {
    const session = this.#live();
    // chdb cannot cancel a query: an aborted read only never starts.
    read?.signal?.throwIfAborted();
    try {
      const options = { format, timeout: this.#timeoutMs };
      const result =
        Object.keys(statement.params).length > 0
          ? await session.queryBindAsync(statement.sql, statement.params, options)
          : await session.queryAsync(statement.sql, options);
      return result.text();
    } catch (error) {
      await this.#discardLeftovers(session);
      throw toStorageError(error, 'chdb query failed');
    }
  }

  /**
   * chdb 3.4 keeps the rows a query produced before it failed and hands them
   * to the session's next query, ahead of that query's own answer. A throwaway
   * query takes them, so the next read gets its own rows only.
   */
  async #discardLeftovers(session: Session): Promise<void> {
    try {
      await session.queryAsync('SELECT 1', { format: 'TabSeparated', timeout: this.#timeoutMs });
    } catch {
      // The session is unusable; the next read will say so.
    }
  }

  async execute(statement: BoundSql): Promise<void> {
    await this.#run(statement, 'TabSeparated');
  }

  async query<T>(statement: BoundSql, options?: ReadOptions): Promise<T[]> {
    const text = await this.#run(statement, 'JSONEachRow', options);
    const rows: T[] = [];
    for (const line of text.split('\n')) if (line.length > 0) rows.push(JSON.parse(line) as T);
    return rows;
  }

  /**
   * chdb's queryStream allows one active stream per session, and every chdb:
   * store of the process shares one session, so concurrent reads would fail.
   * The result is therefore read whole as text and parsed one row at a time.
   */
  async queryEach<T>(statement: BoundSql, onRow: (row: T) => void, options?: ReadOptions): Promise<void> {
    const text = await this.#run(statement, 'JSONEachRow', options);
    for (let start = 0; start < text.length; ) {
      const end = text.indexOf('\n', start);
      const stop = end === -1 ? text.length : end;
      if (stop > start) onRow(JSON.parse(text.slice(start, stop)) as T);
      start = stop + 1;
    }
  }

  async queryText(statement: BoundSql, format: 'TabSeparatedRaw' | 'TabSeparated', options?: TextReadOptions): Promise<string> {
    const text = await this.#run(statement, format, options);
    // Embedded, the answer is in this process's memory already: the bound only keeps the caller's contract.
    const maxBytes = options?.maxBytes;
    if (maxBytes !== undefined && Buffer.byteLength(text) > maxBytes) {
      throw new StorageError({ code: 'too_large', retryable: false, message: `chdb query failed: the answer holds more than ${maxBytes} bytes` });
    }
    return text;
  }

  async insertTabSeparated(table: string, columns: readonly string[], parts: readonly Buffer[]): Promise<void> {
    const session = this.#live();
    try {
      const values = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
      await session.insert({ table, values, format: 'TabSeparated', columns, timeout: this.#timeoutMs });
    } catch (error) {
      throw toStorageError(error, 'chdb insert failed');
    }
  }

  ping(): Promise<boolean> {
    return Promise.resolve(this.#session !== undefined && this.#session.open);
  }

  close(): Promise<void> {
    if (this.#session === undefined) return Promise.resolve();
    this.#session = undefined;
    if (shared !== undefined) {
      shared.users -= 1;
      if (shared.users <= 0) {
        shared.session.close();
        shared = undefined;
      }
    }
    return Promise.resolve();
  }
}
