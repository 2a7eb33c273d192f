import type { Annotation, Endpoint, Span } from '@tracehouse/model';
import { RowWriter, jsonInTsv } from './row-writer.js';
import { StorageError } from './storage-error.js';

/**
 * Spans → TabSeparated rows of span_ingest (columns in INGEST_COLUMNS order),
 * one line per span. The last column is the payload: the span as canonical
 * Zipkin v2 JSON (fixed field order, tags sorted by key, annotations by
 * time), so identical spans have identical payloads, and with them the same
 * deduplication key, whatever order their fields arrived in (JSON v2 or
 * proto3, any producer).
 *
 * TabSeparated rather than JSONEachRow objects through @clickhouse/client
 * (compare with `npm run bench -w storage -- --compare-json`): no object per
 * row, and the payload JSON is embedded without a second round of JSON
 * escaping. RowBinary measured no cheaper for the 18.16 server to parse.
 * The bytes are written by RowWriter (see there why by hand).
 *
 * The collector does not call encodeSpans for JSON v2 bodies: transcodeSpans
 * (json-v2-transcoder.ts) writes the same rows straight from a body's bytes
 * and comes here (writeRow) only for spans it does not write itself.
 */

/** Rows of span_ingest for some spans, ready to be sent. */
export interface EncodedSpans {
  /** TabSeparated lines, one per span. */
  readonly rows: Buffer;
  /** Spans (lines) in `rows`. */
  readonly count: number;
}

const TAB = 0x09;
const NEWLINE = 0x0a;
const COMMA = 0x2c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const COLON = 0x3a;

const NO_KEYS: readonly string[] = [];

/**
 * Writes each span's row into a scratch buffer shared by all calls (encoding
 * is synchronous) and returns a copy of exactly the bytes written: the caller
 * may keep it for as long as its batch waits, and a span object can be
 * garbage as soon as it is encoded.
 */
const scratch = new RowWriter();

export function encodeSpans(spans: readonly Span[], fallbackMicros: number = Date.now() * 1000): EncodedSpans {
  scratch.length = 0;
  for (let i = 0; i < spans.length; i++) {
    const span = spans[i] as Span;
    if (typeof span?.traceId !== 'string' || typeof span.id !== 'string') {
      throw new StorageError({
        code: 'bad_input',
        retryable: false,
        message: `span ${i} has no traceId or id; spans must be normalised by @tracehouse/model`,
      });
    }
    writeRow(scratch, span, fallbackMicros);
  }
  const rows = Buffer.allocUnsafeSlow(scratch.length);
  scratch.buffer.copy(rows, 0, 0, scratch.length);
  // Let a scratch buffer grown by one huge batch go again.
  if (scratch.buffer.length > 16 * 1024 * 1024) scratch.buffer = Buffer.allocUnsafe(256 * 1024);
  return { rows, count: spans.length };
}

/** One span_ingest line as text, newline-terminated. */
export function spanRow(span: Span, fallbackMicros: number): string {
  const writer = new RowWriter(1024);
  writeRow(writer, span, fallbackMicros);
  return writer.buffer.toString('utf8', 0, writer.length);
}

/** The payload: the span as canonical Zipkin v2 JSON. */
export function canonicalJson(span: Span): string {
  return payloadOf(spanRow(span, 0).slice(0, -1));
}

/** The payload of a row (without its newline): the last field, with TabSeparated's doubled backslashes undone. */
function payloadOf(line: string): string {
  return line.slice(line.lastIndexOf('\t') + 1).replace(/\\\\/g, '\\');
}

/**
 * The canonical JSON v2 list of the spans in `rows` (their payloads): what a
 * dead letter of rows ClickHouse refused carries.
 */
export function spansJsonOf(encoded: readonly EncodedSpans[]): Buffer {
  const payloads: string[] = [];
  for (const { rows } of encoded) {
    for (const line of rows.toString('utf8').split('\n')) {
      if (line !== '') payloads.push(payloadOf(line));
    }
  }
  return Buffer.from(`[${payloads.join(',')}]`, 'utf8');
}

/** Appends one span's span_ingest line to `w` (for the JSON v2 transcoder's odd spans too). */
export function writeRow(w: RowWriter, span: Span, fallbackMicros: number): void {
  const tags = span.tags;
  let keys = NO_KEYS;
  /** The tags' JSON, only when index-like keys make JSON.stringify's order differ from the sorted keys. */
  let tagsJson: string | undefined;
  if (tags !== undefined) {
    const own = Object.keys(tags);
    if (!isSorted(own)) own.sort();
    keys = own;
    if (own.some(isIndexKey)) {
      // fromEntries defines properties: a "__proto__" tag stays a tag, where assigning it would not.
      tagsJson = JSON.stringify(Object.fromEntries(own.map((key) => [key, tags[key]])));
    }
  }
  const annotations = span.annotations !== undefined && span.annotations.length > 0 ? sortedAnnotations(span.annotations) : undefined;
  const service = span.localEndpoint?.serviceName;
  const remote = span.remoteEndpoint?.serviceName;

  w.tsv(span.traceId);
  w.char(TAB);
  w.tsv(span.id);
  w.char(TAB);
  if (span.parentId !== undefined) w.tsv(span.parentId);
  w.char(TAB);
  if (span.kind !== undefined && KINDS.has(span.kind)) w.ascii(span.kind);
  w.char(TAB);
  if (span.name !== undefined) w.tsv(span.name, true);
  w.char(TAB);
  if (service !== undefined) w.tsv(service, true);
  w.char(TAB);
  if (remote !== undefined) w.tsv(remote, true);
  w.char(TAB);
  w.number(uint(spanTime(span, fallbackMicros)));
  w.char(TAB);
  w.number(uint(span.duration ?? 0));
  w.char(TAB);
  w.char(OPEN_BRACKET);
  for (let i = 0; i < keys.length; i++) {
    if (i > 0) w.char(COMMA);
    w.quoted(keys[i] as string);
  }
  w.char(CLOSE_BRACKET);
  w.char(TAB);
  w.char(OPEN_BRACKET);
  for (let i = 0; i < keys.length; i++) {
    if (i > 0) w.char(COMMA);
    w.quoted((tags as Record<string, string>)[keys[i] as string] as string);
  }
  w.char(CLOSE_BRACKET);
  w.char(TAB);
  w.char(OPEN_BRACKET);
  if (annotations !== undefined) {
    for (let i = 0; i < annotations.length; i++) {
      if (i > 0) w.char(COMMA);
      w.quoted((annotations[i] as Annotation).value);
    }
  }
  w.char(CLOSE_BRACKET);
  w.char(TAB);

  // The payload, field by field in a fixed order.
  w.ascii('{"traceId":');
  w.jsonString(span.traceId);
  if (span.parentId !== undefined) {
    w.ascii(',"parentId":');
    w.jsonString(span.parentId);
  }
  w.ascii(',"id":');
  w.jsonString(span.id);
  if (span.kind !== undefined) {
    w.ascii(',"kind":');
    w.jsonString(span.kind);
  }
  if (span.name !== undefined) {
    w.ascii(',"name":');
    w.jsonString(span.name);
  }
  if (span.timestamp !== undefined) {
    w.ascii(',"timestamp":');
    w.number(span.timestamp);
  }
  if (span.duration !== undefined) {
    w.ascii(',"duration":');
    w.number(span.duration);
  }
  if (span.debug === true) w.ascii(',"debug":true');
  if (span.shared === true) w.ascii(',"shared":true');
  if (span.localEndpoint !== undefined) {
    w.ascii(',"localEndpoint":');
    writeEndpoint(w, span.localEndpoint);
  }
  if (span.remoteEndpoint !== undefined) {
    w.ascii(',"remoteEndpoint":');
    writeEndpoint(w, span.remoteEndpoint);
  }
  if (annotations !== undefined) {
    w.ascii(',"annotations":[');
    for (let i = 0; i < annotations.length; i++) {
      const annotation = annotations[i] as Annotation;
      w.ascii(i === 0 ? '{"timestamp":' : ',{"timestamp":');
      w.number(annotation.timestamp);
      w.ascii(',"value":');
      w.jsonString(annotation.value);
      w.char(CLOSE_BRACE);
    }
    w.char(CLOSE_BRACKET);
  }
  if (keys.length > 0) {
    w.ascii(',"tags":');
    if (tagsJson !== undefined) {
      w.utf8(jsonInTsv(tagsJson));
    } else {
      w.char(OPEN_BRACE);
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i] as string;
        if (i > 0) w.char(COMMA);
        w.jsonString(key);
        w.char(COLON);
        w.jsonString((tags as Record<string, string>)[key] as string);
      }
      w.char(CLOSE_BRACE);
    }
  }
  w.char(CLOSE_BRACE);
  w.char(NEWLINE);
}

function writeEndpoint(w: RowWriter, e: Endpoint): void {
  // Each field after the first starts with a comma: `sep` is '{' then ','.
  let sep = OPEN_BRACE;
  if (e.serviceName !== undefined) sep = writeStringField(w, sep, '"serviceName":', e.serviceName);
  if (e.ipv4 !== undefined) sep = writeStringField(w, sep, '"ipv4":', e.ipv4);
  if (e.ipv6 !== undefined) sep = writeStringField(w, sep, '"ipv6":', e.ipv6);
  if (e.port !== undefined) {
    w.char(sep);
    w.ascii('"port":');
    w.number(e.port);
    sep = COMMA;
  }
  if (sep === OPEN_BRACE) w.char(OPEN_BRACE);
  w.char(CLOSE_BRACE);
}

/** `sep` then `"key":"value"`; returns the separator of the next field. */
function writeStringField(w: RowWriter, sep: number, key: string, value: string): number {
  w.char(sep);
  w.ascii(key);
  w.jsonString(value);
  return COMMA;
}

function sortedAnnotations(list: readonly Annotation[]): readonly Annotation[] {
  for (let i = 1; i < list.length; i++) {
    if (compareAnnotations(list[i - 1] as Annotation, list[i] as Annotation) > 0) {
      // Zipkin orders annotations by timestamp; sorting keeps the payload canonical.
      return [...list].sort(compareAnnotations);
    }
  }
  return list;
}

function compareAnnotations(a: Annotation, b: Annotation): number {
  return a.timestamp - b.timestamp || (a.value < b.value ? -1 : a.value > b.value ? 1 : 0);
}

function isSorted(keys: readonly string[]): boolean {
  for (let i = 1; i < keys.length; i++) if ((keys[i - 1] as string) > (keys[i] as string)) return false;
  return true;
}

/**
 * Whether a key is an array index ("0", "42"): JSON.stringify writes those
 * first, in numeric order, whatever order the object was built in.
 */
function isIndexKey(key: string): boolean {
  const first = key.charCodeAt(0);
  return first >= 0x30 && first <= 0x39 && /^(?:0|[1-9][0-9]*)$/.test(key) && Number(key) < 4294967295;
}

/**
 * The time a span is filed under (partition and search): its timestamp, else
 * its first annotation, else `fallbackMicros` (the write time). Zipkin allows
 * spans without a timestamp (late or partial reports).
 */
export function spanTime(span: Span, fallbackMicros: number): number {
  if (span.timestamp !== undefined && span.timestamp > 0) return span.timestamp;
  let first = 0;
  for (const a of span.annotations ?? []) if (a.timestamp > 0 && (first === 0 || a.timestamp < first)) first = a.timestamp;
  return first > 0 ? first : fallbackMicros;
}

const KINDS = new Set(['CLIENT', 'SERVER', 'PRODUCER', 'CONSUMER']);

/** A non-negative safe integer for a UInt64 column (model spans already are; this keeps a bad one from failing the batch). */
export function uint(value: number): number {
  if (!Number.isFinite(value) || value <= 0) return 0;
  return Math.min(Math.trunc(value), Number.MAX_SAFE_INTEGER);
}

