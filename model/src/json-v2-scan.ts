// Scan step of the JSON v2 fast path: reads a JSON v2 list body item by item
// and, for each span of the common clean kind, records where each of its
// fields' bytes are in the body (`scanned`) without making any object.
// Two consumers build on the same scan, so there is one scanner:
// - json-v2-fast-path.ts makes normalised Span objects from the offsets
//   (what decodeSpans returns);
// - @tracehouse/storage's transcoder writes span_ingest rows straight from
//   the byte ranges, for the collector.
//
// A span is clean when nothing in it is unusual: no escape, no unknown or
// repeated key, no null, no number other than a plain integer below 2^53,
// lower-case hex ids the general path keeps as they are, annotations already
// in order, a value of the right type everywhere... Anything else makes the
// scanner hand the item over as a parsed JSON value (SCAN_ITEM), for the
// general path (normalizeInto), so odd spans get exactly the general path's
// result and reasons. Anything wrong with the list itself (not ASCII,
// malformed, JSON v1, mostly odd items) ends the scan with SCAN_FAIL: the
// caller decodes the whole body the general way.
//
// Use (synchronous, one body at a time, module-level state):
//   if (!scanBegin(body, start)) -> general path
//   for (;;) { const r = scanNext(); SCAN_SPAN: read `scanned`; SCAN_ITEM:
//   read scannedItem / scannedIndex; SCAN_END: done; SCAN_FAIL: general path }
//   scanFinish() (always, in a finally: lets go of the body)
// Results of a body already consumed stay valid only if the caller kept what
// it needed: `scanned` is overwritten by the next scanNext.
import { isAscii } from 'node:buffer';
import { looksLikeJsonV1 } from './json-v1.js';
import type { SpanKind } from './span.js';

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

// Character codes.
const QUOTE = 34;
const BACKSLASH = 92;
const COMMA = 44;
const COLON = 58;
const OPEN_BRACE = 123;
const CLOSE_BRACE = 125;
const OPEN_BRACKET = 91;
const CLOSE_BRACKET = 93;

/** Bytes to compare with the body's, four at a time through `view`. */
interface Bytes {
  length: number;
  bytes: Uint8Array;
  view: DataView;
}

function bytesOf(bytes: Uint8Array): Bytes {
  const copy = new Uint8Array(bytes); // its own ArrayBuffer, at offset 0
  return { length: copy.length, bytes: copy, view: new DataView(copy.buffer) };
}

/** A key's bytes with its closing quote, to compare with the body's. */
function keyBytes(key: string): Bytes {
  return bytesOf(Buffer.from(`${key}"`, 'latin1'));
}
const K_TRACE_ID = keyBytes('traceId');
const K_ID = keyBytes('id');
const K_PARENT_ID = keyBytes('parentId');
const K_KIND = keyBytes('kind');
const K_NAME = keyBytes('name');
const K_TIMESTAMP = keyBytes('timestamp');
const K_DURATION = keyBytes('duration');
const K_LOCAL = keyBytes('localEndpoint');
const K_REMOTE = keyBytes('remoteEndpoint');
const K_ANNOTATIONS = keyBytes('annotations');
const K_TAGS = keyBytes('tags');
const K_DEBUG = keyBytes('debug');
const K_SHARED = keyBytes('shared');
const K_SERVICE_NAME = keyBytes('serviceName');
const K_IPV4 = keyBytes('ipv4');
const K_IPV6 = keyBytes('ipv6');
const K_PORT = keyBytes('port');
const K_VALUE = keyBytes('value');
const V_TRUE = bytesOf(Buffer.from('true'));
const V_FALSE = bytesOf(Buffer.from('false'));
const V_SERVER = keyBytes('SERVER');
const V_CLIENT = keyBytes('CLIENT');
const V_PRODUCER = keyBytes('PRODUCER');
const V_CONSUMER = keyBytes('CONSUMER');

// latin1Slice: Buffer's own method behind toString('latin1'), without its argument checks.
type FastBuffer = Buffer & { latin1Slice(start: number, end: number): string };

// Scanner state: the body being read and, after each read* function, the
// position just after what it read. A read* function returns FAIL (or
// undefined) when the input is not what the fast path handles.
let buf = Buffer.alloc(0) as FastBuffer;
let view = new DataView(buf.buffer, 0, 0);
let pos = 0;
// Number value of the last readInteger.
// (in a typed array: a module variable would box each large number)
const ints = new Float64Array(1);
const FAIL = -1;

// Strings are slices of a text made of the body in chunks: one string of a
// whole 5 MiB body would be a large-object allocation (measured: 0.5-0.8 ms
// for the 400 KB benchmark body, against 0.05 ms in 64 KiB chunks), and a
// span kept alive keeps only its chunk alive, not the body.
const CHUNK = 65536;
let chunk = '';
let chunkStart = 0;
let chunkEnd = 0;

/** The text of bytes start..end of the body (ASCII). */
function str(start: number, end: number): string {
  // Reads move forward, but a span given up on is read again from its start.
  if (end > chunkEnd || start < chunkStart) {
    chunkStart = start;
    chunkEnd = Math.min(buf.length, Math.max(end, start + CHUNK));
    chunk = buf.latin1Slice(chunkStart, chunkEnd);
  }
  return chunk.slice(start - chunkStart, end - chunkStart);
}

function skipSpace(p: number): number {
  const b = buf;
  let c = b[p];
  while (c === 32 || c === 10 || c === 13 || c === 9) c = b[++p];
  return p;
}

/** Position after `:` and the whitespace around it, or FAIL. */
function colon(p: number): number {
  const b = buf;
  // Compact JSON first: no whitespace.
  if (b[p] === COLON && b[p + 1]! > 32) return p + 1;
  p = skipSpace(p);
  if (b[p] !== COLON) return FAIL;
  return skipSpace(p + 1);
}

/** True when the bytes at `p` are `key`'s. */
function matches(p: number, key: Bytes): boolean {
  const n = key.length;
  if (p + n > buf.length) return false;
  // Four bytes at a time (DataView reads are unaligned and inlined).
  const d = view;
  const kv = key.view;
  let i = 0;
  for (; i + 4 <= n; i += 4) if (d.getInt32(p + i, true) !== kv.getInt32(i, true)) return false;
  const b = buf;
  const kb = key.bytes;
  for (; i < n; i++) if (b[p + i] !== kb[i]) return false;
  return true;
}

/**
 * A string value at `p` (its opening quote): returns the index just after
 * its opening quote and sets `pos` after its closing quote; FAIL for
 * anything but a plain string (an escape, a control character, the end).
 */
function readString(p: number): number {
  const b = buf;
  if (b[p] !== QUOTE) return FAIL;
  const start = ++p;
  // Four bytes at a time while none is a quote, a backslash or a control
  // character (bytes are ASCII: each test is exact for "any byte").
  const d = view;
  const last = b.length - 4;
  while (p <= last) {
    const x = d.getInt32(p, true);
    const q = x ^ 0x22222222;
    const e = x ^ 0x5c5c5c5c;
    if ((((q - 0x01010101) & ~q) | ((e - 0x01010101) & ~e) | ((x - 0x20202020) & ~x)) & 0x80808080) break;
    p += 4;
  }
  for (;;) {
    const c = b[p]!;
    if (c === QUOTE) break;
    // undefined (the end) fails `c >= 32` too.
    if (c === BACKSLASH || !(c >= 32)) return FAIL;
    p++;
  }
  pos = p + 1;
  return start;
}

/** True when bytes start..end are dotted-quad IPv4 text that normalizeIp keeps as it is. */
function isIpv4(start: number, end: number): boolean {
  const b = buf;
  if (end - start < 7 || end - start > 15) return false;
  let parts = 0;
  let value = 0;
  let digits = 0;
  for (let p = start; p <= end; p++) {
    const c = p === end ? 46 : b[p]!;
    if (c === 46) {
      if (digits === 0 || ++parts > 4) return false;
      value = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return false; // a leading zero
      value = value * 10 + (c - 48);
      if (value > 255 || ++digits > 3) return false;
    } else {
      return false;
    }
  }
  return parts === 4;
}

/**
 * A non-negative integer of JSON at `p` without fraction or exponent, below
 * 2^53: sets `ints[0]` and returns the position after it, or FAIL. What follows
 * is checked by the caller (a `,` or `}`), which rejects "1.5", "1e3", "01".
 */
function readInteger(p: number): number {
  const b = buf;
  let c = b[p]!;
  if (c === 48) {
    ints[0] = 0;
    return p + 1;
  }
  if (!(c >= 49 && c <= 57)) return FAIL;
  let value = c - 48;
  const start = p;
  c = b[++p]!;
  while (c >= 48 && c <= 57) {
    value = value * 10 + (c - 48);
    c = b[++p]!;
  }
  // Up to 2^53 every step above is exact; beyond, leave it to JSON.parse.
  if (p - start > 16 || value > MAX_SAFE) return FAIL;
  ints[0] = value;
  return p;
}

function readKind(p: number): SpanKind | undefined {
  if (buf[p] !== QUOTE) return undefined;
  let kind: SpanKind;
  if (matches(p + 1, V_SERVER)) kind = 'SERVER';
  else if (matches(p + 1, V_CLIENT)) kind = 'CLIENT';
  else if (matches(p + 1, V_PRODUCER)) kind = 'PRODUCER';
  else if (matches(p + 1, V_CONSUMER)) kind = 'CONSUMER';
  else return undefined;
  pos = p + kind.length + 2;
  return kind;
}

/** `true` or `false` at `p`: 1 or 0, and sets `pos`; FAIL otherwise. */
function readBoolean(p: number): number {
  if (matches(p, V_TRUE)) {
    pos = p + 4;
    return 1;
  }
  if (matches(p, V_FALSE)) {
    pos = p + 5;
    return 0;
  }
  return FAIL;
}

/**
 * After a member's value: skips to the next key's text (after its quote) and
 * returns its position, or returns 0 at the closing brace (with `pos` after
 * it), or FAIL.
 */
function nextKey(p: number): number {
  const b = buf;
  let c = b[p];
  // Compact JSON first: no whitespace.
  if (c === COMMA && b[p + 1] === QUOTE) return p + 2;
  if (c !== COMMA && c !== CLOSE_BRACE) {
    p = skipSpace(p);
    c = b[p];
  }
  if (c === COMMA) {
    p = skipSpace(p + 1);
    if (buf[p] !== QUOTE) return FAIL;
    return p + 1;
  }
  if (c === CLOSE_BRACE) {
    pos = p + 1;
    return 0;
  }
  return FAIL;
}

/** After an object's `{`: the first key's text position, 0 for `{}` (with `pos` after it), or FAIL. */
function firstKey(p: number): number {
  p = skipSpace(p);
  const c = buf[p];
  if (c === QUOTE) return p + 1;
  if (c === CLOSE_BRACE) {
    pos = p + 1;
    return 0;
  }
  return FAIL;
}

/** Where an endpoint's fields are: byte offsets into the body, -1 for an absent field. */
export class ScannedEndpoint {
  /** Whether the span has this endpoint as an object (an empty one included). */
  present = false;
  /** Its keys came in Zipkin's order: serviceName, ipv4, ipv6, port. */
  keysInOrder = false;
  /** serviceName's text is bytes serviceAt..serviceEnd (may be empty: absent after normalisation). */
  serviceAt = -1;
  serviceEnd = -1;
  /** The service name has an upper-case letter (it is lower-cased). */
  serviceUpper = false;
  /** A hash of the service name's bytes, for scannedLowerText. */
  serviceHash = 0;
  ipv4At = -1;
  ipv4End = -1;
  /** ipv4 is dotted-quad IPv4 text that normalisation keeps as it is. */
  ipv4Plain = false;
  ipv6At = -1;
  ipv6End = -1;
  /** The port, -1 when absent; its digits are bytes portAt..portEnd. */
  port = -1;
  portAt = 0;
  portEnd = 0;
}

/**
 * Where the fields of the span of the last SCAN_SPAN are: byte offsets into
 * the body (text without its quotes), valid until the next scanNext.
 */
export class ScannedSpan {
  /** The span's JSON object is bytes spanAt..spanEnd (from its `{` to after its `}`). */
  spanAt = 0;
  spanEnd = 0;
  /** The keys present in the body (SCANNED_FIELD bits), whatever their value. */
  fields = 0;
  /** The keys came in Zipkin's JSON field order (SCANNED_FIELD's). */
  keysInOrder = false;
  /** Where the text of the key "tags" starts (after its quote), when present. */
  tagsKeyAt = 0;
  /** Trace id text: bytes traceIdAt..traceIdEnd (16 or 32 lower-case hex digits). */
  traceIdAt = 0;
  traceIdEnd = 0;
  /**
   * Where the first of a run of spans with this same trace id has its text:
   * equal for spans of one run, so the id is compared once, not read again.
   */
  traceIdRunAt = 0;
  /** Id text: bytes idAt..idAt+16. */
  idAt = 0;
  /** Parent id text: bytes parentIdAt..parentIdAt+16; -1 when absent or equal to the id (Zipkin drops it). */
  parentIdAt = -1;
  kind: SpanKind | undefined = undefined;
  /** Name text: nameAt..nameEnd, -1 when absent; empty text is absent too. */
  nameAt = -1;
  nameEnd = -1;
  /** The name has an upper-case letter (it is lower-cased). */
  nameUpper = false;
  /** A hash of the name's bytes, for scannedLowerText. */
  nameHash = 0;
  /** 0 when absent (or 0); its digits are bytes timestampAt..timestampEnd. */
  timestamp = 0;
  timestampAt = 0;
  timestampEnd = 0;
  duration = 0;
  durationAt = 0;
  durationEnd = 0;
  debug = false;
  /** `shared: true` as sent (normalisation drops it on CLIENT spans). */
  shared = false;
  readonly local = new ScannedEndpoint();
  readonly remote = new ScannedEndpoint();
  /** Annotations, already in Zipkin's order (by timestamp then value, no repeats). */
  annotationCount = 0;
  annotationTimestamps = new Float64Array(8);
  /** Per annotation: value at, value end, timestamp digits at, timestamp digits end. */
  annotationOffsets = new Int32Array(32);
  /** Tags in body order (keys may repeat or be index-like: JSON object semantics apply); -1 when absent, 0 for `{}`. */
  tagCount = -1;
  /** Each tag key's string (repeated keys are interned: the same string each time). */
  tagKeys: string[] = [];
  /** Per tag: key at, key end, value at, value end. */
  tagOffsets = new Int32Array(64);
}

/** The span of the last SCAN_SPAN. */
export const scanned = new ScannedSpan();
/** The item of the last SCAN_ITEM: a parsed JSON value for the general path, and its index in the list. */
export let scannedItem: unknown = undefined;
/** Index in the list of the item of the last scanNext. */
export let scannedIndex = -1;
/** Counts bodies begun, so consumers can tell a new body from the same offsets in the last one. */
export let scanGeneration = 0;

/** Items handed to the general path, for tests to see which path ran. */
export const fastPathStats = { itemsGivenUp: 0 };

export const SCAN_FAIL = -1;
export const SCAN_END = 0;
export const SCAN_SPAN = 1;
export const SCAN_ITEM = 2;

function readLowerText(p: number, e: ScannedSpan | ScannedEndpoint, isName: boolean): number {
  const b = buf;
  if (b[p] !== QUOTE) return FAIL;
  const start = ++p;
  let upper = false;
  let hash = 0;
  for (;;) {
    const c = b[p]!;
    if (c === QUOTE) break;
    if (c === BACKSLASH || !(c >= 32)) return FAIL;
    if (c >= 65 && c <= 90) upper = true;
    hash = (Math.imul(hash, 31) + c) | 0;
    p++;
  }
  pos = p + 1;
  if (isName) {
    const s = e as ScannedSpan;
    s.nameAt = start;
    s.nameEnd = p;
    s.nameUpper = upper;
    s.nameHash = hash;
  } else {
    const s = e as ScannedEndpoint;
    s.serviceAt = start;
    s.serviceEnd = p;
    s.serviceUpper = upper;
    s.serviceHash = hash;
  }
  return start;
}

// Span and service names repeat from span to span: their lower-cased
// strings are kept in a small direct-mapped cache by a hash of their bytes,
// so a repeated name costs a comparison instead of a new string. Cached
// strings are copies: the cache keeps no body alive.
const NAME_SLOTS = 256;
const MAX_CACHED_NAME = 64;
const nameCache: string[] = new Array<string>(NAME_SLOTS).fill('');
const nameCacheBytes: Bytes[] = new Array<Bytes>(NAME_SLOTS).fill(bytesOf(new Uint8Array(0)));

/**
 * The lower-cased text of bytes at..end of the body being scanned, whose
 * hash the scan recorded (ScannedSpan.nameHash, ScannedEndpoint.serviceHash);
 * the same string for the same bytes while it stays in the cache.
 */
export function scannedLowerText(at: number, end: number, upper: boolean, hash: number): string {
  const n = end - at;
  if (n > MAX_CACHED_NAME) {
    const text = str(at, end);
    return upper ? text.toLowerCase() : text;
  }
  const slot = (hash ^ (hash >>> 8)) & (NAME_SLOTS - 1);
  const cached = nameCacheBytes[slot]!;
  if (cached.length === n && matches(at, cached)) return nameCache[slot]!;
  const fresh = buf.latin1Slice(at, end);
  const text = upper ? fresh.toLowerCase() : fresh;
  nameCache[slot] = text;
  nameCacheBytes[slot] = bytesOf(buf.subarray(at, end));
  return text;
}

/**
 * A lower-case hex id of `length` (16 or 32) characters at `p` (its opening
 * quote) that the general path would keep as it is (not all zeros, no zero
 * high half of a 128-bit trace id): returns where its text starts and sets
 * `pos`, or FAIL.
 */
function readId(p: number, length: number): number {
  const b = buf;
  if (b[p] !== QUOTE) return FAIL;
  const start = p + 1;
  const end = start + length;
  if (end >= b.length || b[end] !== QUOTE) return FAIL;
  // Not hex digits: NOT_HEX is non-zero; zeros: every `c ^ 48` is 0.
  let bad = 0;
  let high = 0;
  let low = 0;
  const half = length === 32 ? start + 16 : start;
  for (p = start; p < half; p++) {
    const c = b[p]!;
    bad |= NOT_HEX[c]!;
    high |= c ^ 48;
  }
  for (; p < end; p++) {
    const c = b[p]!;
    bad |= NOT_HEX[c]!;
    low |= c ^ 48;
  }
  if (bad !== 0 || (length === 32 ? high === 0 : low === 0)) return FAIL;
  pos = end + 1;
  return start;
}

/** 0 for lower-case hex digits, 1 for any other byte. */
const NOT_HEX = new Uint8Array(256).fill(1);
for (const c of '0123456789abcdef') NOT_HEX[c.charCodeAt(0)] = 0;

// The trace id of the last span scanned in this body: spans of one trace
// tend to come together, and the same id is compared, not read.
let lastTraceIdAt = -1;
let lastTraceIdLength = 0;
let lastTraceIdRunAt = -1;

/** The trace id at `p`: sets its fields in `scanned` and `pos`; false to give up. */
function readTraceId(p: number, s: ScannedSpan): boolean {
  const length = lastTraceIdLength;
  if (length === 32 && p + 34 <= buf.length && buf[p] === QUOTE && buf[p + 33] === QUOTE) {
    const d = view;
    const a = lastTraceIdAt;
    let i = 1;
    while (i < 33 && d.getInt32(p + i, true) === d.getInt32(a + i - 1, true)) i += 4;
    if (i === 33) {
      pos = p + 34;
      s.traceIdAt = p + 1;
      s.traceIdEnd = p + 33;
      s.traceIdRunAt = lastTraceIdRunAt;
      return true;
    }
  }
  const at = buf[p + 17] === QUOTE ? readId(p, 16) : readId(p, 32);
  if (at < 0) return false;
  s.traceIdAt = at;
  s.traceIdEnd = pos - 1;
  s.traceIdRunAt = at;
  return true;
}


/** An endpoint object at `p` into `e`; false to give up. */
function readEndpoint(p: number, e: ScannedEndpoint): boolean {
  if (buf[p] !== OPEN_BRACE) return false;
  e.present = true;
  e.serviceAt = -1;
  e.ipv4At = -1;
  e.ipv6At = -1;
  e.port = -1;
  // Rank of the last key (serviceName 1, ipv4 2, ipv6 3, port 4).
  let last = 0;
  let inOrder = true;
  let k = firstKey(p + 1);
  while (k > 0) {
    let v: number;
    if (matches(k, K_SERVICE_NAME)) {
      if (e.serviceAt >= 0 || (v = colon(k + 12)) < 0 || readLowerText(v, e, false) < 0) return false;
      if (last > 1) inOrder = false;
      last = 1;
    } else if (matches(k, K_IPV4)) {
      if (e.ipv4At >= 0 || (v = colon(k + 5)) < 0 || (v = readString(v)) < 0) return false;
      e.ipv4At = v;
      e.ipv4End = pos - 1;
      e.ipv4Plain = isIpv4(v, pos - 1);
      if (last > 2) inOrder = false;
      last = 2;
    } else if (matches(k, K_IPV6)) {
      if (e.ipv6At >= 0 || (v = colon(k + 5)) < 0 || (v = readString(v)) < 0) return false;
      e.ipv6At = v;
      e.ipv6End = pos - 1;
      if (last > 3) inOrder = false;
      last = 3;
    } else if (matches(k, K_PORT)) {
      if (e.port >= 0 || (v = colon(k + 5)) < 0) return false;
      const end = readInteger(v);
      if (end < 0 || ints[0]! > 0xffff) return false;
      e.port = ints[0]!;
      e.portAt = v;
      e.portEnd = end;
      pos = end;
      last = 4;
    } else {
      return false;
    }
    k = nextKey(pos);
  }
  e.keysInOrder = inOrder;
  return k === 0;
}

/** Whether bytes aAt..aEnd sort before bytes bAt..bEnd (JavaScript string order, for ASCII). */
function bytesBefore(aAt: number, aEnd: number, bAt: number, bEnd: number): boolean {
  const b = buf;
  const n = Math.min(aEnd - aAt, bEnd - bAt);
  for (let i = 0; i < n; i++) {
    const x = b[aAt + i]!;
    const y = b[bAt + i]!;
    if (x !== y) return x < y;
  }
  return aEnd - aAt < bEnd - bAt;
}

/** Annotations at `p`, which must be in Zipkin's order already, into `s`; false to give up. */
function readAnnotations(p: number, s: ScannedSpan): boolean {
  const b = buf;
  if (b[p] !== OPEN_BRACKET) return false;
  p = skipSpace(p + 1);
  s.annotationCount = 0;
  if (b[p] === CLOSE_BRACKET) {
    pos = p + 1;
    return true;
  }
  let n = 0;
  let lastTimestamp = 0;
  let lastAt = 0;
  let lastEnd = 0;
  for (;;) {
    if (b[p] !== OPEN_BRACE) return false;
    let timestamp = 0;
    let tsAt = 0;
    let tsEnd = 0;
    let valueAt = -1;
    let valueEnd = -1;
    let k = firstKey(p + 1);
    while (k > 0) {
      let v: number;
      if (matches(k, K_TIMESTAMP)) {
        if (timestamp > 0 || (v = colon(k + 10)) < 0 || (tsEnd = readInteger(v)) < 0 || ints[0] === 0) return false;
        timestamp = ints[0]!;
        tsAt = v;
        pos = tsEnd;
      } else if (matches(k, K_VALUE)) {
        if (valueAt >= 0 || (v = colon(k + 6)) < 0 || (v = readString(v)) < 0 || pos - 1 === v) return false;
        valueAt = v;
        valueEnd = pos - 1;
      } else {
        return false;
      }
      k = nextKey(pos);
    }
    if (k < 0 || timestamp === 0 || valueAt < 0) return false;
    // Out of order or repeated: the general path sorts and de-duplicates.
    if (n > 0 && (timestamp < lastTimestamp || (timestamp === lastTimestamp && !bytesBefore(lastAt, lastEnd, valueAt, valueEnd)))) return false;
    if (n === s.annotationTimestamps.length) {
      const t = new Float64Array(n * 2);
      t.set(s.annotationTimestamps);
      s.annotationTimestamps = t;
      const o = new Int32Array(n * 8);
      o.set(s.annotationOffsets);
      s.annotationOffsets = o;
    }
    s.annotationTimestamps[n] = timestamp;
    const o = s.annotationOffsets;
    o[4 * n] = valueAt;
    o[4 * n + 1] = valueEnd;
    o[4 * n + 2] = tsAt;
    o[4 * n + 3] = tsEnd;
    s.annotationCount = ++n;
    lastTimestamp = timestamp;
    lastAt = valueAt;
    lastEnd = valueEnd;
    p = skipSpace(pos);
    const c = b[p];
    if (c === CLOSE_BRACKET) {
      pos = p + 1;
      return true;
    }
    if (c !== COMMA) return false;
    p = skipSpace(p + 1);
  }
}

// Tag keys repeat from span to span. They are looked up in a small
// direct-mapped cache by a hash of their bytes, so a repeated key costs a
// comparison instead of a new string and a new property-name
// internalisation. Cached keys are copies, not slices: the cache keeps no
// body alive.
const KEY_SLOTS = 1024;
const keyCache: string[] = new Array<string>(KEY_SLOTS).fill('');
const keyCacheBytes: Bytes[] = new Array<Bytes>(KEY_SLOTS).fill(bytesOf(new Uint8Array(0)));

// Slot of the last tagKey, -1 for a key too long to cache.
let keySlot = 0;
const MAX_CACHED_KEY = 64;

/** The key's string, or undefined for a key the fast path does not take. */
function tagKey(start: number, end: number, hash: number): string | undefined {
  const slot = (keySlot = (hash ^ (hash >>> 10)) & (KEY_SLOTS - 1));
  const cached = keyCacheBytes[slot]!;
  // Cached bytes end with the key's closing quote.
  if (cached.length === end - start + 1 && matches(start, cached)) return keyCache[slot]!;
  const fresh = buf.latin1Slice(start, end);
  keySlot = end - start <= MAX_CACHED_KEY ? slot : -1;
  // Tags are set with `out[key] = value`, which, unlike JSON.parse, would
  // run into a property of Object.prototype of that name: "__proto__" sets
  // the prototype, a setter or a frozen prototype would act or throw. Such
  // keys are left to the general path, and never cached.
  if (fresh in Object.prototype) return undefined;
  if (keySlot < 0) return fresh;
  keyCache[slot] = fresh;
  keyCacheBytes[slot] = bytesOf(buf.subarray(start, end + 1));
  return fresh;
}

// The keys of the last tags read, in order, with their closing quote: spans
// of one message tend to have the same tags in the same order, so the key
// at the same place is tried first, costing one comparison.
const lastKeys: string[] = [];
const MAX_PREDICTED_KEYS = 64;
const lastKeyBytes: Bytes[] = [];

/** Tags at `p` into `s`; false to give up. */
function readTags(p: number, s: ScannedSpan): boolean {
  const b = buf;
  if (b[p] !== OPEN_BRACE) return false;
  let k = firstKey(p + 1);
  let n = 0;
  const keys = lastKeys;
  const keyBytes = lastKeyBytes;
  const out = s.tagKeys;
  while (k > 0) {
    let key: string;
    let e: number;
    const guess = n < keyBytes.length ? keyBytes[n]! : undefined;
    if (guess !== undefined && matches(k, guess)) {
      key = keys[n]!;
      e = k + guess.length - 1;
    } else {
      // The key: its end and a hash of it in one pass.
      e = k;
      let hash = 0;
      for (;;) {
        const c = b[e]!;
        if (c === QUOTE) break;
        if (c === BACKSLASH || !(c >= 32)) return false;
        hash = (Math.imul(hash, 31) + c) | 0;
        e++;
      }
      const known = tagKey(k, e, hash);
      if (known === undefined) return false;
      key = known;
      // Remembered for the next span, unless long or far down a long list
      // (and without leaving holes).
      if (keySlot >= 0 && n < MAX_PREDICTED_KEYS && n <= keys.length) {
        keys[n] = key;
        keyBytes[n] = keyCacheBytes[keySlot]!;
      }
    }
    let v = colon(e + 1);
    if (v < 0 || (v = readString(v)) < 0) return false;
    if (4 * n === s.tagOffsets.length) {
      const o = new Int32Array(8 * n);
      o.set(s.tagOffsets);
      s.tagOffsets = o;
    }
    const o = s.tagOffsets;
    o[4 * n] = k;
    o[4 * n + 1] = e;
    o[4 * n + 2] = v;
    o[4 * n + 3] = pos - 1;
    out[n++] = key;
    k = nextKey(pos);
  }
  s.tagCount = n;
  return k === 0;
}

/**
 * Bits of ScannedSpan.fields: the span's keys present in the body. Their
 * order is Zipkin's JSON field order (a key with a greater bit comes later).
 */
export const SCANNED_FIELD = {
  traceId: 1,
  parentId: 2,
  id: 4,
  kind: 8,
  name: 16,
  timestamp: 32,
  duration: 64,
  localEndpoint: 128,
  remoteEndpoint: 256,
  annotations: 512,
  tags: 1024,
  debug: 2048,
  shared: 4096,
} as const;
const TRACE_ID = SCANNED_FIELD.traceId;
const PARENT_ID = SCANNED_FIELD.parentId;
const ID = SCANNED_FIELD.id;
const KIND = SCANNED_FIELD.kind;
const NAME = SCANNED_FIELD.name;
const TIMESTAMP = SCANNED_FIELD.timestamp;
const DURATION = SCANNED_FIELD.duration;
const LOCAL = SCANNED_FIELD.localEndpoint;
const REMOTE = SCANNED_FIELD.remoteEndpoint;
const ANNOTATIONS = SCANNED_FIELD.annotations;
const TAGS = SCANNED_FIELD.tags;
const DEBUG = SCANNED_FIELD.debug;
const SHARED = SCANNED_FIELD.shared;

/**
 * The span object at `p` (its `{`) into `scanned`, with `pos` after its `}`;
 * false when the fast path does not take it.
 */
function scanSpan(p: number): boolean {
  const b = buf;
  const s = scanned;
  let seen = 0;
  let inOrder = true;
  s.parentIdAt = -1;
  s.kind = undefined;
  s.nameAt = -1;
  s.timestamp = 0;
  s.duration = 0;
  s.debug = false;
  s.shared = false;
  s.local.present = false;
  s.remote.present = false;
  s.annotationCount = -1;
  s.tagCount = -1;
  let k = firstKey(p + 1);
  while (k > 0) {
    let bit: number;
    let v: number;
    switch (b[k]) {
      case 116: // t
        if (matches(k, K_TRACE_ID)) {
          bit = TRACE_ID;
          if ((v = colon(k + 8)) < 0 || !readTraceId(v, s)) return false;
        } else if (matches(k, K_TIMESTAMP)) {
          bit = TIMESTAMP;
          if ((v = colon(k + 10)) < 0 || (pos = readInteger(v)) < 0) return false;
          s.timestamp = ints[0]!;
          s.timestampAt = v;
          s.timestampEnd = pos;
        } else if (matches(k, K_TAGS)) {
          bit = TAGS;
          s.tagsKeyAt = k;
          if ((v = colon(k + 5)) < 0 || !readTags(v, s)) return false;
        } else {
          return false;
        }
        break;
      case 105: // i
        if (!matches(k, K_ID)) return false;
        bit = ID;
        if ((v = colon(k + 3)) < 0 || (s.idAt = readId(v, 16)) < 0) return false;
        break;
      case 112: // p
        if (!matches(k, K_PARENT_ID)) return false;
        bit = PARENT_ID;
        if ((v = colon(k + 9)) < 0 || (s.parentIdAt = readId(v, 16)) < 0) return false;
        break;
      case 107: // k
        if (!matches(k, K_KIND)) return false;
        bit = KIND;
        if ((v = colon(k + 5)) < 0 || (s.kind = readKind(v)) === undefined) return false;
        break;
      case 110: // n
        if (!matches(k, K_NAME)) return false;
        bit = NAME;
        if ((v = colon(k + 5)) < 0 || readLowerText(v, s, true) < 0) return false;
        break;
      case 100: // d
        if (matches(k, K_DURATION)) {
          bit = DURATION;
          if ((v = colon(k + 9)) < 0 || (pos = readInteger(v)) < 0) return false;
          s.duration = ints[0]!;
          s.durationAt = v;
          s.durationEnd = pos;
        } else if (matches(k, K_DEBUG)) {
          bit = DEBUG;
          if ((v = colon(k + 6)) < 0 || (v = readBoolean(v)) < 0) return false;
          s.debug = v === 1;
        } else {
          return false;
        }
        break;
      case 108: // l
        if (!matches(k, K_LOCAL)) return false;
        bit = LOCAL;
        if ((v = colon(k + 14)) < 0 || !readEndpoint(v, s.local)) return false;
        break;
      case 114: // r
        if (!matches(k, K_REMOTE)) return false;
        bit = REMOTE;
        if ((v = colon(k + 15)) < 0 || !readEndpoint(v, s.remote)) return false;
        break;
      case 97: // a
        if (!matches(k, K_ANNOTATIONS)) return false;
        bit = ANNOTATIONS;
        if ((v = colon(k + 12)) < 0 || !readAnnotations(v, s)) return false;
        break;
      case 115: // s
        if (!matches(k, K_SHARED)) return false;
        bit = SHARED;
        if ((v = colon(k + 7)) < 0 || (v = readBoolean(v)) < 0) return false;
        s.shared = v === 1;
        break;
      default:
        return false;
    }
    if ((seen & bit) !== 0) return false;
    // Every bit seen so far is smaller: the keys came in Zipkin's order.
    if (bit < seen) inOrder = false;
    seen |= bit;
    k = nextKey(pos);
  }
  if (k < 0 || (seen & (TRACE_ID | ID)) !== (TRACE_ID | ID)) return false;
  // Zipkin drops a parent id equal to the span's own id.
  if (s.parentIdAt >= 0) {
    const d = view;
    const a = s.parentIdAt;
    const i = s.idAt;
    if (d.getInt32(a) === d.getInt32(i) && d.getInt32(a + 4) === d.getInt32(i + 4) && d.getInt32(a + 8) === d.getInt32(i + 8) && d.getInt32(a + 12) === d.getInt32(i + 12)) {
      s.parentIdAt = -1;
    }
  }
  s.spanAt = p;
  s.spanEnd = pos;
  s.fields = seen;
  s.keysInOrder = inOrder;
  lastTraceIdAt = s.traceIdAt;
  lastTraceIdLength = s.traceIdEnd - s.traceIdAt;
  lastTraceIdRunAt = s.traceIdRunAt;
  return true;
}

/**
 * End of the JSON value at `p` (after it), found by tracking strings and
 * brackets only: the caller has JSON.parse check the value. FAIL at the end
 * of the body.
 */
function valueEnd(p: number): number {
  const b = buf;
  const length = b.length;
  let depth = 0;
  for (; p < length; p++) {
    const c = b[p];
    if (c === QUOTE) {
      for (p++; p < length; p++) {
        const d = b[p];
        if (d === QUOTE) break;
        if (d === BACKSLASH) p++;
      }
      if (p >= length) return FAIL;
      if (depth === 0) return p + 1;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth++;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      if (depth === 0) return p;
      if (--depth === 0) return p + 1;
    } else if (depth === 0 && (c === COMMA || c === 32 || c === 10 || c === 13 || c === 9)) {
      return p;
    }
  }
  return depth === 0 ? p : FAIL;
}

// List state: where the next item starts (after `[` or `,` and whitespace),
// and counts for the decision to give the whole body up.
let listAt = 0;
let listDone = false;
let sawObject = false;
let fallbacks = 0;
let fastSpans = 0;

/**
 * Starts scanning a JSON v2 list body whose JSON text starts at `start` (its
 * `[`). False when the body is not one the scanner takes (not ASCII, no `[`):
 * use the general path. Call scanFinish when done, even after false.
 */
export function scanBegin(body: Buffer, start: number): boolean {
  scanGeneration++;
  // From `start`: a byte order mark before it is not part of the JSON text.
  if (body[start] !== OPEN_BRACKET || !isAscii(start === 0 ? body : body.subarray(start))) return false;
  buf = body as FastBuffer;
  view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  chunkEnd = 0;
  lastTraceIdLength = 0;
  lastTraceIdAt = -1;
  scannedIndex = -1;
  sawObject = false;
  fallbacks = 0;
  fastSpans = 0;
  listAt = skipSpace(start + 1);
  listDone = buf[listAt] === CLOSE_BRACKET;
  if (listDone) listAt++;
  return true;
}

/** Lets go of the body and its text (nothing of a body is kept alive by the scanner). */
export function scanFinish(): void {
  buf = EMPTY;
  view = EMPTY_VIEW;
  chunk = '';
  scannedItem = undefined;
}
const EMPTY = Buffer.alloc(0) as FastBuffer;
const EMPTY_VIEW = new DataView(new ArrayBuffer(0));

/**
 * The next item of the list: SCAN_SPAN (a clean span, in `scanned`),
 * SCAN_ITEM (any other item, parsed, in `scannedItem`), SCAN_END (the list
 * ended well, nothing after it) or SCAN_FAIL (decode the whole body the
 * general way). `scannedIndex` is the item's index in the list.
 */
export function scanNext(): number {
  const b = buf;
  let p = listAt;
  if (listDone) return skipSpace(p) === b.length ? SCAN_END : SCAN_FAIL;
  scannedIndex++;
  let result: number;
  if (b[p] === OPEN_BRACE && scanSpan(p)) {
    fastSpans++;
    p = pos;
    sawObject = true;
    result = SCAN_SPAN;
  } else {
    // The general path for this item, as decodeSpans would run it.
    fastPathStats.itemsGivenUp++;
    const end = valueEnd(p);
    if (end < 0) return SCAN_FAIL;
    // A body of mostly odd items: one JSON.parse of all is cheaper.
    if (++fallbacks > 16 && fallbacks > fastSpans) return SCAN_FAIL;
    let item: unknown;
    try {
      item = JSON.parse(str(p, end));
    } catch {
      return SCAN_FAIL;
    }
    if (!sawObject && typeof item === 'object' && item !== null && !Array.isArray(item)) {
      sawObject = true;
      // The first object decides v1 or v2 for the whole list.
      if (looksLikeJsonV1([item])) return SCAN_FAIL;
    }
    scannedItem = item;
    p = end;
    result = SCAN_ITEM;
  }
  p = skipSpace(p);
  const c = b[p];
  if (c === COMMA) {
    listAt = skipSpace(p + 1);
  } else if (c === CLOSE_BRACKET) {
    listAt = p + 1;
    listDone = true;
  } else {
    return SCAN_FAIL;
  }
  return result;
}

/** The text of bytes start..end of the body being scanned (ASCII); for the materialise step. */
export function scannedText(start: number, end: number): string {
  return str(start, end);
}
