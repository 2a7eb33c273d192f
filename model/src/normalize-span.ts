// Validation and normalisation of one span, following Zipkin's Span.Builder
// and its JSON v2 reader. This is on the collector's hot path: every span of
// every message passes through it, so it is a hand-written single pass with no
// regular expressions and no intermediate copies.
import { normalizeIp } from './ip.js';
import { SpanRejection, rejectSpan, type DroppedSpan, type NormalizeResult, type SpanRejectReason } from './results.js';
import { setTag } from './set-tag.js';
import type { Annotation, Endpoint, Span, SpanKind } from './span.js';

// String.prototype.isWellFormed/toWellFormed are ES2024 (in Node since 20);
// the project's lib setting is ES2023, so a local type, not a global one.
type WellFormedApi = { isWellFormed(): boolean; toWellFormed(): string };

function isWellFormed(s: string): boolean {
  return (s as unknown as WellFormedApi).isWellFormed();
}

/**
 * Text that UTF-8 can carry: a lone UTF-16 surrogate (possible in JSON via
 * \ud800 escapes) becomes U+FFFD, so a span reads the same after proto3 or
 * storage. Cheap: V8 answers at once for one-byte (Latin-1) strings.
 */
function wellFormed(s: string): string {
  return isWellFormed(s) ? s : (s as unknown as WellFormedApi).toWellFormed();
}

/** Short printable form of a bad value for error messages. */
export function show(value: unknown): string {
  let text: string;
  try {
    if (typeof value === 'string') text = JSON.stringify(value.length > 80 ? value.slice(0, 80) : value);
    else if (typeof value === 'object' && value !== null) text = Array.isArray(value) ? 'an array' : 'an object';
    else text = String(value);
  } catch {
    text = typeof value;
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/**
 * Checks hex (either case) and counts the leading zeros. Returns the
 * lower-cased id with that count, or undefined when the id is all zeros.
 * Rejects non-hex text and a length over `max`.
 */
function hexId(value: string, field: string, max: number, reason: SpanRejectReason): { id: string; zeros: number } | undefined {
  const length = value.length;
  if (length > max) rejectSpan(reason, `${field} ${show(value)} is longer than ${max} hex characters`);
  let zeros = 0;
  let upper = false;
  let leading = true;
  for (let i = 0; i < length; i++) {
    const c = value.charCodeAt(i);
    if (c === 48) {
      if (leading) zeros++;
      continue;
    }
    leading = false;
    if ((c >= 49 && c <= 57) || (c >= 97 && c <= 102)) continue;
    if (c >= 65 && c <= 70) {
      upper = true;
      continue;
    }
    rejectSpan(reason, `${field} ${show(value)} is not hex`);
  }
  if (zeros === length) return undefined;
  return { id: upper ? value.toLowerCase() : value, zeros };
}

const ZEROS = '00000000000000000000000000000000';

/**
 * Normalises a trace id as Zipkin does: 1-32 hex characters (either case),
 * lower-cased, left-padded with zeros to 16 (when up to 16 long) or to 32
 * characters, and an id whose high 64 bits are zero (after padding, so for
 * 17-31 characters too) shortened to its low 16 characters. Idempotent.
 * Returns undefined for anything that is not a valid trace id (empty, too
 * long, not hex, all zeros). The query side uses this to look up trace ids
 * the way they were stored.
 */
export function normalizeTraceId(value: string): string | undefined {
  try {
    return traceIdOf(value);
  } catch {
    return undefined;
  }
}

function traceIdOf(value: string): string {
  if (value.length === 0) rejectSpan('missing_trace_id', 'traceId is empty');
  const parsed = hexId(value, 'traceId', 32, 'bad_trace_id');
  if (!parsed) return rejectSpan('bad_trace_id', 'traceId is all zeros');
  const { id, zeros } = parsed;
  const length = id.length;
  if (length === 16) return id;
  if (length < 16) return ZEROS.slice(0, 16 - length) + id;
  // Over 16: a zero high half is the 64-bit id, whatever the length (Zipkin
  // checks this for 32 characters only, so normalising again would change
  // a padded 17-31 character id; it must be idempotent to look ids up).
  if (zeros >= length - 16) return id.slice(length - 16);
  return length === 32 ? id : ZEROS.slice(0, 32 - length) + id;
}

function spanIdOf(value: string, field: string, reason: SpanRejectReason): string | undefined {
  const parsed = hexId(value, field, 16, reason);
  if (!parsed) return undefined;
  const { id } = parsed;
  return id.length === 16 ? id : ZEROS.slice(0, 16 - id.length) + id;
}

function kindOf(value: unknown): SpanKind | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'string') {
    if (value === 'CLIENT' || value === 'SERVER' || value === 'PRODUCER' || value === 'CONSUMER') return value;
    const upper = value.toUpperCase();
    if (upper === 'CLIENT' || upper === 'SERVER' || upper === 'PRODUCER' || upper === 'CONSUMER') return upper;
  }
  return rejectSpan('bad_kind', `kind ${show(value)} is not one of CLIENT, SERVER, PRODUCER, CONSUMER`);
}

/** Epoch or duration microseconds: absent for missing, 0 or negative (as Zipkin clamps). */
function micros(value: unknown, field: string, reason: SpanRejectReason): number | undefined {
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value)) return value > 0 ? value : undefined;
    return rejectSpan(reason, `${field} ${show(value)} is not a whole number of microseconds below 2^53`);
  }
  if (value === undefined || value === null) return undefined;
  return rejectSpan(reason, `${field} ${show(value)} is not a number`);
}

function stringField(span: Record<string, unknown>, field: string): string | undefined {
  const value = span[field];
  if (typeof value === 'string') return value.length === 0 ? undefined : value;
  if (value === undefined || value === null) return undefined;
  return rejectSpan('bad_field_type', `${field} ${show(value)} is not a string`);
}

function flag(value: unknown, field: string): boolean {
  if (value === true) return true;
  if (value === false || value === undefined || value === null) return false;
  return rejectSpan('bad_field_type', `${field} ${show(value)} is not a boolean`);
}

function endpointOf(value: unknown, field: string): Endpoint | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) rejectSpan('bad_endpoint', `${field} is ${show(value)}, not an object`);
  const raw = value as Record<string, unknown>;
  const out: Endpoint = {};
  let empty = true;
  const serviceName = raw.serviceName;
  if (typeof serviceName === 'string') {
    if (serviceName.length > 0) {
      out.serviceName = wellFormed(serviceName.toLowerCase());
      empty = false;
    }
  } else if (serviceName !== undefined && serviceName !== null) {
    rejectSpan('bad_endpoint', `${field}.serviceName ${show(serviceName)} is not a string`);
  }
  // Like Zipkin, text that is not an IP address is ignored rather than
  // failing the span; either field may carry either family.
  for (let k = 0; k < 2; k++) {
    const key = k === 0 ? 'ipv4' : 'ipv6';
    const ip = raw[key];
    if (typeof ip === 'string') {
      if (ip.length === 0) continue;
      const parsed = normalizeIp(ip);
      if (parsed === undefined) continue;
      if (parsed.ipv6 !== undefined) out.ipv6 = parsed.ipv6;
      else out.ipv4 = parsed.ipv4 ?? ip;
      empty = false;
    } else if (ip !== undefined && ip !== null) {
      rejectSpan('bad_endpoint', `${field}.${key} ${show(ip)} is not a string`);
    }
  }
  const port = raw.port;
  if (typeof port === 'number') {
    if (!Number.isInteger(port) || port > 0xffff) rejectSpan('bad_endpoint', `${field}.port ${show(port)} is not a port number`);
    if (port > 0) {
      out.port = port;
      empty = false;
    }
  } else if (port !== undefined && port !== null) {
    rejectSpan('bad_endpoint', `${field}.port ${show(port)} is not a number`);
  }
  return empty ? undefined : out;
}

function compareAnnotations(a: Annotation, b: Annotation): number {
  if (a.timestamp !== b.timestamp) return a.timestamp - b.timestamp;
  return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

function annotationsOf(value: unknown): Annotation[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) return rejectSpan('bad_annotation', `annotations is ${show(value)}, not a list`);
  const list = value as unknown[];
  if (list.length === 0) return undefined;
  const out: Annotation[] = [];
  let sorted = true;
  for (let i = 0; i < list.length; i++) {
    const a = list[i];
    if (typeof a !== 'object' || a === null || Array.isArray(a)) rejectSpan('bad_annotation', `annotations[${i}] is ${show(a)}, not an object`);
    const { timestamp, value: raw } = a as Record<string, unknown>;
    // A number is kept as its text, as Zipkin's reader does (gson's nextString).
    const text = typeof raw === 'number' && Number.isFinite(raw) ? String(raw) : raw;
    // An annotation without a time or a value is left out, the span kept: Zipkin's proto3 reader
    // skips such an annotation, and its JSON reader keeps the span (with a 1970 annotation).
    if (typeof timestamp !== 'number' || !Number.isSafeInteger(timestamp) || timestamp <= 0) continue;
    if (typeof text !== 'string' || text.length === 0) continue;
    const annotation: Annotation = { timestamp, value: wellFormed(text) };
    if (out.length > 0 && sorted && compareAnnotations(out[out.length - 1]!, annotation) >= 0) sorted = false;
    out.push(annotation);
  }
  if (out.length === 0) return undefined;
  if (sorted) return out;
  // As Zipkin does: sorted by timestamp then value, duplicates removed.
  out.sort(compareAnnotations);
  const unique: Annotation[] = [out[0]!];
  for (let i = 1; i < out.length; i++) {
    if (compareAnnotations(unique[unique.length - 1]!, out[i]!) !== 0) unique.push(out[i]!);
  }
  return unique;
}

function tagsOf(value: unknown, reuse: boolean): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) return rejectSpan('bad_tags', `tags is ${show(value)}, not an object`);
  const raw = value as Record<string, unknown>;
  let count = 0;
  let clean = true;
  for (const key in raw) {
    if (!Object.prototype.hasOwnProperty.call(raw, key)) continue;
    const v = raw[key];
    // Zipkin's reader keeps a number as its text (gson's nextString) and refuses a boolean, null or
    // object value (openzipkin/zipkin#3695).
    if (typeof v === 'number' && Number.isFinite(v)) {
      clean = false;
      count++;
      continue;
    }
    if (typeof v !== 'string') rejectSpan('bad_tags', `tag ${show(key)} has value ${show(v)}, not a string or a number`);
    if (clean && (!isWellFormed(key) || !isWellFormed(v))) clean = false;
    count++;
  }
  if (count === 0) return undefined;
  if (reuse && clean && Object.getPrototypeOf(raw) === Object.prototype) return raw as Record<string, string>;
  const out: Record<string, string> = {};
  for (const rawKey in raw) {
    if (!Object.prototype.hasOwnProperty.call(raw, rawKey)) continue;
    const rawValue = raw[rawKey] as string | number;
    const v = typeof rawValue === 'number' ? String(rawValue) : wellFormed(rawValue);
    const key = wellFormed(rawKey);
    setTag(out, key, v);
  }
  return out;
}

/**
 * Validates and normalises a span. When `reuse` is true the caller hands over
 * ownership of `input` (freshly parsed JSON) and nested objects may be kept.
 * Throws SpanRejection.
 */
export function normalizeOrThrow(input: unknown, reuse: boolean): Span {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return rejectSpan('not_an_object', `span is ${show(input)}, not an object`);
  }
  const raw = input as Record<string, unknown>;

  const rawTraceId = raw.traceId;
  if (rawTraceId === undefined || rawTraceId === null || rawTraceId === '') rejectSpan('missing_trace_id', 'traceId is missing');
  if (typeof rawTraceId !== 'string') return rejectSpan('bad_trace_id', `traceId ${show(rawTraceId)} is not a string`);
  const traceId = traceIdOf(rawTraceId);

  const rawId = raw.id;
  if (rawId === undefined || rawId === null || rawId === '') rejectSpan('missing_id', 'id is missing');
  if (typeof rawId !== 'string') return rejectSpan('bad_id', `id ${show(rawId)} is not a string`);
  const id = spanIdOf(rawId, 'id', 'bad_id');
  if (id === undefined) return rejectSpan('bad_id', 'id is all zeros');

  const rawParentId = raw.parentId;
  let parentId: string | undefined;
  if (typeof rawParentId === 'string') {
    if (rawParentId.length > 0) parentId = spanIdOf(rawParentId, 'parentId', 'bad_parent_id');
  } else if (rawParentId !== undefined && rawParentId !== null) {
    rejectSpan('bad_parent_id', `parentId ${show(rawParentId)} is not a string`);
  }
  // Zipkin drops a parent id equal to the span's own id.
  if (parentId === id) parentId = undefined;

  const kind = kindOf(raw.kind);
  const rawName = stringField(raw, 'name');
  const timestamp = micros(raw.timestamp, 'timestamp', 'bad_timestamp');
  const duration = micros(raw.duration, 'duration', 'bad_duration');
  const localEndpoint = endpointOf(raw.localEndpoint, 'localEndpoint');
  const remoteEndpoint = endpointOf(raw.remoteEndpoint, 'remoteEndpoint');
  const annotations = annotationsOf(raw.annotations);
  const tags = tagsOf(raw.tags, reuse);
  const debug = flag(raw.debug, 'debug');
  // Zipkin unsets `shared` on client spans: only the server side shares an id.
  const shared = flag(raw.shared, 'shared') && kind !== 'CLIENT';

  // Properties are added in Zipkin's JSON field order so JSON.stringify of a
  // normalised span matches Zipkin's own output.
  const span: Span = parentId === undefined ? { traceId, id } : { traceId, parentId, id };
  if (kind !== undefined) span.kind = kind;
  if (rawName !== undefined) span.name = wellFormed(rawName.toLowerCase());
  if (timestamp !== undefined) span.timestamp = timestamp;
  if (duration !== undefined) span.duration = duration;
  if (localEndpoint !== undefined) span.localEndpoint = localEndpoint;
  if (remoteEndpoint !== undefined) span.remoteEndpoint = remoteEndpoint;
  if (annotations !== undefined) span.annotations = annotations;
  if (tags !== undefined) span.tags = tags;
  if (debug) span.debug = true;
  if (shared) span.shared = true;
  return span;
}

/** The entry of `dropped` for an item of a list that normalizeOrThrow rejected with `e`. */
export function droppedSpan(e: unknown, index: number): DroppedSpan {
  if (e instanceof SpanRejection) return { index, reason: e.reason, message: e.message };
  return { index, reason: 'bad_field_type', message: `span could not be read: ${e instanceof Error ? e.message : String(e)}` };
}

/** Normalises item `index` of a freshly parsed JSON v2 list into `spans`, or records in `dropped` why not. */
export function normalizeInto(item: unknown, index: number, spans: Span[], dropped: DroppedSpan[]): void {
  try {
    spans.push(normalizeOrThrow(item, true));
  } catch (e) {
    dropped.push(droppedSpan(e, index));
  }
}

/**
 * Validates and normalises one span as Zipkin does (see README.md for the
 * rules). Never throws: a bad span comes back with a reason and a message.
 */
export function normalizeSpan(input: unknown): NormalizeResult {
  try {
    return { ok: true, span: normalizeOrThrow(input, false) };
  } catch (e) {
    if (e instanceof SpanRejection) return { ok: false, reason: e.reason, message: e.message };
    return { ok: false, reason: 'bad_field_type', message: `span could not be read: ${e instanceof Error ? e.message : String(e)}` };
  }
}
