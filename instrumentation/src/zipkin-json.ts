/**
 * Zipkin JSON v2 serialization of one span: a measured hot path.
 *
 * `JSON.stringify` on the span object was the largest part of the exporter's
 * cost per span in the benchmark (bench/run.ts). Spans are mostly made of
 * strings that need no escaping (hex ids, attribute keys and values) and
 * numbers, so this writes the JSON text directly, escaping through
 * `JSON.stringify` only the strings that need it, and remembering the quoted
 * form of tag keys (a small, repeating set). The output is what
 * `JSON.stringify` would produce for the same span (zipkin-json.test.ts
 * checks it), in Zipkin's field order.
 */
import type { Annotation, Endpoint, Span } from '@tracehouse/model';

/** Strings that can be written between quotes as they are: no quote, backslash, control character or lone surrogate. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what must be escaped
const PLAIN = /^[^"\\\u0000-\u001f\ud800-\udfff]*$/;

function quote(value: string): string {
  return PLAIN.test(value) ? `"${value}"` : JSON.stringify(value);
}

const quotedKeys = new Map<string, string>();
const KEY_CACHE_SIZE = 4096;

/** `"key":`, remembered: tag keys repeat across spans. Bounded: emptied when full. */
function keyPrefix(key: string): string {
  let prefix = quotedKeys.get(key);
  if (prefix === undefined) {
    prefix = `${quote(key)}:`;
    if (quotedKeys.size >= KEY_CACHE_SIZE) quotedKeys.clear();
    quotedKeys.set(key, prefix);
  }
  return prefix;
}

function number(value: number): string {
  // JSON has no NaN/Infinity; JSON.stringify writes null for them.
  return Number.isFinite(value) ? String(value) : 'null';
}

function endpoint(e: Endpoint): string {
  let out = '';
  if (e.serviceName !== undefined) out += `,"serviceName":${quote(e.serviceName)}`;
  if (e.ipv4 !== undefined) out += `,"ipv4":${quote(e.ipv4)}`;
  if (e.ipv6 !== undefined) out += `,"ipv6":${quote(e.ipv6)}`;
  if (e.port !== undefined) out += `,"port":${number(e.port)}`;
  return out === '' ? '{}' : `{${out.slice(1)}}`;
}

/** Local endpoints are shared (frozen) by every span of a resource: serialize each once. */
const endpointCache = new WeakMap<Endpoint, string>();

function cachedEndpoint(e: Endpoint): string {
  if (!Object.isFrozen(e)) return endpoint(e);
  let json = endpointCache.get(e);
  if (json === undefined) {
    json = endpoint(e);
    endpointCache.set(e, json);
  }
  return json;
}

function annotations(list: readonly Annotation[]): string {
  let out = '';
  for (const a of list) out += `,{"timestamp":${number(a.timestamp)},"value":${quote(a.value)}}`;
  return `[${out.slice(1)}]`;
}

function tags(record: Readonly<Record<string, string>>): string {
  let out = '';
  for (const key in record) {
    const value = record[key];
    if (value !== undefined) out += `,${keyPrefix(key)}${quote(value)}`;
  }
  return `{${out.slice(1)}}`;
}

/** The span as a Zipkin JSON v2 object (one element of the list a message carries). */
export function zipkinSpanJson(span: Span): string {
  let out = `{"traceId":${quote(span.traceId)}`;
  if (span.parentId !== undefined) out += `,"parentId":${quote(span.parentId)}`;
  out += `,"id":${quote(span.id)}`;
  if (span.kind !== undefined) out += `,"kind":"${span.kind}"`;
  if (span.name !== undefined) out += `,"name":${quote(span.name)}`;
  if (span.timestamp !== undefined) out += `,"timestamp":${number(span.timestamp)}`;
  if (span.duration !== undefined) out += `,"duration":${number(span.duration)}`;
  if (span.localEndpoint !== undefined) out += `,"localEndpoint":${cachedEndpoint(span.localEndpoint)}`;
  if (span.remoteEndpoint !== undefined) out += `,"remoteEndpoint":${endpoint(span.remoteEndpoint)}`;
  if (span.annotations !== undefined) out += `,"annotations":${annotations(span.annotations)}`;
  if (span.tags !== undefined) out += `,"tags":${tags(span.tags)}`;
  if (span.debug !== undefined) out += `,"debug":${span.debug}`;
  if (span.shared !== undefined) out += `,"shared":${span.shared}`;
  return `${out}}`;
}
