// Proto3 ListOfSpans (shared/reference/zipkin.proto), read and written by
// hand. Why not protobufjs here: decoding is the collector's hot path, and
// protobufjs would first build generic message objects with Uint8Array ids
// and Long timestamps that then need a second pass to become hex strings and
// numbers. Reading the wire format straight into the span shape does both in
// one pass. The tests check both directions against protobufjs.
import { isHex, writeHexBytes } from './hex.js';
import { formatIpv4, formatIpv6, isIpv4Mapped, parseIpv4, parseIpv6 } from './ip.js';
import { normalizeOrThrow } from './normalize-span.js';
import { SpanRejection, rejectSpan, type DecodeResult, type DroppedSpan } from './results.js';
import { setTag } from './set-tag.js';
import type { Endpoint, Span, SpanKind } from './span.js';

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

const KIND_BY_NUMBER: readonly (SpanKind | undefined)[] = [undefined, 'CLIENT', 'SERVER', 'PRODUCER', 'CONSUMER'];
const NUMBER_BY_KIND: Readonly<Record<SpanKind, number>> = { CLIENT: 1, SERVER: 2, PRODUCER: 3, CONSUMER: 4 };

// Node's Buffer has these one-call slicers and writers (what toString() and
// write() dispatch to after checking their arguments) without declaring them
// in its type definitions. A local type, so no declaration leaks to users.
type FastBuffer = Buffer & {
  latin1Slice(start: number, end: number): string;
  hexSlice(start: number, end: number): string;
  utf8Slice(start: number, end: number): string;
  utf8Write(s: string, offset: number, length: number): number;
};

/** An int64 field read unsigned: undefined when it was negative (2^63 and above). */
function unlessNegative(n: number): number | undefined {
  return n >= 2 ** 63 ? undefined : n;
}

/** Structural damage in the bytes (truncation, bad varint, bad wire type). */
class ProtoError extends Error {}

/** How the message of a span dropped for structural damage starts (decode-spans tells those apart). */
export const MALFORMED_SPAN_BYTES = 'span bytes are malformed';

/**
 * Cursor over a region of the body. `end` is the end of the message being
 * read: a nested message narrows it (see `enter`), so no field of it can run
 * past its declared length.
 */
class Reader {
  constructor(
    readonly buf: FastBuffer,
    public pos: number,
    public end: number,
  ) {}

  /** Reads a length prefix and bounds reading to that nested message; returns the outer end for `leave`. */
  enter(): number {
    const outer = this.end;
    this.end = this.lengthDelimited();
    return outer;
  }

  /** Back to the enclosing message once the nested one is read whole. */
  leave(outer: number): void {
    this.end = outer;
  }

  /** A varint as a number; exact up to 2^53, approximate (and so rejected later, or read as negative) above. */
  varint(): number {
    const buf = this.buf;
    let pos = this.pos;
    let result = 0;
    let multiplier = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= this.end) throw new ProtoError(`truncated varint at byte ${pos}`);
      const b = buf[pos++]!;
      result += (b & 0x7f) * multiplier;
      if (b < 0x80) {
        this.pos = pos;
        return result;
      }
      multiplier *= 128;
    }
    throw new ProtoError(`varint longer than 10 bytes at byte ${this.pos}`);
  }

  /** A varint of which only the low 32 bits count, as a signed int32. */
  int32(): number {
    const buf = this.buf;
    let pos = this.pos;
    let result = 0;
    for (let i = 0; i < 10; i++) {
      if (pos >= this.end) throw new ProtoError(`truncated varint at byte ${pos}`);
      const b = buf[pos++]!;
      if (i < 5) result |= (b & 0x7f) << (7 * i);
      if (b < 0x80) {
        this.pos = pos;
        return result | 0;
      }
    }
    throw new ProtoError(`varint longer than 10 bytes at byte ${this.pos}`);
  }

  fixed64(): number {
    if (this.pos + 8 > this.end) throw new ProtoError(`truncated fixed64 at byte ${this.pos}`);
    const lo = this.buf.readUInt32LE(this.pos);
    const hi = this.buf.readUInt32LE(this.pos + 4);
    this.pos += 8;
    return hi * 4294967296 + lo;
  }

  /** Reads a length prefix and returns the end of the region it covers. */
  lengthDelimited(): number {
    const length = this.varint();
    const end = this.pos + length;
    if (end > this.end) throw new ProtoError(`length ${length} at byte ${this.pos} runs past the end of its message`);
    return end;
  }

  /** A string field, decoded from UTF-8. */
  string(): string {
    const end = this.lengthDelimited();
    const start = this.pos;
    this.pos = end;
    return end === start ? '' : this.buf.utf8Slice(start, end);
  }

  /** A string field that is likely to repeat across spans (names, tag keys). */
  label(): string {
    const end = this.lengthDelimited();
    const start = this.pos;
    this.pos = end;
    return end - start <= MAX_CACHED ? cachedString(this.buf, start, end) : this.buf.utf8Slice(start, end);
  }

  skip(wire: number): void {
    switch (wire) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_FIXED64:
        if (this.pos + 8 > this.end) throw new ProtoError(`truncated fixed64 at byte ${this.pos}`);
        this.pos += 8;
        return;
      case WIRE_LEN:
        this.pos = this.lengthDelimited();
        return;
      case WIRE_FIXED32:
        if (this.pos + 4 > this.end) throw new ProtoError(`truncated fixed32 at byte ${this.pos}`);
        this.pos += 4;
        return;
      default:
        throw new ProtoError(`unsupported wire type ${wire} at byte ${this.pos}`);
    }
  }

  /** Reads a field tag: field number * 8 + wire type. */
  tag(): number {
    const tag = this.varint();
    if (tag < 8 || tag > 4294967295) throw new ProtoError(`invalid field tag ${tag} at byte ${this.pos}`);
    return tag;
  }
}

// Span names, service names and tag keys repeat from span to span. Short strings are looked up in a small direct-mapped cache keyed by a
// hash of their bytes, so a repeated one costs a byte comparison instead of a
// new string (and, for tag keys, a new property-name internalisation).
const MAX_CACHED = 48;
const CACHE_SLOTS = 4096;
const stringCache: (string | undefined)[] = new Array<string | undefined>(CACHE_SLOTS).fill(undefined);

function cachedString(buf: FastBuffer, start: number, end: number): string {
  const length = end - start;
  if (length === 0) return '';
  let hash = length;
  for (let i = start; i < end; i++) {
    const b = buf[i]!;
    if (b >= 0x80) return buf.utf8Slice(start, end); // not ASCII: not cached
    hash = (Math.imul(hash, 31) + b) | 0;
  }
  const slot = (hash ^ (hash >>> 15)) & (CACHE_SLOTS - 1);
  const cached = stringCache[slot];
  if (cached !== undefined && cached.length === length) {
    let same = true;
    for (let i = 0; i < length; i++) {
      if (cached.charCodeAt(i) !== buf[start + i]) {
        same = false;
        break;
      }
    }
    if (same) return cached;
  }
  const fresh = buf.latin1Slice(start, end);
  stringCache[slot] = fresh;
  return fresh;
}

// A field's key is its number * 8 + its wire type. Reading switches on the
// whole key, as Zipkin's own proto3 reader does: a known field number that
// arrives with another wire type is an unknown field to proto3 readers, so it
// is skipped and the rest of the span kept.
const fieldKey = (field: number, wire: number): number => field * 8 + wire;
const SPAN_KEY = {
  traceId: fieldKey(1, WIRE_LEN),
  parentId: fieldKey(2, WIRE_LEN),
  id: fieldKey(3, WIRE_LEN),
  kind: fieldKey(4, WIRE_VARINT),
  name: fieldKey(5, WIRE_LEN),
  timestamp: fieldKey(6, WIRE_FIXED64),
  duration: fieldKey(7, WIRE_VARINT),
  localEndpoint: fieldKey(8, WIRE_LEN),
  remoteEndpoint: fieldKey(9, WIRE_LEN),
  annotation: fieldKey(10, WIRE_LEN),
  tag: fieldKey(11, WIRE_LEN),
  debug: fieldKey(12, WIRE_VARINT),
  shared: fieldKey(13, WIRE_VARINT),
} as const;
const ENDPOINT_KEY = { serviceName: fieldKey(1, WIRE_LEN), ipv4: fieldKey(2, WIRE_LEN), ipv6: fieldKey(3, WIRE_LEN), port: fieldKey(4, WIRE_VARINT) } as const;
const ANNOTATION_KEY = { timestamp: fieldKey(1, WIRE_FIXED64), value: fieldKey(2, WIRE_LEN) } as const;
const TAG_ENTRY_KEY = { key: fieldKey(1, WIRE_LEN), value: fieldKey(2, WIRE_LEN) } as const;

function readIdBytes(r: Reader, field: string, reason: 'bad_trace_id' | 'bad_id' | 'bad_parent_id'): string | undefined {
  const end = r.lengthDelimited();
  const start = r.pos;
  r.pos = end;
  const length = end - start;
  if (length === 0 && reason === 'bad_parent_id') return undefined;
  if (length !== 8 && (length !== 16 || reason !== 'bad_trace_id')) {
    rejectSpan(reason, `${field} is ${length} bytes, expected ${reason === 'bad_trace_id' ? '8 or 16' : '8'}`);
  }
  return r.buf.hexSlice(start, end);
}

/** An Endpoint message, from its length prefix on. */
function readEndpoint(r: Reader): Endpoint {
  const outer = r.enter();
  const out: Endpoint = {};
  while (r.pos < r.end) {
    const tag = r.tag();
    if (tag === ENDPOINT_KEY.serviceName) {
      out.serviceName = r.label();
    } else if (tag === ENDPOINT_KEY.ipv4 || tag === ENDPOINT_KEY.ipv6) {
      const ipEnd = r.lengthDelimited();
      const start = r.pos;
      r.pos = ipEnd;
      // Like Zipkin, an address of the wrong length is ignored.
      if (ipEnd - start === 4) out.ipv4 = formatIpv4(r.buf, start);
      else if (ipEnd - start === 16) {
        if (isIpv4Mapped(r.buf, start)) out.ipv4 = formatIpv4(r.buf, start + 12);
        else out.ipv6 = formatIpv6(r.buf, start);
      }
    } else if (tag === ENDPOINT_KEY.port) {
      out.port = r.int32();
    } else {
      r.skip(tag & 7);
    }
  }
  r.leave(outer);
  return out;
}

interface RawSpan {
  traceId?: string;
  parentId?: string;
  id?: string;
  kind?: SpanKind;
  name?: string;
  timestamp?: number;
  duration?: number;
  localEndpoint?: Endpoint;
  remoteEndpoint?: Endpoint;
  annotations?: { timestamp: number; value: string }[];
  tags?: Record<string, string>;
  debug?: boolean;
  shared?: boolean;
}

/** A Span message: `r` is bounded to it (its `end`). */
function readSpan(r: Reader): RawSpan {
  const span: RawSpan = {};
  const end = r.end;
  while (r.pos < end) {
    const tag = r.tag();
    switch (tag) {
      case SPAN_KEY.traceId:
        span.traceId = readIdBytes(r, 'trace_id', 'bad_trace_id');
        break;
      case SPAN_KEY.parentId:
        span.parentId = readIdBytes(r, 'parent_id', 'bad_parent_id');
        break;
      case SPAN_KEY.id:
        span.id = readIdBytes(r, 'id', 'bad_id');
        break;
      case SPAN_KEY.kind: {
        const n = r.varint();
        // proto3 enums are open: a value this schema does not know (a newer Span.Kind) leaves the
        // span without kind, as Zipkin's own proto3 reader does, rather than costing the span.
        span.kind = n < KIND_BY_NUMBER.length ? KIND_BY_NUMBER[n] : undefined;
        break;
      }
      case SPAN_KEY.name:
        span.name = r.label();
        break;
      // int64 on the wire: a negative one (2^63 and above read unsigned) is absent, as Zipkin's
      // Span.Builder clamps it and as the JSON path reads a negative number.
      case SPAN_KEY.timestamp:
        span.timestamp = unlessNegative(r.fixed64());
        break;
      case SPAN_KEY.duration:
        span.duration = unlessNegative(r.varint());
        break;
      case SPAN_KEY.localEndpoint:
        span.localEndpoint = readEndpoint(r);
        break;
      case SPAN_KEY.remoteEndpoint:
        span.remoteEndpoint = readEndpoint(r);
        break;
      case SPAN_KEY.annotation: {
        const outer = r.enter();
        let timestamp = 0;
        let value = '';
        while (r.pos < r.end) {
          const t = r.tag();
          if (t === ANNOTATION_KEY.timestamp) timestamp = unlessNegative(r.fixed64()) ?? 0;
          else if (t === ANNOTATION_KEY.value) value = r.label();
          else r.skip(t & 7);
        }
        r.leave(outer);
        (span.annotations ??= []).push({ timestamp, value });
        break;
      }
      case SPAN_KEY.tag: {
        const outer = r.enter();
        let key = '';
        let value = '';
        while (r.pos < r.end) {
          const t = r.tag();
          if (t === TAG_ENTRY_KEY.key) key = r.label();
          else if (t === TAG_ENTRY_KEY.value) value = r.string();
          else r.skip(t & 7);
        }
        r.leave(outer);
        setTag((span.tags ??= {}), key, value);
        break;
      }
      case SPAN_KEY.debug:
        span.debug = r.varint() !== 0;
        break;
      case SPAN_KEY.shared:
        span.shared = r.varint() !== 0;
        break;
      default:
        r.skip(tag & 7);
    }
  }
  if (r.pos !== end) throw new ProtoError(`span runs ${r.pos - end} bytes past its length`);
  return span;
}

/** Decodes a proto3 ListOfSpans body; spans are validated like JSON ones. */
export function decodeProto3List(buf: Buffer): DecodeResult {
  const spans: Span[] = [];
  const dropped: DroppedSpan[] = [];
  const fast = buf as FastBuffer;
  const r = new Reader(fast, 0, buf.byteLength);
  let index = 0;
  try {
    while (r.pos < r.end) {
      const tag = r.tag();
      const field = tag >>> 3;
      const wire = tag & 7;
      if (field !== 1) {
        r.skip(wire); // unknown fields are allowed by proto3
        continue;
      }
      if (wire !== WIRE_LEN) throw new ProtoError(`ListOfSpans field 1 has wire type ${wire}, expected 2`);
      const end = r.lengthDelimited();
      const start = r.pos;
      try {
        spans.push(normalizeOrThrow(readSpan(new Reader(fast, start, end)), true));
      } catch (e) {
        if (e instanceof SpanRejection) dropped.push({ index, reason: e.reason, message: e.message });
        else if (e instanceof ProtoError) dropped.push({ index, reason: 'bad_field_type', message: `${MALFORMED_SPAN_BYTES}: ${e.message}` });
        else throw e;
      }
      r.pos = end;
      index++;
    }
  } catch (e) {
    if (e instanceof ProtoError) return { ok: false, reason: 'malformed_proto', message: `body is not a valid proto3 ListOfSpans: ${e.message}` };
    throw e;
  }
  return { ok: true, encoding: 'PROTO3', spans, dropped };
}

// ---------------------------------------------------------------------------
// Writing

function varintSize(n: number): number {
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

class Writer {
  buf: FastBuffer;
  pos = 0;

  constructor(initial: number) {
    this.buf = Buffer.allocUnsafe(Math.max(64, initial)) as FastBuffer;
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n)) as FastBuffer;
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  varint(n: number): void {
    this.ensure(10);
    const buf = this.buf;
    while (n >= 128) {
      buf[this.pos++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    buf[this.pos++] = n;
  }

  tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  fixed64(field: number, n: number): void {
    this.tag(field, WIRE_FIXED64);
    this.ensure(8);
    this.buf.writeUInt32LE(n % 4294967296, this.pos);
    this.buf.writeUInt32LE(Math.floor(n / 4294967296), this.pos + 4);
    this.pos += 8;
  }

  string(field: number, s: string): void {
    this.tag(field, WIRE_LEN);
    // Short ASCII strings (nearly all names, keys and values) are copied by
    // a JS loop: cheaper than Buffer.byteLength plus buf.write for each.
    const n = s.length;
    if (n < 128) {
      this.ensure(n + 1);
      const buf = this.buf;
      const start = this.pos + 1;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[start + i] = c;
      }
      if (i === n) {
        buf[this.pos] = n;
        this.pos = start + n;
        return;
      }
    }
    const length = Buffer.byteLength(s, 'utf8');
    this.varint(length);
    this.ensure(length);
    this.pos += this.buf.utf8Write(s, this.pos, length);
  }

  bytes(field: number, b: Uint8Array): void {
    this.tag(field, WIRE_LEN);
    this.varint(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  hexBytes(field: number, hex: string): void {
    this.tag(field, WIRE_LEN);
    this.varint(hex.length / 2);
    this.ensure(hex.length / 2);
    writeHexBytes(hex, this.buf, this.pos);
    this.pos += hex.length / 2;
  }

  /** Starts a nested message, reserving `reserve` bytes for its length. */
  begin(field: number, reserve: number): number {
    this.tag(field, WIRE_LEN);
    this.ensure(reserve);
    const at = this.pos;
    this.pos += reserve;
    return at;
  }

  /** Writes the nested message's length, moving its bytes if the guess was off. */
  end(at: number, reserve: number): void {
    const length = this.pos - at - reserve;
    const size = varintSize(length);
    if (size !== reserve) {
      this.ensure(size - reserve);
      this.buf.copyWithin(at + size, at + reserve, this.pos);
      this.pos += size - reserve;
    }
    const save = this.pos;
    this.pos = at;
    this.varint(length);
    this.pos = save;
  }
}

function checkId(value: unknown, field: string, lengths: readonly number[], index: number): string {
  if (typeof value !== 'string' || !lengths.includes(value.length) || !isHex(value)) {
    throw new TypeError(`encodeProto3: span ${index} ${field} ${JSON.stringify(value)} is not ${lengths.join(' or ')} hex characters`);
  }
  return value;
}

const IPV4_SCRATCH = new Uint8Array(4);

function writeEndpoint(w: Writer, field: number, e: Endpoint, index: number): void {
  const at = w.begin(field, 1);
  if (e.serviceName !== undefined && e.serviceName !== '') w.string(1, e.serviceName);
  if (e.ipv4 !== undefined && e.ipv4 !== '') {
    const b = parseIpv4(e.ipv4, IPV4_SCRATCH);
    if (!b) throw new TypeError(`encodeProto3: span ${index} ipv4 ${JSON.stringify(e.ipv4)} is not an IPv4 address`);
    w.bytes(2, b);
  }
  if (e.ipv6 !== undefined && e.ipv6 !== '') {
    const b = parseIpv6(e.ipv6);
    if (!b) throw new TypeError(`encodeProto3: span ${index} ipv6 ${JSON.stringify(e.ipv6)} is not an IPv6 address`);
    w.bytes(3, b);
  }
  if (e.port !== undefined && e.port !== 0) {
    w.tag(4, WIRE_VARINT);
    // int32: negative numbers take ten bytes, as protobuf encodes them.
    w.varint(e.port >= 0 ? e.port : e.port + 18446744073709551616);
  }
  w.end(at, 1);
}

function writeSpan(w: Writer, s: Span, index: number): void {
  const at = w.begin(1, 2);
  w.hexBytes(1, checkId(s.traceId, 'traceId', [16, 32], index));
  if (s.parentId !== undefined) w.hexBytes(2, checkId(s.parentId, 'parentId', [16], index));
  w.hexBytes(3, checkId(s.id, 'id', [16], index));
  if (s.kind !== undefined) {
    const n = NUMBER_BY_KIND[s.kind];
    if (n === undefined) throw new TypeError(`encodeProto3: span ${index} kind ${JSON.stringify(s.kind)} is not a span kind`);
    w.tag(4, WIRE_VARINT);
    w.varint(n);
  }
  if (s.name !== undefined && s.name !== '') w.string(5, s.name);
  if (s.timestamp !== undefined && s.timestamp !== 0) w.fixed64(6, s.timestamp);
  if (s.duration !== undefined && s.duration !== 0) {
    w.tag(7, WIRE_VARINT);
    w.varint(s.duration);
  }
  if (s.localEndpoint !== undefined) writeEndpoint(w, 8, s.localEndpoint, index);
  if (s.remoteEndpoint !== undefined) writeEndpoint(w, 9, s.remoteEndpoint, index);
  if (s.annotations !== undefined) {
    for (const a of s.annotations) {
      const aAt = w.begin(10, 1);
      w.fixed64(1, a.timestamp);
      w.string(2, a.value);
      w.end(aAt, 1);
    }
  }
  if (s.tags !== undefined) {
    for (const key of Object.keys(s.tags)) {
      const tAt = w.begin(11, 1);
      w.string(1, key);
      w.string(2, s.tags[key]!);
      w.end(tAt, 1);
    }
  }
  if (s.debug === true) {
    w.tag(12, WIRE_VARINT);
    w.varint(1);
  }
  if (s.shared === true) {
    w.tag(13, WIRE_VARINT);
    w.varint(1);
  }
  w.end(at, 2);
}

/**
 * Encodes spans as a proto3 ListOfSpans. Spans should be normalised (see
 * normalizeSpan); ids that are not hex of the right length and endpoints
 * whose addresses do not parse throw a TypeError naming the span.
 */
export function encodeProto3(spans: readonly Span[]): Buffer {
  const w = new Writer(spans.length * 600);
  for (let i = 0; i < spans.length; i++) writeSpan(w, spans[i]!, i);
  // Copy only when most of the buffer would be wasted.
  return w.pos * 2 >= w.buf.length ? w.buf.subarray(0, w.pos) : Buffer.from(w.buf.subarray(0, w.pos));
}
