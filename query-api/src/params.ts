/**
 * Turns the Zipkin v2 query parameters into the reader's query types, with
 * Zipkin's semantics (zipkin2.storage.QueryRequest, zipkin2.Span.normalizeTraceId)
 * and this server's bounds. Every failure is an ApiError naming the parameter.
 * Pure functions: no I/O, unit tested in params.test.ts.
 */
import { normalizeTraceId as canonicalTraceId } from '@tracehouse/model';
import { badParameter, missingParameter } from './errors.js';

/**
 * Longest service, span or tag name accepted in a query. Names are stored at
 * any length and the API lists them, so this is only a sanity bound: Node's
 * 16 KiB limit on a request's head stops longer ones before they get here.
 */
export const MAX_NAME_LENGTH = 16_384;
/** Longest annotationQuery accepted. */
export const MAX_ANNOTATION_QUERY_LENGTH = 16_384;
/** Most terms in one annotationQuery. */
export const MAX_ANNOTATION_TERMS = 16;
/** Most trace ids in one /traceMany request. */
export const MAX_TRACE_IDS = 1000;
/**
 * Largest endTs accepted (ms): the window ends at the last microsecond of that
 * millisecond, endTs * 1000 + 999, which must still be an exact double.
 */
export const MAX_END_TS_MS = Math.floor((Number.MAX_SAFE_INTEGER - 999) / 1000);

export interface AnnotationQueryTerm {
  key: string;
  /** Absent: the key matches an annotation value or a tag key. Present: the tag `key` must equal it. */
  value?: string;
}

export interface TraceQueryParams {
  serviceName?: string;
  remoteServiceName?: string;
  spanName?: string;
  annotationQuery?: AnnotationQueryTerm[];
  /** Microseconds. */
  minDuration?: number;
  /** Microseconds. */
  maxDuration?: number;
  /** Epoch milliseconds. */
  endTs: number;
  /** Milliseconds. */
  lookback: number;
  limit: number;
}

export interface WindowParams {
  /** Epoch milliseconds. */
  endTs: number;
  /** Milliseconds. */
  lookback: number;
}

export interface QueryBounds {
  defaultLimit: number;
  maxLimit: number;
  defaultLookbackMs: number;
  maxLookbackMs: number;
}

// Lone surrogates have no UTF-8 form, so no stored name or value holds one.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Names and tag values as spans carry them: any text (a multi-line SQL
 * statement as a span name, say), since /services, /spans and the
 * autocomplete endpoints list such text and the UI sends it back. Values are
 * bound as query parameters, never spliced into SQL.
 */
function checkText(parameter: string, value: string, maxLength: number): void {
  if (value.length > maxLength) throw badParameter(parameter, `longer than ${maxLength} characters`);
  if (LONE_SURROGATE.test(value)) throw badParameter(parameter, 'contains a lone surrogate (not text)');
}

/**
 * A service, remote service or span name: lower-cased as Zipkin stores them.
 * Empty means absent; a required one that is absent is a 400.
 */
export function parseName(parameter: string, value: string | undefined, options: { required: true }): string;
export function parseName(parameter: string, value: string | undefined, options?: { required?: false }): string | undefined;
export function parseName(parameter: string, value: string | undefined, options: { required?: boolean } = {}): string | undefined {
  if (value === undefined || value === '') {
    if (options.required === true) throw missingParameter(parameter);
    return undefined;
  }
  checkText(parameter, value, MAX_NAME_LENGTH);
  return value.toLowerCase();
}

/** A tag key for /autocompleteValues: case kept, as tags keep it. */
export function parseTagKey(parameter: string, value: string | undefined): string {
  if (value === undefined || value === '') throw missingParameter(parameter);
  checkText(parameter, value, MAX_NAME_LENGTH);
  return value;
}

/**
 * Zipkin's annotationQuery: terms joined by ` and `; `key=value` constrains a
 * tag, a bare word (or `key=`) matches an annotation value or a tag key.
 * `error and http.method=GET` → [{ key: 'error' }, { key: 'http.method', value: 'GET' }].
 * One term per key, as in Zipkin's QueryRequest.parseAnnotationQuery: a
 * `key=value` replaces what came before for that key, a bare word only adds a
 * key not seen yet, so `error=500 and error` still needs error=500.
 */
export function parseAnnotationQuery(value: string | undefined): AnnotationQueryTerm[] | undefined {
  const parameter = 'annotationQuery';
  if (value === undefined || value.trim() === '') return undefined;
  checkText(parameter, value, MAX_ANNOTATION_QUERY_LENGTH);
  const byKey = new Map<string, string | undefined>();
  for (const rawTerm of value.split(' and ')) {
    const term = rawTerm.trim();
    if (term === '') continue;
    const eq = term.indexOf('=');
    const key = (eq === -1 ? term : term.slice(0, eq)).trim();
    const tagValue = eq === -1 ? '' : term.slice(eq + 1).trim();
    if (key === '') throw badParameter(parameter, `term ${JSON.stringify(term)} has no key before '='`);
    if (key.length > MAX_NAME_LENGTH) throw badParameter(parameter, `key longer than ${MAX_NAME_LENGTH} characters`);
    // A bare word must not widen a more specific term on its key; a later key=value wins (Zipkin's
    // map put: the key keeps its first place).
    if (eq === -1) {
      if (!byKey.has(key)) byKey.set(key, undefined);
    } else {
      byKey.set(key, tagValue === '' ? undefined : tagValue);
    }
  }
  if (byKey.size > MAX_ANNOTATION_TERMS) throw badParameter(parameter, `more than ${MAX_ANNOTATION_TERMS} terms`);
  if (byKey.size === 0) return undefined;
  return [...byKey].map(([key, tagValue]) => (tagValue === undefined ? { key } : { key, value: tagValue }));
}

/**
 * A trace id as Zipkin's Span.normalizeTraceId treats it: 1 to 32 hex
 * characters (any case), lower-cased, left-padded with zeros to 16 or 32, and a
 * 128-bit id whose upper half is zero shortened to its lower 64 bits. All zeros
 * is invalid.
 */
export function normalizeTraceId(parameter: string, value: string | undefined): string {
  if (value === undefined || value === '') throw missingParameter(parameter);
  // The same normalization the collector applied when it stored the span.
  const id = canonicalTraceId(value);
  if (id !== undefined) return id;
  if (value.length > 32) throw badParameter(parameter, 'a trace id has at most 32 hex characters');
  if (/^0+$/.test(value)) throw badParameter(parameter, 'a trace id cannot be all zeros');
  throw badParameter(parameter, 'a trace id is 16 or 32 hex characters');
}

/** /traceMany: at least two distinct comma-separated trace ids. */
export function parseTraceIds(value: string | undefined): string[] {
  const parameter = 'traceIds';
  if (value === undefined || value === '') throw missingParameter(parameter);
  const parts = value.split(',');
  if (parts.length > MAX_TRACE_IDS) throw badParameter(parameter, `at most ${MAX_TRACE_IDS} trace ids`);
  const ids: string[] = [];
  const seen = new Set<string>();
  for (const part of parts) {
    const trimmed = part.trim();
    // The parameter is there; one element of it is empty (`a,`, `a,,b`): malformed, not missing.
    if (trimmed === '') throw badParameter(parameter, 'the list holds an empty trace id');
    const id = normalizeTraceId(parameter, trimmed);
    if (seen.has(id)) throw badParameter(parameter, `trace id ${id} is listed twice`);
    seen.add(id);
    ids.push(id);
  }
  if (ids.length < 2) throw badParameter(parameter, 'needs at least two trace ids; use /trace/{traceId} for one');
  return ids;
}

/** The query parameters the API reads as integers. */
const INTEGER_PARAMETERS = ['limit', 'endTs', 'lookback', 'minDuration', 'maxDuration'] as const;

/**
 * Refuses an integer parameter written other than in decimal digits (`0x10`,
 * `1e1`, ` 12`, `1.0`): the schema's coercion would take those as numbers,
 * where Zipkin's Long.valueOf answers 400. A sign is left to the bounds check.
 */
export function checkIntegerParameters(query: unknown): void {
  if (typeof query !== 'object' || query === null) return;
  for (const parameter of INTEGER_PARAMETERS) {
    const value = (query as Record<string, unknown>)[parameter];
    if (typeof value === 'string' && !/^-?[0-9]+$/.test(value)) throw badParameter(parameter, 'must be an integer in decimal digits');
  }
}

function positiveInteger(parameter: string, value: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw badParameter(parameter, 'must be a positive integer');
  if (value > max) throw badParameter(parameter, `must be at most ${max}`);
  return value;
}

/** endTs and lookback as Zipkin reads them: endTs defaults to now, lookback to the configured default and is clamped to the configured maximum and to endTs. */
export function parseWindow(
  input: { endTs?: number | undefined; lookback?: number | undefined },
  bounds: QueryBounds,
  nowMs: number,
): WindowParams {
  const endTs = input.endTs === undefined ? nowMs : positiveInteger('endTs', input.endTs, MAX_END_TS_MS);
  const requested =
    input.lookback === undefined ? bounds.defaultLookbackMs : positiveInteger('lookback', input.lookback, Number.MAX_SAFE_INTEGER);
  return { endTs, lookback: Math.min(requested, bounds.maxLookbackMs, endTs) };
}

export interface RawTracesQuery {
  serviceName?: string | undefined;
  remoteServiceName?: string | undefined;
  spanName?: string | undefined;
  annotationQuery?: string | undefined;
  minDuration?: number | undefined;
  maxDuration?: number | undefined;
  endTs?: number | undefined;
  lookback?: number | undefined;
  limit?: number | undefined;
}

/** /traces parameters → the reader's TraceQuery. */
export function parseTracesQuery(input: RawTracesQuery, bounds: QueryBounds, nowMs: number): TraceQueryParams {
  const query: TraceQueryParams = {
    ...parseWindow(input, bounds, nowMs),
    limit: input.limit === undefined ? bounds.defaultLimit : positiveInteger('limit', input.limit, bounds.maxLimit),
  };
  const serviceName = parseName('serviceName', input.serviceName);
  if (serviceName !== undefined) query.serviceName = serviceName;
  const remoteServiceName = parseName('remoteServiceName', input.remoteServiceName);
  if (remoteServiceName !== undefined) query.remoteServiceName = remoteServiceName;
  const spanName = parseName('spanName', input.spanName);
  // The Zipkin UI historically sent spanName=all for "any".
  if (spanName !== undefined && spanName !== 'all') query.spanName = spanName;
  const annotationQuery = parseAnnotationQuery(input.annotationQuery);
  if (annotationQuery !== undefined) query.annotationQuery = annotationQuery;
  if (input.minDuration !== undefined) {
    query.minDuration = positiveInteger('minDuration', input.minDuration, Number.MAX_SAFE_INTEGER);
  }
  if (input.maxDuration !== undefined) {
    if (query.minDuration === undefined) throw badParameter('maxDuration', 'is only valid with minDuration');
    const maxDuration = positiveInteger('maxDuration', input.maxDuration, Number.MAX_SAFE_INTEGER);
    if (maxDuration < query.minDuration) throw badParameter('maxDuration', 'must be at least minDuration');
    query.maxDuration = maxDuration;
  }
  return query;
}
