import type { Engine } from './engine.js';
import { silentLogger, type Logger } from './logger.js';
import type { SpanWriter } from './span-writer.js';
import type { TraceReader } from './trace-reader.js';
import { StorageError } from './storage-error.js';
import { HttpEngine } from './http-engine.js';
import { ChdbEngine } from './chdb-engine.js';
import { featuresFor, parseServerVersion, type ServerFeatures } from './server-features.js';
import { bindSql, checkIdentifier, type BindMode } from './sql-binding.js';
import { readTtlDays, runMigrations, syncTtl } from './migrations.js';
import { DATA_TABLES, DAY_MICROS, DEFAULT_RETENTION_DAYS } from './schema.js';
import { ClickHouseSpanWriter } from './clickhouse-span-writer.js';
import { ClickHouseTraceReader, type ReaderOptions } from './clickhouse-trace-reader.js';
import { toStorageError } from './error-mapping.js';

export interface ClickHouseStoreOptions {
  /**
   * `http://host:8123` (or https) talks to a ClickHouse server through
   * @clickhouse/client. `chdb:` opens the embedded engine (the `chdb` package,
   * a devDependency used by tests) in a temporary directory shared by the
   * process; `chdb:/some/dir` opens it on that directory. chdb allows one
   * directory per process; stores on it are told apart by `database`.
   */
  url: string;
  /** Database name, created when missing; [A-Za-z_][A-Za-z0-9_]*. */
  database: string;
  username?: string;
  password?: string;
  /**
   * Days of data kept, for the process that owns retention (the collector):
   * `open` sets the tables' TTL to it and `enforceRetention` drops day
   * partitions older than it. When absent (readers such as the query API),
   * the store never changes the TTL: tables it creates get 7 days, and
   * `enforceRetention` follows the tables' day TTL, drops nothing when a
   * table has no TTL or another kind (an operator's), and uses 7 days on
   * servers without TTL.
   */
  retentionDays?: number;
  /** Per-request timeout. Default 30 000 ms. */
  queryTimeoutMs?: number;
  /**
   * How long one INSERT may take (HTTP). Default: the longer of queryTimeoutMs and 5 minutes.
   * ClickHouse finishes an INSERT its client gave up on, so a retry after a timeout stores the
   * rows again: a short one would multiply a slow server's work exactly when it is slow.
   */
  insertTimeoutMs?: number;
  /**
   * Zipkin's `strictTraceId` (default true): a 16-character trace id only
   * finds traces stored with that exact id. When false, lookups match on the
   * low 64 bits, so a 16-character id also finds a 32-character trace.
   */
  strictTraceId?: boolean;
  /**
   * Tag keys returned by `getAutocompleteKeys` (Zipkin's AUTOCOMPLETE_KEYS).
   * When absent, every tag key seen is offered.
   */
  autocompleteKeys?: readonly string[];
  /**
   * The most bytes of stored spans one `getTraces` or `getTraceMany` reads
   * (DEFAULT_MAX_RESULT_BYTES, 64 MiB): a larger read rejects with a
   * StorageError `too_large` before it fills the process's memory.
   */
  maxResultBytes?: number;
  logger?: Logger;
}

/**
 * 64 MiB of span JSON: some 80 000 spans, more than a trace view can show. Parsed, it takes
 * several times that in memory, which a small query API process still has.
 */
export const DEFAULT_MAX_RESULT_BYTES = 64 * 1024 * 1024;

/** The least an INSERT is given by default (see insertTimeoutMs). */
const DEFAULT_INSERT_TIMEOUT_MS = 300_000;

export interface RetentionResult {
  /** The retention applied, in days; undefined when nothing was enforced (the tables' TTL is the operator's). */
  retentionDays: number | undefined;
  /** Partitions dropped: table and partition (days since the epoch, UTC). */
  dropped: Array<{ table: string; partition: string }>;
}

interface StoreInit {
  engine: Engine;
  database: string;
  serverVersion: string;
  features: ServerFeatures;
  retentionDays: number | undefined;
  logger: Logger;
  bindMode: BindMode;
  strictTraceId: boolean;
  autocompleteKeys: readonly string[] | undefined;
  queryTimeoutMs: number;
  maxResultBytes: number;
}

/**
 * Tests only (`@tracehouse/storage/testing`): a reader like the store's, its
 * queries going through `wrap(engine)`. Not exported from index.ts.
 */
export let readerThrough: (store: ClickHouseStore, wrap: (engine: Engine) => Engine) => TraceReader;

/**
 * One connection to ClickHouse with the tracehouse schema in place.
 * `open` connects, reads the server version, and applies the migrations
 * (safe when several processes start at once).
 */
export class ClickHouseStore {
  readonly writer: SpanWriter;
  readonly reader: TraceReader;
  /** `SELECT version()` of the engine, e.g. "18.16.1". */
  readonly serverVersion: string;
  readonly database: string;
  /** What the schema and queries use on this server. */
  readonly features: ServerFeatures;
  /** The explicit `retentionDays` option; undefined when the store leaves retention to its owner. */
  readonly retentionDays: number | undefined;
  readonly #engine: Engine;
  readonly #logger: Logger;
  readonly #mode: BindMode;
  readonly #readerOptions: ReaderOptions;
  #closed = false;

  static {
    readerThrough = (store, wrap) => new ClickHouseTraceReader({ ...store.#readerOptions, engine: wrap(store.#engine) });
  }

  private constructor(init: StoreInit) {
    this.#engine = init.engine;
    this.#logger = init.logger;
    this.#mode = init.bindMode;
    this.serverVersion = init.serverVersion;
    this.database = init.database;
    this.features = init.features;
    this.retentionDays = init.retentionDays;
    this.writer = new ClickHouseSpanWriter({ engine: init.engine, database: init.database });
    this.#readerOptions = {
      engine: init.engine,
      database: init.database,
      bindMode: init.bindMode,
      strictTraceId: init.strictTraceId,
      autocompleteKeys: init.autocompleteKeys,
      queryTimeoutMs: init.queryTimeoutMs,
      maxResultBytes: init.maxResultBytes,
      logger: init.logger,
    };
    this.reader = new ClickHouseTraceReader(this.#readerOptions);
  }

  /**
   * Throws what `open` throws for a URL it can never use (StorageError
   * `bad_input`, not retryable): not http(s) or chdb:, or one
   * @clickhouse/client refuses (an unknown URL parameter, a bad value).
   * Makes no request, so a process can check its settings before it starts.
   */
  static checkUrl(url: string): void {
    if (url.startsWith('chdb:')) return;
    void httpEngine(url, {}, 1_000)
      .close()
      .catch(() => undefined);
  }

  static async open(options: ClickHouseStoreOptions): Promise<ClickHouseStore> {
    const database = checkIdentifier('database', options.database);
    const retentionDays = options.retentionDays;
    if (retentionDays !== undefined && (!Number.isInteger(retentionDays) || retentionDays < 1 || retentionDays > 36_500)) {
      throw new StorageError({ code: 'bad_input', retryable: false, message: 'retentionDays must be an integer from 1 to 36500' });
    }
    const queryTimeoutMs = options.queryTimeoutMs ?? 30_000;
    if (!Number.isInteger(queryTimeoutMs) || queryTimeoutMs < 1) {
      throw new StorageError({ code: 'bad_input', retryable: false, message: 'queryTimeoutMs must be a positive integer' });
    }
    const maxResultBytes = options.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES;
    if (!Number.isSafeInteger(maxResultBytes) || maxResultBytes < 1) {
      throw new StorageError({ code: 'bad_input', retryable: false, message: 'maxResultBytes must be a positive integer' });
    }
    const logger = (options.logger ?? silentLogger).child({ component: 'storage' });
    const insertTimeoutMs = options.insertTimeoutMs ?? Math.max(queryTimeoutMs, DEFAULT_INSERT_TIMEOUT_MS);
    if (!Number.isInteger(insertTimeoutMs) || insertTimeoutMs < 1) {
      throw new StorageError({ code: 'bad_input', retryable: false, message: 'insertTimeoutMs must be a positive integer' });
    }
    const engine = await openEngine(options.url, options, queryTimeoutMs, insertTimeoutMs);
    try {
      const [row] = await engine.query<{ v: string }>({ sql: 'SELECT version() AS v', params: {} });
      const version = parseServerVersion(String(row?.v ?? ''));
      const features = featuresFor(version);
      const bindMode: BindMode = features.serverParams ? 'server' : 'literal';
      const context = { database, features, retentionDays: retentionDays ?? DEFAULT_RETENTION_DAYS };
      const outcome = await runMigrations({ engine, context, bindMode, logger });
      // Without an explicit retention this store is not the owner: resetting
      // the TTL to a default would expire the owner's data early.
      if (retentionDays !== undefined) await syncTtl({ engine, context, logger });
      logger.info(
        {
          engine: engine.kind,
          version: version.text,
          database,
          features,
          retentionDays,
          migrated: outcome.applied,
          schema: outcome.current,
        },
        'ClickHouse store open',
      );
      return new ClickHouseStore({
        engine,
        database,
        serverVersion: version.text,
        features,
        retentionDays,
        logger,
        bindMode,
        strictTraceId: options.strictTraceId ?? true,
        autocompleteKeys: options.autocompleteKeys,
        queryTimeoutMs,
        maxResultBytes,
      });
    } catch (error) {
      await engine.close().catch(() => undefined);
      const failure = toStorageError(error, 'opening the ClickHouse store failed');
      // Refused credentials are retryable for an insert (it waits for the rights to come
      // back); a store that these credentials cannot open will not open by retrying.
      if (failure.code === 'auth') throw new StorageError({ code: 'auth', retryable: false, message: failure.message, cause: failure.cause });
      throw failure;
    }
  }

  /** True when the server answers. Never throws. */
  async ping(): Promise<boolean> {
    if (this.#closed) return false;
    return this.#engine.ping();
  }

  /**
   * Drops the day partitions that hold only data older than the retention
   * before `now`, in every table. Cheap (metadata only); call it periodically.
   * The retention is `retentionDays`, or without it the tables' current day
   * TTL (the longest, if they differ), or 7 days on servers without TTL. On a
   * server with TTL where some table has no TTL or one that is not a plain
   * day TTL, nothing is dropped (a warning says why).
   */
  async enforceRetention(now: Date = new Date()): Promise<RetentionResult> {
    const retentionDays = this.retentionDays ?? (await this.#tableRetentionDays());
    if (retentionDays === undefined) return { retentionDays, dropped: [] };
    const cutoffDay = Math.floor((now.getTime() * 1000 - retentionDays * DAY_MICROS) / DAY_MICROS);
    const parts = await this.#engine.query<{ table: string; partition: string }>(
      bindSql(
        `SELECT DISTINCT table, partition FROM system.parts
WHERE database = {db:String} AND active AND table IN {tables:Array(String)}`,
        { db: this.database, tables: [...DATA_TABLES] },
        this.#mode,
      ),
    );
    const dropped: RetentionResult['dropped'] = [];
    let keptIndexDays: Set<number> | undefined;
    for (const part of parts) {
      const day = Number(part.partition);
      if (!Number.isSafeInteger(day) || day >= cutoffDay) continue;
      // Table comes from DATA_TABLES (checked by the IN above), day is an integer.
      checkIdentifier('table', part.table);
      if (part.table === 'trace_index' && (keptIndexDays ??= await this.#traceIndexDaysReachingPast(cutoffDay)).has(day)) continue;
      await this.#engine.execute({ sql: `ALTER TABLE ${this.database}.${part.table} DROP PARTITION ${day}`, params: {} });
      dropped.push({ table: part.table, partition: String(day) });
    }
    if (dropped.length > 0) this.#logger.info({ dropped, cutoffDay, retentionDays }, 'retention dropped old partitions');
    return { retentionDays, dropped };
  }

  /**
   * The trace_index partitions before `cutoffDay` (rows filed by the day of their first span) that
   * also point at spans of `cutoffDay` or later: one insert's spans can straddle midnight, or carry
   * one span with a bad clock. Dropping such a partition would leave those kept spans unreachable
   * by trace id, so it waits until the last day it points at is dropped too (as the TTL, on
   * ts_max, does). One query for all of them.
   */
  async #traceIndexDaysReachingPast(cutoffDay: number): Promise<Set<number>> {
    const rows = await this.#engine.query<{ day: string | number }>(
      bindSql(
        `SELECT DISTINCT intDiv(ts_min, ${DAY_MICROS}) AS day FROM ${this.database}.trace_index
WHERE ts_min < {cutoff:UInt64} AND ts_max >= {cutoff:UInt64}`,
        { cutoff: BigInt(cutoffDay) * BigInt(DAY_MICROS) },
        this.#mode,
      ),
    );
    return new Set(rows.map((row) => Number(row.day)));
  }

  /** Read at every call: the owner may change the TTL while this store is open. */
  async #tableRetentionDays(): Promise<number | undefined> {
    if (!this.features.ttl) return DEFAULT_RETENTION_DAYS;
    const ttls = await readTtlDays({ engine: this.#engine, context: { database: this.database, features: this.features } });
    const unclear = DATA_TABLES.filter((table) => ttls.get(table) === undefined);
    if (unclear.length > 0) {
      // Guessing a retention here could drop data an operator meant to keep.
      this.#logger.warn(
        { database: this.database, tables: unclear },
        'retention not enforced: these tables have no TTL or one that is not a plain day TTL, so retention is left to their TTL (the operator\'s)',
      );
      return undefined;
    }
    return Math.max(...DATA_TABLES.map((table) => ttls.get(table) as number));
  }

  /**
   * Counts for tests and benchmarks: rows physically stored in `spans`
   * (duplicates included until merged) and distinct spans as readers see them.
   */
  async countSpans(): Promise<{ rows: number; distinct: number }> {
    const [row] = await this.#engine.query<{ stored: string; unique_spans: string }>(
      bindSql(
        `SELECT count() AS stored, uniqExact(trace_low, trace_high, span_id, cityHash64(payload)) AS unique_spans FROM ${this.database}.spans`,
        {},
        this.#mode,
      ),
    );
    return { rows: Number(row?.stored ?? 0), distinct: Number(row?.unique_spans ?? 0) };
  }

  /** Highest migration version recorded in the database. */
  async schemaVersion(): Promise<number> {
    const [row] = await this.#engine.query<{ v: number | string }>(
      bindSql(`SELECT max(version) AS v FROM ${this.database}.schema_migrations`, {}, this.#mode),
    );
    return Number(row?.v ?? 0);
  }

  /** Merges parts now (tests use it to prove ReplacingMergeTree deduplication; costly on big tables). */
  async optimize(): Promise<void> {
    await this.#engine.execute({ sql: `OPTIMIZE TABLE ${this.database}.spans FINAL`, params: {} });
  }

  /** Drops the whole database (tests use a unique database and drop it after). */
  async dropDatabase(): Promise<void> {
    await this.#engine.execute({ sql: `DROP DATABASE IF EXISTS ${this.database}`, params: {} });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#engine.close();
  }
}

async function openEngine(url: string, options: ClickHouseStoreOptions, queryTimeoutMs: number, insertTimeoutMs: number): Promise<Engine> {
  if (url.startsWith('chdb:')) {
    const rest = url.slice('chdb:'.length).replace(/^\/\//, '');
    return ChdbEngine.open({ queryTimeoutMs, ...(rest === '' ? {} : { path: rest }) });
  }
  return httpEngine(url, options, queryTimeoutMs, insertTimeoutMs);
}

function httpEngine(
  url: string,
  options: Pick<ClickHouseStoreOptions, 'username' | 'password'>,
  queryTimeoutMs: number,
  insertTimeoutMs?: number,
): HttpEngine {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new StorageError({ code: 'bad_input', retryable: false, message: `ClickHouse URL "${url}" is not a URL` });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new StorageError({
      code: 'bad_input',
      retryable: false,
      message: `ClickHouse URL "${url}" must start with http://, https:// or chdb:`,
    });
  }
  try {
    return new HttpEngine({
      url,
      queryTimeoutMs,
      ...(insertTimeoutMs !== undefined ? { insertTimeoutMs } : {}),
      ...(options.username !== undefined ? { username: options.username } : {}),
      ...(options.password !== undefined ? { password: options.password } : {}),
    });
  } catch (error) {
    // The client reads options from the URL and throws on one it does not
    // know or cannot parse: no retry can fix that. Its messages name the
    // parameter, not the URL, so no password is repeated.
    throw new StorageError({
      code: 'bad_input',
      retryable: false,
      message: `the ClickHouse client refuses the URL: ${error instanceof Error ? error.message : String(error)}`,
      cause: error,
    });
  }
}
