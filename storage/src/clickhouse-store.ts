import type { Logger } from './logger.js';
import type { SpanWriter } from './span-writer.js';
import type { TraceReader } from './trace-reader.js';
import { StorageError } from './storage-error.js';

export interface ClickHouseStoreOptions {
  /**
   * `http://host:8123` (or https) talks to a ClickHouse server through
   * @clickhouse/client. `chdb:` opens the embedded engine (the `chdb` package,
   * a devDependency used by tests) in a fresh temporary directory;
   * `chdb:/some/dir` opens it on that directory.
   */
  url: string;
  /** Database name, created when missing; [A-Za-z_][A-Za-z0-9_]*. */
  database: string;
  username?: string;
  password?: string;
  /** Days of data kept; whole day partitions older than this are dropped. Default 7. */
  retentionDays?: number;
  /** Per-request timeout. Default 30 000 ms. */
  queryTimeoutMs?: number;
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
  logger?: Logger;
}

export interface RetentionResult {
  /** Partition ids (days since the epoch, UTC) dropped, per table. */
  dropped: Array<{ table: string; partition: string }>;
}

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

  protected constructor(init: { writer: SpanWriter; reader: TraceReader; serverVersion: string; database: string }) {
    this.writer = init.writer;
    this.reader = init.reader;
    this.serverVersion = init.serverVersion;
    this.database = init.database;
  }

  static open(_options: ClickHouseStoreOptions): Promise<ClickHouseStore> {
    return Promise.reject(new StorageError({ code: 'schema', message: 'ClickHouseStore.open: not implemented yet' }));
  }

  /** True when the server answers. Never throws. */
  ping(): Promise<boolean> {
    return Promise.resolve(false);
  }

  /** Drops day partitions older than `retentionDays` (call it periodically). */
  enforceRetention(_now?: Date): Promise<RetentionResult> {
    return Promise.resolve({ dropped: [] });
  }

  /**
   * Counts for tests and benchmarks: rows physically stored (duplicates
   * included until merged) and distinct spans as readers see them.
   */
  countSpans(): Promise<{ rows: number; distinct: number }> {
    return Promise.resolve({ rows: 0, distinct: 0 });
  }

  /** Drops the whole database (tests use a unique database and drop it after). */
  dropDatabase(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
