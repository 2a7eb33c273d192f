import type { Span } from '@tracehouse/model';

/** A Zipkin v2 `/traces` search. Times as Zipkin has them. */
export interface TraceQuery {
  serviceName?: string;
  remoteServiceName?: string;
  spanName?: string;
  /**
   * Zipkin semantics: `{ key }` alone matches a span with that tag key or an
   * annotation with that value; `{ key, value }` matches the tag key=value.
   * Every term must match a span of the trace (of `serviceName` when given).
   */
  annotationQuery?: Array<{ key: string; value?: string }>;
  /** Microseconds, inclusive. */
  minDuration?: number;
  /** Microseconds, inclusive. */
  maxDuration?: number;
  /** Epoch milliseconds: the end of the window. */
  endTs: number;
  /** Milliseconds before endTs: the length of the window. */
  lookback: number;
  /** Most traces to return. */
  limit: number;
}

/** How a caller bounds a read, which may take several queries (a search, a long trace list, dependency passes). */
export interface SearchOptions {
  /**
   * The caller gave up (timed out, went away): no further query starts, the
   * one running is cancelled where the engine can, and the read rejects
   * with the signal's reason.
   */
  signal?: AbortSignal;
}

/** A Zipkin v2 `DependencyLink`. */
export interface DependencyLink {
  parent: string;
  child: string;
  callCount: number;
  errorCount?: number;
}

/**
 * Reads what the writer stored. Every method returns each stored span at most
 * once, however often it was written. Trace ids are matched as Zipkin does by
 * default (`strictTraceId`): see SCHEMA.md.
 */
export interface TraceReader {
  /** Local service names, sorted. */
  getServiceNames(): Promise<string[]>;
  /** Span names seen for a local service, sorted. */
  getSpanNames(serviceName: string): Promise<string[]>;
  /** Remote service names seen from a local service, sorted. */
  getRemoteServiceNames(serviceName: string): Promise<string[]>;
  /**
   * Matching traces, newest first (by their latest matching span); each trace is its raw spans
   * (not merged). A search taking longer than the store's query timeout as a whole fails with a
   * `timeout` StorageError.
   */
  getTraces(query: TraceQuery, options?: SearchOptions): Promise<Span[][]>;
  /** The spans of one trace; [] when unknown. */
  getTrace(traceId: string, options?: SearchOptions): Promise<Span[]>;
  /** The traces found among the ids; unknown ids are left out. */
  getTraceMany(traceIds: readonly string[], options?: SearchOptions): Promise<Span[][]>;
  /** Links between services from parent/child relations in the window. */
  getDependencies(window: { endTs: number; lookback: number }, options?: SearchOptions): Promise<DependencyLink[]>;
  /** Tag keys offered for autocompletion, sorted. */
  getAutocompleteKeys(): Promise<string[]>;
  /** Values seen for an autocomplete key, sorted. */
  getAutocompleteValues(key: string): Promise<string[]>;
}
