import { normalizeTraceId, type Span } from '@tracehouse/model';
import type { Engine } from './engine.js';
import type { DependencyLink, SearchOptions, TraceQuery, TraceReader } from './trace-reader.js';
import { bindSql, type BindMode } from './sql-binding.js';
import { DependencyLinker, type LinkSpan } from './dependency-linker.js';
import { TRACE_LOW } from './schema.js';
import { StorageError } from './storage-error.js';
import { EventLoopTurns } from './event-loop-turns.js';
import type { Logger } from './logger.js';

export interface ReaderOptions {
  engine: Engine;
  database: string;
  bindMode: BindMode;
  strictTraceId: boolean;
  autocompleteKeys: readonly string[] | undefined;
  /** Bounds a read made of several queries (dependency passes) as a whole. */
  queryTimeoutMs: number;
  /** The most bytes of stored spans one getTraces or getTraceMany reads; more is a StorageError `too_large`. */
  maxResultBytes: number;
  /** Told of stored spans that cannot be read (see parsePayloads). */
  logger: Logger;
}

/**
 * Parses stored payloads in one JSON.parse call, or one by one when that
 * fails, leaving out those that do not parse: ClickHouse 18.16 keeps the
 * last row of an insert cut short (a collector killed mid-insert) with its
 * payload truncated, and one such span must not make its whole trace
 * unreadable. The complete span comes again with the redelivered message.
 */
function parsePayloads(payloads: readonly string[], onUnreadable: () => void): Span[] {
  try {
    return JSON.parse(`[${payloads.join(',')}]`) as Span[];
  } catch {
    const spans: Span[] = [];
    for (const payload of payloads) {
      try {
        spans.push(JSON.parse(payload) as Span);
      } catch {
        onUnreadable();
      }
    }
    return spans;
  }
}

/** Stored spans parsed per JSON.parse call when a trace is read: about a megabyte of JSON. */
const PAYLOADS_PER_PARSE = 2_000;

/**
 * Most names one list returns (services, span names, remote services, tag keys,
 * a key's values), the first in byte order. A service that puts ids into its
 * span names would otherwise send hundreds of thousands to every search page.
 */
const MAX_NAMES = 10_000;

/**
 * Memory budgeted per row of the dependency query (DISTINCT, then sorted by
 * trace). ClickHouse 18.16 needed about 130 bytes (500 000 rows: refused
 * under 60 MB, done under 65 MB); a current server grows its hash table in
 * chunks of up to 16 MiB, and under a 30 MB limit refused passes budgeted
 * at 250 bytes a row but not at 500. Twice that, for room.
 */
const DEPENDENCY_ROW_BYTES = 1000;

/** Beyond this many passes (a tiny memory limit, a huge window), a pass may exceed the limit and fail cleanly. */
const MAX_DEPENDENCY_PASSES = 64;

/** Rows per dependency pass when neither a memory limit per query nor the machine's memory is known (10 GB at the figure above). */
const DEFAULT_DEPENDENCY_ROWS = 10_000_000;

/**
 * Most trace ids read by id in one query: their low halves travel in the SQL (as literals on
 * 18.16), which must stay within the server's max_query_size (256 KiB by default). Also the
 * most ids getTraceMany accepts; a search reads the ids it found in chunks of this many.
 */
const MAX_IDS_PER_READ = 10_000;

/** Searches read the newest hour of the window first, then 4x more each step. */
const SEARCH_FIRST_STEP_MICROS = 3_600_000_000;
const SEARCH_STEP_GROWTH = 4;

function badInput(message: string): StorageError {
  return new StorageError({ code: 'bad_input', message, retryable: false });
}

/** Throws, between the queries of a read, once its caller gave up or its time is up. */
type Checkpoint = () => void;

function checkWindow(endTs: number, lookback: number): { lo: number; hi: number } {
  if (!Number.isSafeInteger(endTs) || endTs <= 0) throw badInput('endTs must be a positive integer (epoch ms)');
  if (!Number.isSafeInteger(lookback) || lookback <= 0) throw badInput('lookback must be a positive integer (ms)');
  const lo = Math.max(0, endTs - lookback) * 1000;
  const hi = endTs * 1000 + 999;
  if (!Number.isSafeInteger(hi)) throw badInput('endTs is too large');
  return { lo, hi };
}

/** The distinct normalized ids, in order; ids not shaped like trace ids simply find nothing. */
function wantedIds(traceIds: readonly string[]): string[] {
  const wanted = new Set<string>();
  for (const raw of traceIds) {
    const id = typeof raw === 'string' ? normalizeTraceId(raw) : undefined;
    if (id !== undefined) wanted.add(id);
  }
  return [...wanted];
}

export class ClickHouseTraceReader implements TraceReader {
  readonly #engine: Engine;
  readonly #db: string;
  readonly #mode: BindMode;
  readonly #strict: boolean;
  readonly #autocompleteKeys: readonly string[] | undefined;
  #rowsPerPass: Promise<number> | undefined;
  readonly #timeoutMs: number;
  readonly #maxResultBytes: number;
  readonly #logger: Logger;

  constructor(options: ReaderOptions) {
    this.#engine = options.engine;
    this.#db = options.database;
    this.#mode = options.bindMode;
    this.#strict = options.strictTraceId;
    this.#autocompleteKeys = options.autocompleteKeys ? [...new Set(options.autocompleteKeys)].sort() : undefined;
    this.#timeoutMs = options.queryTimeoutMs;
    this.#maxResultBytes = options.maxResultBytes;
    this.#logger = options.logger;
  }

  /**
   * What a read of several queries runs before each: each query has its own timeout, and the read
   * as a whole has one too (queryTimeoutMs), while its caller may give up sooner (signal). None
   * should start once nobody waits. `done` says how far the read got, for the timeout's message.
   */
  #checkpoint(signal: AbortSignal | undefined, done: () => string): Checkpoint {
    const deadline = Date.now() + this.#timeoutMs;
    return () => {
      signal?.throwIfAborted();
      if (Date.now() > deadline) {
        throw new StorageError({ code: 'timeout', message: `${done()} done in ${this.#timeoutMs} ms` });
      }
    };
  }

  async #column(template: string, params: Record<string, unknown>, column: string): Promise<string[]> {
    const rows = await this.#engine.query<Record<string, string>>(bindSql(template, params, this.#mode));
    return rows.map((row) => String(row[column]));
  }

  getServiceNames(): Promise<string[]> {
    return this.#column(
      `SELECT DISTINCT service FROM ${this.#db}.span_names WHERE service != '' ORDER BY service LIMIT ${MAX_NAMES}`,
      {},
      'service',
    );
  }

  getSpanNames(serviceName: string): Promise<string[]> {
    return this.#column(
      `SELECT DISTINCT name FROM ${this.#db}.span_names WHERE service = {service:String} AND name != '' ORDER BY name LIMIT ${MAX_NAMES}`,
      { service: String(serviceName).toLowerCase() },
      'name',
    );
  }

  getRemoteServiceNames(serviceName: string): Promise<string[]> {
    return this.#column(
      `SELECT DISTINCT remote_service FROM ${this.#db}.span_names
WHERE service = {service:String} AND remote_service != '' ORDER BY remote_service LIMIT ${MAX_NAMES}`,
      { service: String(serviceName).toLowerCase() },
      'remote_service',
    );
  }

  async getTraces(query: TraceQuery, options: SearchOptions = {}): Promise<Span[][]> {
    const { signal } = options;
    const { lo, hi } = checkWindow(query.endTs, query.lookback);
    let progress = '0 steps over the window';
    const checkpoint = this.#checkpoint(signal, () => `trace search: ${progress}`);
    if (!Number.isSafeInteger(query.limit) || query.limit <= 0) throw badInput('limit must be a positive integer');
    const params: Record<string, unknown> & { limit: number } = { lo, hi, limit: Math.min(query.limit, 1_000_000) };
    // Besides the window's start, which differs from step to step.
    const where = ['ts <= {hi:UInt64}'];
    // Each criterion must be met by some span of the trace (of serviceName
    // when given), as Zipkin's QueryRequest.test has it; they need not be met
    // by the same span. WHERE keeps only rows meeting at least one criterion,
    // HAVING checks that every criterion was met.
    const criteria: string[] = [];
    if (query.serviceName !== undefined && query.serviceName !== '') {
      where.push('service = {service:String}');
      params.service = query.serviceName.toLowerCase();
    }
    if (query.spanName !== undefined && query.spanName !== '' && query.spanName.toLowerCase() !== 'all') {
      criteria.push('name = {spanName:String}');
      params.spanName = query.spanName.toLowerCase();
    }
    if (query.remoteServiceName !== undefined && query.remoteServiceName !== '') {
      criteria.push('remote_service = {remoteService:String}');
      params.remoteService = query.remoteServiceName.toLowerCase();
    }
    if (query.minDuration !== undefined && query.maxDuration !== undefined) {
      criteria.push('(duration >= {minDuration:UInt64} AND duration <= {maxDuration:UInt64})');
      params.minDuration = query.minDuration;
      params.maxDuration = query.maxDuration;
    } else if (query.minDuration !== undefined) {
      criteria.push('duration >= {minDuration:UInt64}');
      params.minDuration = query.minDuration;
    } else if (query.maxDuration !== undefined) {
      criteria.push('duration <= {maxDuration:UInt64}');
      params.maxDuration = query.maxDuration;
    }
    const terms = new Map<string, { key: string; value: string | undefined }>();
    for (const term of query.annotationQuery ?? []) {
      if (typeof term.key !== 'string' || term.key === '') throw badInput('annotationQuery keys must be non-empty');
      const value = term.value === undefined || term.value === '' ? undefined : String(term.value);
      terms.set(value === undefined ? term.key : `${term.key}=${value}`, { key: term.key, value });
    }
    if (terms.size > 32) throw badInput('annotationQuery has more than 32 terms');
    [...terms.values()].forEach((term, i) => {
      // Placeholder names are made here from a counter, never from input.
      params[`key${i}`] = term.key;
      if (term.value === undefined) {
        criteria.push(`(has(tag_keys, {key${i}:String}) OR has(annotation_values, {key${i}:String}))`);
      } else {
        criteria.push(`tag_values[indexOf(tag_keys, {key${i}:String})] = {value${i}:String}`);
        params[`value${i}`] = term.value;
      }
    });
    if (criteria.length > 0) where.push(`(${criteria.join(' OR ')})`);
    const having = criteria.length > 0 ? `\nHAVING ${criteria.map((c) => `countIf(${c}) > 0`).join(' AND ')}` : '';
    // Not strict: a trace is its low 64 bits, whatever width each span reported (Zipkin's
    // non-strict search), so spans of both widths are one candidate and one trace.
    const key = this.#strict ? 'trace_id' : TRACE_LOW;
    const index = `${this.#db}.span_index`;
    const template = (filter: string) => `SELECT ${key} AS trace_key, max(ts) AS latest
FROM ${index}
WHERE ${filter}
GROUP BY trace_key${having}
ORDER BY latest DESC, trace_key DESC
LIMIT {limit:UInt32}`;
    const wholeWindow = template(['ts >= {lo:UInt64}', ...where].join(' AND '));
    // With several criteria, a trace with a match in [from, hi] may meet the
    // others only with older spans. So a step takes as candidates the traces
    // with a match in [from, hi], and checks the criteria over every span of
    // theirs in the window: from the oldest start among them (trace_index),
    // which is rarely far before `from`.
    const stepMatches = ['ts >= {from:UInt64}', ...where].join(' AND ');
    const candidates = `SELECT ${key} FROM ${index} WHERE ${stepMatches}`;
    const oldestStart = `(SELECT min(ts_min) FROM ${this.#db}.trace_index WHERE trace_low IN (SELECT ${TRACE_LOW} FROM ${index} WHERE ${stepMatches}))`;
    const candidatesOverTheWindow = template(
      [`ts >= greatest({lo:UInt64}, ${oldestStart})`, ...where, `${key} IN (${candidates})`].join(' AND '),
    );
    // Newest first, over a growing part of the window: the newest hour, then
    // 4 h, 16 h, ... up to the whole window, stopping as soon as `limit`
    // traces are found. Each step finds the traces with a match in [from, hi],
    // and every trace it does not find has its newest match before `from`, so
    // is older than every trace found: the answer equals the whole-window
    // query's. A common search (a service or a frequent tag over a day) reads
    // the newest hour instead of the whole day.
    let rows: Array<{ trace_key: string }>;
    for (let span = SEARCH_FIRST_STEP_MICROS, step = 1; ; span *= SEARCH_STEP_GROWTH, step++) {
      checkpoint();
      const from = Math.max(lo, hi - span);
      const sql =
        from === lo
          ? bindSql(wholeWindow, params, this.#mode)
          : criteria.length > 1
            ? bindSql(candidatesOverTheWindow, { ...params, from }, this.#mode)
            : bindSql(wholeWindow, { ...params, lo: from }, this.#mode);
      rows = await this.#engine.query<{ trace_key: string }>(sql, { signal });
      progress = `${step} steps over the window`;
      if (rows.length >= params.limit || from === lo) break;
    }
    if (rows.length === 0) return [];
    progress += ` (${rows.length} traces found)`;
    // Distinct (grouped) and normalized when stored: passed on as they are.
    return this.#traces(rows.map((r) => r.trace_key), checkpoint, signal);
  }

  async getTrace(traceId: string, options: SearchOptions = {}): Promise<Span[]> {
    const [trace] = await this.getTraceMany([traceId], options);
    return trace ?? [];
  }

  async getTraceMany(traceIds: readonly string[], options: SearchOptions = {}): Promise<Span[][]> {
    const wanted = wantedIds(traceIds);
    if (wanted.length > MAX_IDS_PER_READ) throw badInput(`at most ${MAX_IDS_PER_READ} trace ids per request`);
    const { signal } = options;
    return this.#traces(wanted, () => signal?.throwIfAborted(), signal);
  }

  /**
   * Reads whole traces, in the order of `wanted` (normalized, distinct), MAX_IDS_PER_READ ids a query.
   * Strict: match the full id; otherwise match on the low 64 bits. `checkpoint` runs before each query.
   */
  async #traces(
    wanted: readonly string[],
    checkpoint: Checkpoint = () => undefined,
    signal?: AbortSignal,
  ): Promise<Span[][]> {
    const traces: Span[][] = [];
    // One budget for the whole read, however many queries it takes.
    const budget = { left: this.#maxResultBytes };
    try {
      for (let start = 0; start < wanted.length; start += MAX_IDS_PER_READ) {
        traces.push(...(await this.#tracesOnce(wanted.slice(start, start + MAX_IDS_PER_READ), checkpoint, signal, budget)));
      }
    } catch (error) {
      if (!(error instanceof StorageError) || error.code !== 'too_large') throw error;
      throw new StorageError({
        code: 'too_large',
        retryable: false,
        message: `${wanted.length === 1 ? 'the trace holds' : `the ${wanted.length} traces hold`} more than ${this.#maxResultBytes} bytes of spans, the most one read returns`,
        cause: error,
      });
    }
    return traces;
  }

  async #tracesOnce(
    wanted: readonly string[],
    checkpoint: Checkpoint,
    signal: AbortSignal | undefined,
    budget: { left: number },
  ): Promise<Span[][]> {
    if (wanted.length === 0) return [];
    const lows = [...new Set(wanted.map((id) => id.slice(-16)))];
    checkpoint();
    const [range] = await this.#engine.query<{ lo: string; hi: string; n: string }>(
      bindSql(
        `SELECT min(ts_min) AS lo, max(ts_max) AS hi, count() AS n FROM ${this.#db}.trace_index WHERE trace_low IN {lows:Array(String)}`,
        { lows },
        this.#mode,
      ),
      { signal },
    );
    if (range === undefined || Number(range.n) === 0) return [];
    checkpoint();
    const text = await this.#engine.queryText(
      bindSql(
        `SELECT DISTINCT trace_high, trace_low, payload FROM ${this.#db}.spans
WHERE trace_low IN {lows:Array(String)} AND ts >= {lo:UInt64} AND ts <= {hi:UInt64}`,
        // Bounds travel as text: microsecond times stay exact beyond 2^53 too.
        { lows, lo: BigInt(range.lo), hi: BigInt(range.hi) },
        this.#mode,
      ),
      'TabSeparatedRaw',
      { signal, maxBytes: budget.left },
    );
    budget.left = Math.max(1, budget.left - text.length);
    const turns = new EventLoopTurns(signal);
    const strict = this.#strict;
    const groups = new Map<string, string[]>(wanted.map((id) => [strict ? id : id.slice(-16), []]));
    for (let start = 0; start < text.length; ) {
      let end = text.indexOf('\n', start);
      if (end === -1) end = text.length;
      // trace_high and trace_low are hex; the payload is JSON, which never
      // holds a raw tab or newline, so TabSeparatedRaw splits safely.
      const tab1 = text.indexOf('\t', start);
      const tab2 = text.indexOf('\t', tab1 + 1);
      if (tab1 !== -1 && tab2 !== -1 && tab2 < end) {
        const group = groups.get(strict ? text.slice(start, tab1) + text.slice(tab1 + 1, tab2) : text.slice(tab1 + 1, tab2));
        group?.push(text.slice(tab2 + 1, end));
      }
      start = end + 1;
      if (turns.due()) await turns.next();
    }
    const traces: Span[][] = [];
    let unreadable = 0;
    for (const payloads of groups.values()) {
      if (payloads.length === 0) continue;
      const spans: Span[] = [];
      // A slice of payloads at a time, each parsed in one call (JSON.parse of
      // an array beats one call per span), with turns in between.
      for (let first = 0; first < payloads.length; first += PAYLOADS_PER_PARSE) {
        const slice = payloads.slice(first, first + PAYLOADS_PER_PARSE);
        for (const span of parsePayloads(slice, () => unreadable++)) spans.push(span);
        if (turns.due()) await turns.next();
      }
      traces.push(spans);
    }
    if (unreadable > 0) this.#logger.warn({ unreadable, traceIds: wanted.slice(0, 10) }, 'left out stored spans whose JSON is cut short');
    return traces;
  }

  /**
   * Links the spans of the window as Zipkin's DependencyLinker does (see
   * dependency-linker.ts). One query reads the window once, ordered by trace
   * id, and its rows are streamed to the linker a trace at a time, so memory
   * holds one trace plus the links however long the window is.
   */
  async getDependencies(window: { endTs: number; lookback: number }, options: SearchOptions = {}): Promise<DependencyLink[]> {
    const { lo, hi } = checkWindow(window.endTs, window.lookback);
    const { signal } = options;
    let progress = 'the count of the window';
    const checkpoint = this.#checkpoint(signal, () => `dependency links: ${progress}`);
    // Linking needs whole traces, and the server holds the rows it deduplicates and sorts: over a
    // long window that outgrows its memory limit. The traces are then split by a hash of their id
    // into passes that each fit, every trace whole in one of them. The count reads only `ts` and
    // counts replayed rows the passes read once: at worst a pass too many.
    const [counted] = await this.#engine.query<{ rows: number | string }>(
      bindSql(
        `SELECT count() AS rows FROM ${this.#db}.span_index WHERE ts >= {lo:UInt64} AND ts <= {hi:UInt64}`,
        { lo, hi },
        this.#mode,
      ),
      { signal },
    );
    const needed = Math.ceil(Number(counted?.rows ?? 0) / (await this.#dependencyRowsPerPass()));
    const passes = Math.min(MAX_DEPENDENCY_PASSES, Math.max(1, needed));
    const linker = new DependencyLinker();
    for (let pass = 0; pass < passes; pass++) {
      progress = `${pass} of ${passes} passes over the window`;
      checkpoint();
      let trace: LinkSpan[] = [];
      await this.#engine.queryEach<{
        trace_low: string;
        span_id: string;
        parent_id: string;
        kind: LinkSpan['kind'];
        service: string;
        remote_service: string;
        error: number | string;
      }>(
        bindSql(
          // By the low 64 bits, as Zipkin links: a trace whose spans reported ids of both widths
          // would otherwise be two, its links missed or counted twice. Every span is read, kind or
          // not: a kind-less root can be a link (or the root), a kind-less piece can carry the
          // error of its span. DISTINCT drops replayed rows; the pieces of one span that differ
          // (a late error, a remote name) are merged by the linker, which must see them all.
          `SELECT DISTINCT ${TRACE_LOW} AS trace_low, span_id, parent_id, kind, service, remote_service, error
FROM ${this.#db}.span_index
WHERE ts >= {lo:UInt64} AND ts <= {hi:UInt64}${
            passes === 1 ? '' : ' AND cityHash64(trace_low) % {passes:UInt64} = {pass:UInt64}'
          }
ORDER BY trace_low`,
          passes === 1 ? { lo, hi } : { lo, hi, passes, pass },
          this.#mode,
        ),
        (row) => {
          if (trace.length > 0 && trace[0]?.traceId !== row.trace_low) {
            linker.putTrace(trace);
            trace = [];
          }
          trace.push({
            traceId: row.trace_low,
            id: row.span_id,
            parentId: row.parent_id,
            kind: row.kind,
            service: row.service,
            remoteService: row.remote_service,
            error: Number(row.error) === 1,
          });
        },
        { signal },
      );
      if (trace.length > 0) linker.putTrace(trace);
    }
    return linker.links();
  }

  /**
   * Rows one dependency pass may hold, at DEPENDENCY_ROW_BYTES a row, read
   * once: half the server's per-query memory limit; on a server without one
   * (current releases default to none), a quarter of its machine's memory;
   * DEFAULT_DEPENDENCY_ROWS when neither is known.
   */
  #dependencyRowsPerPass(): Promise<number> {
    this.#rowsPerPass ??= this.#memoryBudget()
      .then((bytes) => (bytes === undefined ? DEFAULT_DEPENDENCY_ROWS : Math.max(1000, Math.floor(bytes / DEPENDENCY_ROW_BYTES))))
      .catch((error: unknown) => {
        this.#rowsPerPass = undefined; // asked again next time
        throw error;
      });
    return this.#rowsPerPass;
  }

  async #memoryBudget(): Promise<number | undefined> {
    const number = (rows: Array<{ value: string | number }>): number => {
      const value = Number(rows[0]?.value ?? 0);
      return Number.isSafeInteger(value) && value > 0 ? value : 0;
    };
    const limit = number(
      await this.#engine.query<{ value: string }>({
        sql: `SELECT value FROM system.settings WHERE name = 'max_memory_usage'`,
        params: {},
      }),
    );
    if (limit > 0) return Math.floor(limit / 2);
    // Servers without a per-query limit are bounded by their own total, a share of the machine's memory.
    const machine = number(
      await this.#engine
        .query<{ value: number }>({
          sql: `SELECT value FROM system.asynchronous_metrics WHERE metric = 'OSMemoryTotal'`,
          params: {},
        })
        .catch(() => []), // an embedded or restricted engine may not offer it: the default applies
    );
    return machine > 0 ? Math.floor(machine / 4) : undefined;
  }

  async getAutocompleteKeys(): Promise<string[]> {
    if (this.#autocompleteKeys !== undefined) return [...this.#autocompleteKeys];
    return this.#column(`SELECT DISTINCT key FROM ${this.#db}.tag_values ORDER BY key LIMIT ${MAX_NAMES}`, {}, 'key');
  }

  async getAutocompleteValues(key: string): Promise<string[]> {
    if (this.#autocompleteKeys !== undefined && !this.#autocompleteKeys.includes(key)) return [];
    return this.#column(
      `SELECT DISTINCT value FROM ${this.#db}.tag_values WHERE key = {key:String} ORDER BY value LIMIT ${MAX_NAMES}`,
      { key: String(key) },
      'value',
    );
  }
}
