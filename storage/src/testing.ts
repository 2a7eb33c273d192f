// @tracehouse/storage/testing: synthetic spans, broken databases and slowed-down
// readers for the tests and benchmarks of packages built on storage. Kept off
// the main entry point, which is what production code imports; SQL stays in
// this package.
import { setTimeout as sleep } from 'node:timers/promises';
import { ClickHouseStore, readerThrough } from './clickhouse-store.js';
import type { Engine, ReadOptions } from './engine.js';
import { HttpEngine } from './http-engine.js';
import { checkIdentifier, type BoundSql } from './sql-binding.js';
import type { TraceReader } from './trace-reader.js';

export { generateSpans, DEFAULT_SERVICES } from './span-generator.js';
export type { GenerateOptions } from './span-generator.js';
export type { Engine, ReadOptions } from './engine.js';
export type { BoundSql } from './sql-binding.js';

async function withServer(url: string, work: (engine: HttpEngine) => Promise<void>): Promise<void> {
  const engine = new HttpEngine({ url, queryTimeoutMs: 30_000 });
  try {
    await work(engine);
  } finally {
    await engine.close();
  }
}

/**
 * Makes `database` (on the ClickHouse server at `url`) one no store can open:
 * its migrations table cannot record a migration (ClickHouse answers
 * TYPE_MISMATCH, which storage reports as not retryable).
 */
export async function createUnmigratableDatabase(options: { url: string; database: string }): Promise<void> {
  const db = checkIdentifier('database', options.database);
  await withServer(options.url, async (engine) => {
    await engine.execute({ sql: `CREATE DATABASE ${db}`, params: {} });
    await engine.execute({
      sql: `CREATE TABLE ${db}.schema_migrations (version UInt32, description UInt8, applied_at DateTime) ENGINE = MergeTree ORDER BY version`,
      params: {},
    });
  });
}

/** Drops `database` on the ClickHouse server at `url`, if it exists. */
export async function dropDatabase(options: { url: string; database: string }): Promise<void> {
  const db = checkIdentifier('database', options.database);
  await withServer(options.url, (engine) => engine.execute({ sql: `DROP DATABASE IF EXISTS ${db}`, params: {} }));
}

/**
 * The trace reader of a store opened on `database` at `url`, its queries
 * going through `wrap(engine)`: for tests that count, delay or fail the
 * queries of a read. `close` closes the store.
 */
export async function openWrappedReader(options: {
  url: string;
  database: string;
  queryTimeoutMs: number;
  wrap: (engine: Engine) => Engine;
}): Promise<{ reader: TraceReader; close: () => Promise<void> }> {
  const store = await ClickHouseStore.open({ url: options.url, database: options.database, queryTimeoutMs: options.queryTimeoutMs });
  return { reader: readerThrough(store, options.wrap), close: () => store.close() };
}

/**
 * The real `engine`, each read answered `delayMs` after it ran (a slow server), recording
 * when each read started: for tests of reads that run out of time (see openWrappedReader).
 */
export class SlowEngine implements Engine {
  /** Date.now() at the start of each read, in order. */
  readonly started: number[] = [];
  /** Date.now() when each read's answer was handed to the reader, in order. */
  readonly answered: number[] = [];
  readonly #engine: Engine;
  readonly #delayMs: number;

  constructor(engine: Engine, delayMs: number) {
    this.#engine = engine;
    this.#delayMs = delayMs;
  }

  get kind(): Engine['kind'] {
    return this.#engine.kind;
  }

  async #slow<T>(read: () => Promise<T>): Promise<T> {
    this.started.push(Date.now());
    const result = await read();
    await sleep(this.#delayMs);
    this.answered.push(Date.now());
    return result;
  }

  execute(statement: BoundSql): Promise<void> {
    return this.#engine.execute(statement);
  }

  query<T>(statement: BoundSql, options?: ReadOptions): Promise<T[]> {
    return this.#slow(() => this.#engine.query<T>(statement, options));
  }

  queryEach<T>(statement: BoundSql, onRow: (row: T) => void, options?: ReadOptions): Promise<void> {
    return this.#slow(() => this.#engine.queryEach<T>(statement, onRow, options));
  }

  queryText(statement: BoundSql, format: 'TabSeparatedRaw' | 'TabSeparated', options?: ReadOptions): Promise<string> {
    return this.#slow(() => this.#engine.queryText(statement, format, options));
  }

  insertTabSeparated(table: string, columns: readonly string[], parts: readonly Buffer[]): Promise<void> {
    return this.#engine.insertTabSeparated(table, columns, parts);
  }

  ping(): Promise<boolean> {
    return this.#engine.ping();
  }

  close(): Promise<void> {
    return this.#engine.close();
  }
}
