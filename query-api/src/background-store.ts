/**
 * The ClickHouse store of a running query API, opened in the background: a
 * query API started before ClickHouse (or while it restarts) serves /health
 * (503) and answers reads with 503 STORAGE_UNAVAILABLE until the store opens,
 * retrying with backoff, as the collector does.
 */
import type { Span } from '@tracehouse/model';
import { ClickHouseStore, StorageError, type DependencyLink, type SearchOptions, type TraceQuery, type TraceReader } from '@tracehouse/storage';
import type { Logger } from 'pino';

export interface BackgroundStoreOptions {
  open: () => Promise<ClickHouseStore>;
  logger: Logger;
  /** Called once when opening fails for good after start() resolved (an error retrying cannot fix). */
  onFatal: (error: unknown) => void;
  /** How long start() waits for the first attempt before the rest goes on in the background [2000]. */
  firstAttemptMs?: number;
  retryInitialMs?: number;
  retryMaxMs?: number;
}

/**
 * What retrying cannot fix when opening (ClickHouseStore.open says: a refused
 * URL or option, a schema that cannot be migrated, refused credentials).
 * Anything else may pass: the server starting, a network, an overloaded server.
 */
function isFatal(error: unknown): boolean {
  return !(error instanceof StorageError) || !error.retryable;
}

export class BackgroundStore implements TraceReader {
  readonly #options: BackgroundStoreOptions;
  #store: ClickHouseStore | undefined;
  #lastError: unknown;
  #closed = false;
  #timer: NodeJS.Timeout | undefined;

  private constructor(options: BackgroundStoreOptions) {
    this.#options = options;
  }

  /**
   * Makes the first attempt, waiting for it up to `firstAttemptMs`: an error
   * retrying cannot fix rejects, so the process stops at once; an unreachable
   * server, or one that does not answer in that time, resolves, and the store
   * keeps trying in the background.
   */
  static async start(options: BackgroundStoreOptions): Promise<BackgroundStore> {
    const background = new BackgroundStore(options);
    let started = false;
    const first = background.#attempt(1).then((failed) => {
      // Failed for good after start() gave up waiting: that is the owner's to act on.
      if (failed !== undefined && started && !background.#closed) options.onFatal(failed.fatal);
      return failed;
    });
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<'waited'>((resolve) => {
      timer = setTimeout(() => resolve('waited'), options.firstAttemptMs ?? 2_000);
    });
    const outcome = await Promise.race([first, waited]);
    clearTimeout(timer);
    started = true;
    if (outcome !== 'waited' && outcome !== undefined) throw outcome.fatal;
    return background;
  }

  /** The open store, if it is open. */
  get store(): ClickHouseStore | undefined {
    return this.#store;
  }

  async ping(): Promise<boolean> {
    return this.#store === undefined ? false : this.#store.ping();
  }

  /**
   * Stops retrying and closes the store. An attempt still under way is not
   * waited for (a server that does not answer must not hold up a stop): it
   * closes what it opens itself. Idempotent.
   */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    const store = this.#store;
    this.#store = undefined;
    await store?.close();
  }

  /** One try at opening; what failed for good, if it did (a retryable failure schedules the next try). */
  async #attempt(attempt: number): Promise<{ fatal: unknown } | undefined> {
    let store: ClickHouseStore;
    try {
      store = await this.#options.open();
    } catch (error) {
      if (isFatal(error)) return { fatal: error };
      this.#lastError = error;
      if (!this.#closed) this.#retryLater(attempt);
      return undefined;
    }
    if (this.#closed) {
      // close() came while it was opening: nobody will use it.
      await store.close().catch((error: unknown) => this.#options.logger.warn({ err: error }, 'closing a store opened after the stop failed'));
      return undefined;
    }
    this.#store = store;
    if (attempt > 1) this.#options.logger.info({ attempt }, 'ClickHouse store open; the API serves reads again');
    return undefined;
  }

  #retryLater(attempt: number): void {
    const initial = this.#options.retryInitialMs ?? 200;
    const delay = Math.min(this.#options.retryMaxMs ?? 5_000, initial * 2 ** Math.min(attempt - 1, 20));
    this.#options.logger.warn({ err: this.#lastError, attempt, retryInMs: delay }, 'ClickHouse is not reachable; reads answer 503 until it is');
    this.#timer = setTimeout(() => {
      void this.#attempt(attempt + 1).then((failed) => {
        if (failed !== undefined && !this.#closed) this.#options.onFatal(failed.fatal);
      });
    }, delay);
    this.#timer.unref();
  }

  #reader(): TraceReader {
    if (this.#store !== undefined) return this.#store.reader;
    throw new StorageError({
      code: this.#closed ? 'closed' : 'connection',
      message: `the ClickHouse store is not open yet${this.#lastError instanceof Error ? `: ${this.#lastError.message}` : ''}`,
      cause: this.#lastError,
    });
  }

  // TraceReader, delegated to the open store (a store not open yet rejects).
  async getServiceNames(): Promise<string[]> {
    return this.#reader().getServiceNames();
  }
  async getSpanNames(serviceName: string): Promise<string[]> {
    return this.#reader().getSpanNames(serviceName);
  }
  async getRemoteServiceNames(serviceName: string): Promise<string[]> {
    return this.#reader().getRemoteServiceNames(serviceName);
  }
  async getTraces(query: TraceQuery, options?: SearchOptions): Promise<Span[][]> {
    return this.#reader().getTraces(query, options);
  }
  async getTrace(traceId: string, options?: SearchOptions): Promise<Span[]> {
    return this.#reader().getTrace(traceId, options);
  }
  async getTraceMany(traceIds: readonly string[], options?: SearchOptions): Promise<Span[][]> {
    return this.#reader().getTraceMany(traceIds, options);
  }
  async getDependencies(window: { endTs: number; lookback: number }, options?: SearchOptions): Promise<DependencyLink[]> {
    return this.#reader().getDependencies(window, options);
  }
  async getAutocompleteKeys(): Promise<string[]> {
    return this.#reader().getAutocompleteKeys();
  }
  async getAutocompleteValues(key: string): Promise<string[]> {
    return this.#reader().getAutocompleteValues(key);
  }
}
