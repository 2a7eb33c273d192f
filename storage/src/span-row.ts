import type { Annotation, Endpoint, Span } from '@tracehouse/model';

/**
 * Span → one TabSeparated line of span_ingest (columns in INGEST_COLUMNS
 * order).
 *
 * Hand-built on purpose: this is the writer's hot path. Measured on the dev
 * machine (npm run bench -w storage), building TabSeparated by hand and letting
 * ClickHouse parse it beats JSONEachRow objects through @clickhouse/client: no
 * intermediate object per row, the payload JSON is embedded without a second
 * round of JSON escaping, and ClickHouse parses TSV faster than JSON.
 */

/** The payload: the span as canonical Zipkin v2 JSON (fixed field order, sorted tags). */
export function canonicalJson(span: Span): string {
  // Written field by field in a fixed order, so the payload, and with it the
  // deduplication key, is identical for identical spans whatever order their
  // fields arrived in (JSON v2 or proto3, any producer). Hand-built because it
  // runs for every span: about twice as fast as building a fresh object for
  // JSON.stringify (npm run bench -w storage prints the row-building rate).
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
  if (span.annotations !== undefined && span.annotations.length > 0) out += ',"annotations":' + annotations(span.annotations);
  if (span.tags !== undefined) {
    const keys = Object.keys(span.tags);
    if (keys.length > 0) {
      if (!isSorted(keys)) keys.sort();
      let tags = '';
      for (const key of keys) {
        tags += (tags === '' ? '{' : ',') + JSON.stringify(key) + ':' + JSON.stringify(span.tags[key]);
      }
      out += ',"tags":' + tags + '}';
    }
  }
  return out + '}';
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

function annotations(list: readonly Annotation[]): string {
  let sorted = list;
  for (let i = 1; i < list.length; i++) {
    if (compareAnnotations(list[i - 1] as Annotation, list[i] as Annotation) > 0) {
      // Zipkin orders annotations by timestamp; sorting keeps the payload canonical.
      sorted = [...list].sort(compareAnnotations);
      break;
    }
  }
  let out = '';
  for (const a of sorted) {
    out += (out === '' ? '[' : ',') + '{"timestamp":' + jsonNumber(a.timestamp) + ',"value":' + JSON.stringify(a.value) + '}';
  }
  return out + ']';
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

function tsvArray(values: readonly string[]): string {
  if (values.length === 0) return '[]';
  let out = '[';
  for (let i = 0; i < values.length; i++) {
    if (i > 0) out += ',';
    out += quotedElement(values[i] as string);
  }
  return out + ']';
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

/** One span_ingest line, newline-terminated. */
export function spanRow(span: Span, fallbackMicros: number): string {
  const tagKeys: string[] = [];
  const tagValues: string[] = [];
  if (span.tags !== undefined) {
    for (const key in span.tags) {
      tagKeys.push(key);
      tagValues.push(span.tags[key] as string);
    }
  }
  const annotationValues: string[] = [];
  for (const a of span.annotations ?? []) annotationValues.push(a.value);
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
    tsvArray(tagKeys) + '\t' +
    tsvArray(tagValues) + '\t' +
    tsvArray(annotationValues) + '\t' +
    tsvField(canonicalJson(span)) + '\n'
  );
}
