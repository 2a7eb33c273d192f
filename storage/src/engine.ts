import type { BoundSql } from './sql-binding.js';

/** Options of one read. */
export interface ReadOptions {
  /**
   * Stops the read: an aborted read rejects with the signal's reason. Over
   * HTTP the request is cancelled; chdb, which cannot cancel a query, refuses
   * to start one once the signal has aborted.
   */
  signal?: AbortSignal;
}

/** Options of a read returned whole as text. */
export interface TextReadOptions extends ReadOptions {
  /**
   * The most bytes the answer may hold: a larger one rejects with a
   * StorageError `too_large` instead of filling this process's memory. Over
   * HTTP the server stops producing it (max_result_bytes, counted by the
   * server as its columns' bytes, a little over the text's).
   */
  maxBytes?: number;
}

/**
 * The little the rest of the package needs from a ClickHouse engine. Two
 * adapters: HTTP (@clickhouse/client; production, and the 18.16 tests) and
 * chdb (the embedded current engine; tests of the modern DDL and queries).
 * Statements arrive already bound (see sql-binding.ts).
 */
export interface Engine {
  readonly kind: 'http' | 'chdb';
  /** Runs a statement that returns nothing (DDL, ALTER, INSERT ... SELECT). */
  execute(statement: BoundSql): Promise<void>;
  /** Runs a SELECT and returns its rows (JSONEachRow; 64-bit integers arrive as strings). */
  query<T>(statement: BoundSql, options?: ReadOptions): Promise<T[]>;
  /**
   * Runs a SELECT and hands its rows to `onRow` one by one, in order, as they
   * arrive (JSONEachRow), so a large result is never held whole. An error
   * thrown by `onRow` stops the query and is rethrown unchanged.
   */
  queryEach<T>(statement: BoundSql, onRow: (row: T) => void, options?: ReadOptions): Promise<void>;
  /**
   * Runs a SELECT and returns the body in `format` (e.g. TabSeparatedRaw). A
   * server error after the first rows were sent rejects too: the answer is
   * whole or it is an error.
   */
  queryText(statement: BoundSql, format: 'TabSeparatedRaw' | 'TabSeparated', options?: TextReadOptions): Promise<string>;
  /** Inserts a TabSeparated body, given as consecutive parts, into `table` (qualified) with `columns`. */
  insertTabSeparated(table: string, columns: readonly string[], parts: readonly Buffer[]): Promise<void>;
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
