// Fast path of JSON v2 decoding: reads the common case (an ASCII body of
// spans with the usual fields, no escapes) straight from the body's bytes
// into normalised spans, instead of JSON.parse building generic objects that
// normalizeSpan then walks and copies.
//
// Two steps: json-v2-scan.ts finds where each field of a clean span is in
// the body (the same scan feeds @tracehouse/storage's row transcoder); this
// file makes the span objects from those offsets (the materialise step).
// The split cost nothing measurable: `npm run bench -w model`, three runs
// alternating with a build of the commit before it (2026-11-29, shared
// machine), decode+validate at 1.41/1.45/1.50x JSON.parse alone against
// 1.38/1.37/1.37x before (412k/391k/412k against 417k/415k/379k spans per
// CPU-second), with ids checked through a table and strings scanned four
// bytes at a time paying for the offsets written and read again. Interning
// span and service names measured no faster in a same-process A/B (it keeps
// them from pinning a 64 KiB chunk of text); reusing a tag value equal to the
// previous span's at the same place measured 4-6% slower, and was dropped.
//
// Why hand-written: `npm run bench -w model` (realistic spans, 824 B/span,
// three runs) measured JSON v2 decode+validate at 1.98x (1.84-2.01x) the
// speed of the general path in the same runs, 1.70x the speed of JSON.parse
// alone where the general path manages 0.80-0.85x. The gain comes from
// reading bytes instead of making a 400 KB string (0.5-0.8 ms per body),
// not making generic objects and key strings that the validator then walks
// and copies, and making each span's objects at their final shape.
//
// It is exact, not complete: anything unusual in a span (an escape, an
// unknown or repeated key, null, a number that is not a plain integer,
// upper-case or short ids, unsorted annotations, a value of the wrong type...)
// makes the scan hand that span to JSON.parse + normalizeOrThrow, the general
// path, so odd spans get exactly the general path's result and reasons.
// Anything wrong with the list itself (not ASCII, malformed, not v2) returns
// undefined and the caller decodes the whole body the general way.
import { normalizeIp, type ParsedIp } from './ip.js';
import { normalizeInto } from './normalize-span.js';
import type { DecodeResult, DroppedSpan } from './results.js';
import type { Annotation, Endpoint, Span } from './span.js';
import {
  SCAN_END,
  SCAN_ITEM,
  SCAN_SPAN,
  scanBegin,
  scanFinish,
  scanGeneration,
  scanNext,
  scanned,
  scannedIndex,
  scannedItem,
  scannedLowerText,
  scannedText as str,
  type ScannedEndpoint,
} from './json-v2-scan.js';

export { fastPathStats } from './json-v2-scan.js';

// The trace id string of the last span made, and the run of equal ids it
// belongs to (see ScannedSpan.traceIdRunAt), in the body of scan `lastGeneration`.
let lastTraceId = '';
let lastTraceIdRunAt = -1;
let lastGeneration = -1;

/** A name's lower-cased text; undefined when absent or empty. */
function textOf(at: number, end: number, upper: boolean, hash: number): string | undefined {
  return at < 0 || at === end ? undefined : scannedLowerText(at, end, upper, hash);
}

/** The scanned endpoint, as endpointOf in normalize-span.ts makes it; null for "absent". */
function endpointOf(e: ScannedEndpoint): Endpoint | null {
  if (!e.present) return null;
  const serviceName = textOf(e.serviceAt, e.serviceEnd, e.serviceUpper, e.serviceHash);
  const port = e.port;
  // The usual endpoint in one allocation.
  if (serviceName !== undefined && e.ipv4At >= 0 && e.ipv4Plain && e.ipv6At < 0 && port > 0) {
    return { serviceName, ipv4: str(e.ipv4At, e.ipv4End), port };
  }
  // Otherwise the same steps and property order as endpointOf.
  const out: Endpoint = {};
  let empty = true;
  if (serviceName !== undefined) {
    out.serviceName = serviceName;
    empty = false;
  }
  for (let i = 0; i < 2; i++) {
    const at = i === 0 ? e.ipv4At : e.ipv6At;
    const end = i === 0 ? e.ipv4End : e.ipv6End;
    if (at < 0 || at === end) continue;
    const ip = str(at, end);
    const parsed = i === 0 && e.ipv4Plain ? IS_IPV4 : normalizeIp(ip);
    if (parsed === undefined) continue;
    if (parsed.ipv6 !== undefined) out.ipv6 = parsed.ipv6;
    else out.ipv4 = parsed.ipv4 ?? ip;
    empty = false;
  }
  if (port > 0) {
    out.port = port;
    empty = false;
  }
  return empty ? null : out;
}
const IS_IPV4: ParsedIp = {};

// A plain object ({}, same prototype) with room for more properties in the
// object itself: V8 sizes objects of a constructor from the ones it made.
const TagsObject = function TagsObject() {} as unknown as new () => Record<string, string>;
TagsObject.prototype = Object.prototype;

/**
 * The span of the last SCAN_SPAN (`scanned`), normalised as normalizeOrThrow
 * does it: the materialise step.
 */
export function materializeScannedSpan(): Span {
  const s = scanned;
  let traceId: string;
  if (s.traceIdRunAt === lastTraceIdRunAt && lastGeneration === scanGeneration) {
    traceId = lastTraceId;
  } else {
    traceId = lastTraceId = str(s.traceIdAt, s.traceIdEnd);
    lastTraceIdRunAt = s.traceIdRunAt;
    lastGeneration = scanGeneration;
  }
  const id = str(s.idAt, s.idAt + 16);
  const parentId = s.parentIdAt >= 0 ? str(s.parentIdAt, s.parentIdAt + 16) : undefined;
  const kind = s.kind;
  const name = textOf(s.nameAt, s.nameEnd, s.nameUpper, s.nameHash);
  const timestamp = s.timestamp;
  const duration = s.duration;
  const localEndpoint = endpointOf(s.local);
  const remoteEndpoint = endpointOf(s.remote);

  let annotations: Annotation[] | null = null;
  const na = s.annotationCount;
  if (na > 0) {
    const t = s.annotationTimestamps;
    const o = s.annotationOffsets;
    // Lists are made at their size when short (usually 1 or 2 items).
    const first: Annotation = { timestamp: t[0]!, value: str(o[0]!, o[1]!) };
    if (na === 1) annotations = [first];
    else {
      annotations = [first, { timestamp: t[1]!, value: str(o[4]!, o[5]!) }];
      for (let i = 2; i < na; i++) annotations.push({ timestamp: t[i]!, value: str(o[4 * i]!, o[4 * i + 1]!) });
    }
  }

  let tags: Record<string, string> | null = null;
  const nt = s.tagCount;
  if (nt > 0) {
    tags = new TagsObject();
    const keys = s.tagKeys;
    const o = s.tagOffsets;
    for (let i = 0; i < nt; i++) tags[keys[i]!] = str(o[4 * i + 2]!, o[4 * i + 3]!);
  }
  const debug = s.debug;
  const shared = s.shared;

  // The usual span in one allocation (a literal with all its fields).
  if (
    kind !== undefined &&
    name !== undefined &&
    timestamp > 0 &&
    duration > 0 &&
    localEndpoint !== null &&
    remoteEndpoint !== null &&
    annotations !== null &&
    tags !== null &&
    !debug &&
    !shared
  ) {
    return parentId === undefined
      ? { traceId, id, kind, name, timestamp, duration, localEndpoint, remoteEndpoint, annotations, tags }
      : { traceId, parentId, id, kind, name, timestamp, duration, localEndpoint, remoteEndpoint, annotations, tags };
  }
  // Same property order as normalizeOrThrow (Zipkin's JSON field order).
  const span: Span = parentId === undefined ? { traceId, id } : { traceId, parentId, id };
  if (kind !== undefined) span.kind = kind;
  if (name !== undefined) span.name = name;
  if (timestamp > 0) span.timestamp = timestamp;
  if (duration > 0) span.duration = duration;
  if (localEndpoint !== null) span.localEndpoint = localEndpoint;
  if (remoteEndpoint !== null) span.remoteEndpoint = remoteEndpoint;
  if (annotations !== null) span.annotations = annotations;
  if (tags !== null) span.tags = tags;
  if (debug) span.debug = true;
  // Zipkin unsets `shared` on client spans: only the server side shares an id.
  if (shared && kind !== 'CLIENT') span.shared = true;
  return span;
}

/**
 * The item of the last scanNext, as decodeSpans would have it: the span of a
 * SCAN_SPAN, or the general path's span or drop of a SCAN_ITEM.
 */
export function materializeScanned(kind: number, spans: Span[], dropped: DroppedSpan[]): void {
  if (kind === SCAN_SPAN) spans.push(materializeScannedSpan());
  else normalizeInto(scannedItem, scannedIndex, spans, dropped);
}

/**
 * Decodes a JSON v2 list body whose JSON text starts at `start` (a `[`), or
 * returns undefined to have the caller use the general path.
 */
export function decodeJsonV2Fast(body: Buffer, start: number): DecodeResult | undefined {
  try {
    if (!scanBegin(body, start)) return undefined;
    const spans: Span[] = [];
    const dropped: DroppedSpan[] = [];
    for (;;) {
      const r = scanNext();
      if (r === SCAN_SPAN || r === SCAN_ITEM) materializeScanned(r, spans, dropped);
      else if (r === SCAN_END) return { ok: true, encoding: 'JSON_V2', spans, dropped };
      else return undefined;
    }
  } finally {
    // Keep neither the body nor its text alive.
    scanFinish();
  }
}
