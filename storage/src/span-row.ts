import type { Annotation, Endpoint, Span } from '@tracehouse/model';
import { StorageError } from './storage-error.js';

/**
 * Span → one TabSeparated line of span_ingest (columns in INGEST_COLUMNS
 * order).
 *
 * Hand-built on purpose: this is the writer's hot path. TabSeparated rather
 * than JSONEachRow objects through @clickhouse/client (compare with
 * `npm run bench -w storage -- --compare-json`): no object per row, the
 * payload JSON is embedded without a second round of JSON escaping (a JSON
 * string inside JSON escapes every quote), and 18.16 has no compact JSON row
 * format. RowBinary would need every string's UTF-8 length up front.
 */

/** The payload: the span as canonical Zipkin v2 JSON (fixed field order, sorted tags). */
export function canonicalJson(span: Span): string {
  let tail = '';
  if (span.annotations !== undefined && span.annotations.length > 0) {
    tail += ',"annotations":' + annotationsJson(sortedAnnotations(span.annotations));
  }
  if (span.tags !== undefined) {
    const tags = canonicalTags(span.tags);
    if (tags.keys.length > 0) tail += ',"tags":' + tags.json;
  }
  return jsonHead(span) + tail + '}';
}

/**
 * The payload up to (not including) annotations and tags, unterminated.
 * Written field by field in a fixed order, so the payload, and with it the
 * deduplication key, is identical for identical spans whatever order their
 * fields arrived in (JSON v2 or proto3, any producer). Hand-built because it
 * runs for every span: faster than building a fresh object for
 * JSON.stringify (npm run bench -w storage prints the row-building rate).
 */
function jsonHead(span: Span): string {
  let out = '{"traceId":' + JSON.stringify(span.traceId);
  if (span.parentId !== undefined) out += ',"parentId":' + JSON.stringify(span.parentId);
  out += ',"id":' + JSON.stringify(span.id);
  if (span.kind !== undefined) out += ',"kind":' + JSON.stringify(span.kind);
  if (span.name !== undefined) out += ',"name":' + JSON.stringify(span.name);
  if (span.timestamp !== undefined) out += ',"timestamp":' + jsonNumber(span.timestamp);
  if (span.duration !== undefined) out += ',"duration":' + jsonNumber(span.duration);
  if (span.debug === true) out += ',"debug":true';
  if (span.shared === true) out += ',"shared":true';
  if (span.localEndpoint !== undefined) out += ',"localEndpoint":' + endpoint(span.localEndpoint);
  if (span.remoteEndpoint !== undefined) out += ',"remoteEndpoint":' + endpoint(span.remoteEndpoint);
  return out;
}

/**
 * The tags in canonical order: the keys sorted, and the JSON of an object
 * holding them in that order (one native JSON.stringify).
 */
function canonicalTags(tags: Record<string, string>): { keys: string[]; values: Record<string, string>; json: string } {
  const keys = Object.keys(tags);
  let values = tags;
  if (!isSorted(keys)) {
    keys.sort();
    const sorted: Record<string, string> = {};
    for (const key of keys) sorted[key] = tags[key] as string;
    values = sorted;
  }
  return { keys, values, json: JSON.stringify(values) };
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

function annotationsJson(list: readonly Annotation[]): string {
  let out = '';
  for (const a of list) {
    out += (out === '' ? '[' : ',') + '{"timestamp":' + jsonNumber(a.timestamp) + ',"value":' + JSON.stringify(a.value) + '}';
  }
  return out + ']';
}

function jsonNumber(n: number): string {
  return Number.isFinite(n) ? String(n) : 'null';
}

function endpoint(e: Endpoint): string {
  let out = '';
  if (e.serviceName !== undefined) out += ',"serviceName":' + JSON.stringify(e.serviceName);
  if (e.ipv4 !== undefined) out += ',"ipv4":' + JSON.stringify(e.ipv4);
  if (e.ipv6 !== undefined) out += ',"ipv6":' + JSON.stringify(e.ipv6);
  if (e.port !== undefined) out += ',"port":' + jsonNumber(e.port);
  return out === '' ? '{}' : '{' + out.slice(1) + '}';
}

function compareAnnotations(a: Annotation, b: Annotation): number {
  return a.timestamp - b.timestamp || (a.value < b.value ? -1 : a.value > b.value ? 1 : 0);
}

function isSorted(keys: readonly string[]): boolean {
  for (let i = 1; i < keys.length; i++) if ((keys[i - 1] as string) > (keys[i] as string)) return false;
  return true;
}

const NEEDS_TSV_ESCAPE = /[\\\t\n\r]/;

/** A TabSeparated field: backslash, tab, newline and carriage return escaped. */
export function tsvField(value: string): string {
  if (!NEEDS_TSV_ESCAPE.test(value)) return value;
  return value.replace(/[\\\t\n\r]/g, (ch) => (ch === '\\' ? '\\\\' : ch === '\t' ? '\\t' : ch === '\n' ? '\\n' : '\\r'));
}

/**
 * tsvField for JSON text: JSON.stringify never leaves a raw tab, newline or
 * carriage return in its output, so only backslashes need escaping, and
 * indexOf finds one much faster than a regular expression scans ~700 bytes.
 */
function jsonField(json: string): string {
  return json.indexOf('\\') === -1 ? json : json.replace(/\\/g, '\\\\');
}

const NEEDS_QUOTED_ESCAPE = /[\\'\t\n\r\0]/;

/** A string element inside a TabSeparated array field: `'...'` with escapes. */
function quotedElement(value: string): string {
  if (!NEEDS_QUOTED_ESCAPE.test(value)) return `'${value}'`;
  const escaped = value.replace(/[\\'\t\n\r\0]/g, (ch) => {
    switch (ch) {
      case '\\': return '\\\\';
      case "'": return "\\'";
      case '\t': return '\\t';
      case '\n': return '\\n';
      case '\r': return '\\r';
      default: return '\\0';
    }
  });
  return `'${escaped}'`;
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
function uint(value: number): number {
  if (!Number.isFinite(value) || value <= 0) return 0;
  return Math.min(Math.trunc(value), Number.MAX_SAFE_INTEGER);
}

/**
 * One span_ingest line, newline-terminated. Tags and annotations are walked
 * once, producing the payload's JSON and the TabSeparated arrays together.
 */
export function spanRow(span: Span, fallbackMicros: number): string {
  let tagsJson = '';
  let tagKeys = '[';
  let tagValues = '[';
  if (span.tags !== undefined) {
    const { keys, values, json } = canonicalTags(span.tags);
    if (keys.length > 0) {
      tagsJson = ',"tags":' + json;
      // No backslash and no single quote in the JSON means no key or value
      // holds a character that needs escaping in a TabSeparated array either
      // (JSON escapes control characters with a backslash): the arrays are
      // then written without per-element checks.
      const plain = json.indexOf('\\') === -1 && json.indexOf("'") === -1;
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i] as string;
        const value = values[key] as string;
        const sep = i === 0 ? '' : ',';
        tagKeys += plain ? sep + "'" + key + "'" : sep + quotedElement(key);
        tagValues += plain ? sep + "'" + value + "'" : sep + quotedElement(value);
      }
    }
  }
  let annotationJson = '';
  let annotationValues = '[';
  if (span.annotations !== undefined && span.annotations.length > 0) {
    const list = sortedAnnotations(span.annotations);
    annotationJson = ',"annotations":' + annotationsJson(list);
    for (let i = 0; i < list.length; i++) annotationValues += (i === 0 ? '' : ',') + quotedElement((list[i] as Annotation).value);
  }
  const service = span.localEndpoint?.serviceName;
  const remote = span.remoteEndpoint?.serviceName;
  return (
    tsvField(span.traceId) + '\t' +
    tsvField(span.id) + '\t' +
    (span.parentId === undefined ? '' : tsvField(span.parentId)) + '\t' +
    (span.kind !== undefined && KINDS.has(span.kind) ? span.kind : '') + '\t' +
    (span.name === undefined ? '' : tsvField(span.name.toLowerCase())) + '\t' +
    (service === undefined ? '' : tsvField(service.toLowerCase())) + '\t' +
    (remote === undefined ? '' : tsvField(remote.toLowerCase())) + '\t' +
    String(uint(spanTime(span, fallbackMicros))) + '\t' +
    String(uint(span.duration ?? 0)) + '\t' +
    tagKeys + ']\t' +
    tagValues + ']\t' +
    annotationValues + ']\t' +
    jsonField(jsonHead(span) + annotationJson + tagsJson + '}') + '\n'
  );
}

/**
 * spans[start, end) as one TabSeparated body, written into `into` (grown when
 * too small; the returned `buffer` is the one to reuse next time). Each row
 * goes into the Buffer as soon as it is built. Measured (storage bench, CPU
 * time): concatenating the batch into one string and converting it at the end
 * was half as fast, the cost being the flattening of a string made of ~60
 * pieces per row. Reusing the Buffer avoids faulting in fresh pages for every
 * batch.
 */
export function encodeRows(
  spans: readonly Span[],
  start: number,
  end: number,
  fallbackMicros: number,
  into?: Buffer,
): { body: Buffer; buffer: Buffer } {
  let buffer = into ?? Buffer.allocUnsafe(Math.max(64 * 1024, (end - start) * 1280));
  let length = 0;
  for (let i = start; i < end; i++) {
    const span = spans[i] as Span;
    if (typeof span?.traceId !== 'string' || typeof span.id !== 'string') {
      throw new StorageError({
        code: 'bad_input',
        retryable: false,
        message: `span ${i} has no traceId or id; spans must be normalised by @tracehouse/model`,
      });
    }
    const row = spanRow(span, fallbackMicros);
    // A UTF-16 code unit never needs more than 3 UTF-8 bytes.
    if (length + row.length * 3 > buffer.length) {
      const bigger = Buffer.allocUnsafe(Math.max(buffer.length * 2, length + row.length * 3));
      buffer.copy(bigger, 0, 0, length);
      buffer = bigger;
    }
    length += buffer.write(row, length);
  }
  return { body: buffer.subarray(0, length), buffer };
}
