/**
 * JSON v2 body → span_ingest rows without Span objects: what the collector
 * does with a message, `encodeSpans(decodeSpans(body, options).spans)`, with
 * the same rows, count and drops, but for the common clean spans the row is
 * written straight from the body's bytes.
 *
 * Built on the model's JSON v2 scan (`scanBegin`/`scanNext`: where each field
 * of a clean span is in the body). A clean span's row is its fields' byte
 * ranges copied in row order, with the canonical payload's rules applied to
 * them: names lower-cased, tags sorted by key (byte order is JavaScript's
 * string order for ASCII), `'` escaped inside array elements. Clean text
 * needs no other escaping: the scan only takes ASCII strings without
 * escapes or control characters, so no backslash, tab or newline. When the
 * span's text is already the payload's up to its tags (compact JSON in
 * Zipkin's field order, as Zipkin's and tracehouse's encoders write it), that
 * text is copied in one piece.
 *
 * Figures (`npm run bench -w storage -- --js-only`, and the collector bench's
 * "body -> rows" line): see collector/README.md.
 *
 * Exact by construction for everything else: a span the scan takes but this
 * file does not write itself (index-like or repeated tag keys, an IPv6 or
 * unusual IPv4 address) is materialised by the model and written by
 * span-row.ts; an item the scan hands over goes through the model's general
 * path, then span-row.ts; a body the scan gives up on (or not a JSON v2 list:
 * proto3, JSON v1...) goes through the rest of decodeSpans (decodeReadBody) and
 * encodeSpans. json-v2-transcoder.test.ts compares the results.
 */
import {
  SCAN_END,
  SCAN_ITEM,
  SCAN_SPAN,
  SCANNED_FIELD as F,
  decodeReadBody,
  materializeScanned,
  readBody,
  scanBegin,
  scanFinish,
  scanNext,
  scanned,
  type DecodeOptions,
  type DecodeResult,
  type DroppedSpan,
  type Encoding,
  type ScannedEndpoint,
  type Span,
} from '@tracehouse/model';
import { RowWriter } from './row-writer.js';
import { encodeSpans, uint, writeRow, type EncodedSpans } from './span-row.js';

export type TranscodeResult =
  | { ok: true; encoding: Encoding; encoded: EncodedSpans; dropped: DroppedSpan[] }
  | Extract<DecodeResult, { ok: false }>;

const TAB = 0x09;
const NEWLINE = 0x0a;
const COMMA = 0x2c;
const QUOTE = 0x22;
const COLON = 0x3a;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const ZERO = 0x30;
const NINE = 0x39;

/**
 * Spans whose rows were written from their bytes, and of those, rows whose
 * payload up to its tags is a copy of the body's text: for tests to see
 * which path ran.
 */
export const transcoderStats = { rowsFromBytes: 0, verbatimPayloads: 0 };

// No buffer of its own: it writes into the slab (allocated on first use, so
// importing storage for reads allocates nothing).
const scratch = new RowWriter(0);
/** Spans and drops of items written the general way, reused. */
const odd: Span[] = [];

/**
 * The rows of span_ingest for a message body, as
 * `encodeSpans(decodeSpans(body, options).spans, fallbackMicros)` makes them,
 * with decodeSpans' drops and failures. Never throws for any body.
 */
export function transcodeSpans(body: Uint8Array, options: DecodeOptions = {}, fallbackMicros: number = Date.now() * 1000): TranscodeResult {
  const read = readBody(body, options);
  if (!read.ok) return read;
  const { bytes, start } = read;
  const fast = transcodeList(bytes, start, fallbackMicros);
  if (fast !== undefined) return fast;
  // Not a JSON v2 list the scan takes (proto3, JSON v1, not ASCII...): the
  // general path on the body already read, which also makes the failures.
  const decoded = decodeReadBody(bytes, start, false);
  if (!decoded.ok) return decoded;
  return { ok: true, encoding: decoded.encoding, encoded: encodeSpans(decoded.spans, fallbackMicros), dropped: decoded.dropped };
}

// Rows are written into slabs shared by consecutive messages, and a
// message's rows are a view of its slab: no copy of the rows and no
// allocation per message (a copy into an exact-size Buffer per message was
// ~4% of the collector's CPU in a profile). A slab lives as long as the
// rows of any of its messages (those wait for their batch's insert). A slab
// that had to be bigger (one huge message) serves that message only.
const SLAB_BYTES = 4 * 1024 * 1024;
let slab: Buffer = Buffer.alloc(0);
let slabUsed = 0;

function transcodeList(body: Buffer, start: number, fallbackMicros: number): TranscodeResult | undefined {
  const w = scratch;
  // Rows take ~1.6 times the JSON's bytes: room for twice as many, so that
  // the writer rarely grows the buffer (which copies the slab).
  const room = 2 * (body.length - start) + 4096;
  const dropped: DroppedSpan[] = [];
  let count = 0;
  let fromBytes = 0;
  let begin: number;
  try {
    if (!scanBegin(body, start)) return undefined;
    if (slab.length - slabUsed < room) {
      slab = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, room));
      slabUsed = 0;
    }
    w.buffer = slab;
    w.length = slabUsed;
    // Where this message's rows start (w.reserve keeps offsets when it grows the buffer).
    begin = slabUsed;
    bodyView = new DataView(body.buffer, body.byteOffset, body.byteLength);
    for (;;) {
      const r = scanNext();
      if (r === SCAN_SPAN && writeScannedRow(w, body, fallbackMicros)) {
        count++;
        fromBytes++;
      } else if (r === SCAN_SPAN || r === SCAN_ITEM) {
        // The model's span (or its general path's) and span-row.ts' row.
        odd.length = 0;
        materializeScanned(r, odd, dropped);
        for (let i = 0; i < odd.length; i++) writeRow(w, odd[i]!, fallbackMicros);
        count += odd.length;
        odd.length = 0;
      } else if (r === SCAN_END) {
        break;
      } else {
        return undefined;
      }
    }
  } catch {
    // Out of memory for one huge body, or a bug: the general path decides
    // (transcodeSpans never throws), and the slab is left as it was.
    w.buffer = slab;
    return undefined;
  } finally {
    scanFinish();
    bodyView = EMPTY_VIEW;
  }
  transcoderStats.rowsFromBytes += fromBytes;
  // The buffer, grown or not, is the slab of the next message, unless it is
  // bigger than a slab: then it is released with this message's rows.
  // The rows end where writing stopped, whichever slab they are in.
  const end = w.length;
  slab = w.buffer;
  slabUsed = slab.length > SLAB_BYTES ? slab.length : end;
  return { ok: true, encoding: 'JSON_V2', encoded: { rows: slab.subarray(begin, end), count }, dropped };
}

const EMPTY_VIEW: DataView = new DataView(new ArrayBuffer(0));

/** Tag order: indices of `scanned`'s tags sorted by key. */
let order = new Int32Array(64);

/**
 * Sorts the scanned tags by key into `order`; false when a key is repeated
 * or may be an array index (JSON.stringify's order would differ): such
 * spans are written the general way.
 */
function sortTags(b: Buffer): boolean {
  const n = scanned.tagCount;
  const o = scanned.tagOffsets;
  if (order.length < n) order = new Int32Array(2 * n);
  if (n > INSERTION_SORT_MAX_TAGS) {
    for (let i = 0; i < n; i++) {
      if (keyMayBeIndex(b, o, i)) return false;
      order[i] = i;
    }
    const sorted = order.subarray(0, n).sort((x, y) => compareKeys(b, o, x, y));
    for (let i = 1; i < n; i++) if (compareKeys(b, o, sorted[i - 1]!, sorted[i]!) === 0) return false;
    return true;
  }
  for (let i = 0; i < n; i++) {
    if (keyMayBeIndex(b, o, i)) return false;
    // Insertion sort (a span has few tags, usually nearly in order).
    let j = i;
    while (j > 0) {
      const c = compareKeys(b, o, order[j - 1]!, i);
      if (c === 0) return false;
      if (c < 0) break;
      order[j] = order[j - 1]!;
      j--;
    }
    order[j] = i;
  }
  return true;
}

/**
 * Beyond this many tags an insertion sort's worst case (keys in reverse order: quadratic, a
 * minute for one 4 MiB message) outweighs its speed on a few nearly sorted keys.
 */
const INSERTION_SORT_MAX_TAGS = 64;

/** Whether tag i's key starts with a digit: it may be an array index, which JSON.stringify puts first. */
function keyMayBeIndex(b: Buffer, o: Int32Array, i: number): boolean {
  const at = o[4 * i]!;
  return at < o[4 * i + 1]! && b[at]! >= ZERO && b[at]! <= NINE;
}

/** Order of the keys of tags x and y: negative, 0 (equal) or positive. */
function compareKeys(b: Buffer, o: Int32Array, x: number, y: number): number {
  const xAt = o[4 * x]!;
  const yAt = o[4 * y]!;
  const xn = o[4 * x + 1]! - xAt;
  const yn = o[4 * y + 1]! - yAt;
  const n = xn < yn ? xn : yn;
  for (let i = 0; i < n; i++) {
    const d = b[xAt + i]! - b[yAt + i]!;
    if (d !== 0) return d;
  }
  return xn - yn;
}

/** An endpoint this file writes itself: no IPv6 text and IPv4 text normalisation keeps as it is. */
function plainEndpoint(e: ScannedEndpoint): boolean {
  return (e.ipv4At < 0 || e.ipv4At === e.ipv4End || e.ipv4Plain) && (e.ipv6At < 0 || e.ipv6At === e.ipv6End);
}

/** Whether the scanned endpoint has a field left after normalisation (else the span has none). */
function hasEndpoint(e: ScannedEndpoint): boolean {
  return e.present && ((e.serviceAt >= 0 && e.serviceEnd > e.serviceAt) || (e.ipv4At >= 0 && e.ipv4End > e.ipv4At) || e.port > 0);
}

// Constant text of the row, as bytes.
const bytesOf = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'latin1'));
const TRACE_ID = bytesOf('{"traceId":"');
const PARENT_ID = bytesOf('","parentId":"');
const ID = bytesOf('","id":"');
const KIND = bytesOf(',"kind":"');
const NAME = bytesOf(',"name":"');
const TIMESTAMP = bytesOf(',"timestamp":');
const DURATION = bytesOf(',"duration":');
const DEBUG = bytesOf(',"debug":true');
const SHARED = bytesOf(',"shared":true');
const LOCAL = bytesOf(',"localEndpoint":');
const REMOTE = bytesOf(',"remoteEndpoint":');
const ANNOTATIONS = bytesOf(',"annotations":[');
const ANNOTATION = bytesOf('{"timestamp":');
const VALUE = bytesOf(',"value":"');
const TAGS = bytesOf(',"tags":{');
const SERVICE_NAME = bytesOf('"serviceName":"');
const IPV4 = bytesOf('"ipv4":"');
const PORT = bytesOf('"port":');
const KINDS: Record<string, Uint8Array> = { CLIENT: bytesOf('CLIENT'), SERVER: bytesOf('SERVER'), PRODUCER: bytesOf('PRODUCER'), CONSUMER: bytesOf('CONSUMER') };

// Views of the body being transcoded and of the scratch buffer, for copies
// four bytes at a time.
let bodyView: DataView = new DataView(new ArrayBuffer(0));
let outBuffer: Buffer | undefined;
let outView: DataView = bodyView;

// Writers of the row: each puts bytes at `at` of `out` (room was reserved
// for the whole row) and returns the position after them. Loops rather
// than native copies: the strings of a span are short.

/** Bytes from..to of the body, as they are, four at a time. */
function put(out: Buffer, at: number, src: Uint8Array, from: number, to: number): number {
  const o = outView;
  const v = bodyView;
  let i = from;
  if (to - from < 4) {
    for (; i < to; i++) out[at++] = src[i]!;
    return at;
  }
  for (; i + 4 <= to; i += 4, at += 4) o.setInt32(at, v.getInt32(i, true), true);
  // The last bytes as one word that overlaps the ones just copied.
  if (i < to) {
    at += to - i;
    o.setInt32(at - 4, v.getInt32(to - 4, true), true);
  }
  return at;
}

/** A constant. */
function putAll(out: Buffer, at: number, text: Uint8Array): number {
  for (let i = 0; i < text.length; i++) out[at++] = text[i]!;
  return at;
}

/** Bytes from..to of `src`, ASCII letters lower-cased (span and service names). */
function putLower(out: Buffer, at: number, src: Uint8Array, from: number, to: number): number {
  for (let i = from; i < to; i++) {
    const c = src[i]!;
    out[at++] = c >= 0x41 && c <= 0x5a ? c + 32 : c;
  }
  return at;
}

/** Bytes from..to of `src` as a string element of a TabSeparated array: `'text'`, with `'` escaped (clean text has no other character to escape). */
function putQuoted(out: Buffer, at: number, src: Uint8Array, from: number, to: number): number {
  out[at++] = APOSTROPHE;
  const o = outView;
  const v = bodyView;
  let i = from;
  // Four bytes at a time while none is a `'`.
  for (; i + 4 <= to; i += 4, at += 4) {
    const x = v.getInt32(i, true);
    const q = x ^ 0x27272727;
    if (((q - 0x01010101) & ~q & 0x80808080) !== 0) break;
    o.setInt32(at, x, true);
  }
  // The last bytes as one word that overlaps the ones just copied, when it has no `'`.
  if (i < to && i + 4 > to && to - from >= 4) {
    const x = v.getInt32(to - 4, true);
    const q = x ^ 0x27272727;
    if (((q - 0x01010101) & ~q & 0x80808080) === 0) {
      at += to - i;
      o.setInt32(at - 4, x, true);
      out[at++] = APOSTROPHE;
      return at;
    }
  }
  for (; i < to; i++) {
    const c = src[i]!;
    if (c === APOSTROPHE) out[at++] = BACKSLASH;
    out[at++] = c;
  }
  out[at++] = APOSTROPHE;
  return at;
}
const APOSTROPHE = 0x27;
const BACKSLASH = 0x5c;

/** Bytes from..to of `src` as a JSON string (clean text needs no escaping in JSON nor in TabSeparated). */
function putString(out: Buffer, at: number, src: Uint8Array, from: number, to: number): number {
  out[at++] = QUOTE;
  at = put(out, at, src, from, to);
  out[at++] = QUOTE;
  return at;
}

/** The row of the span of the last SCAN_SPAN, from its bytes; false (nothing written) for a span left to span-row.ts. */
function writeScannedRow(w: RowWriter, b: Buffer, fallbackMicros: number): boolean {
  const s = scanned;
  const local = s.local;
  const remote = s.remote;
  if ((local.present && !plainEndpoint(local)) || (remote.present && !plainEndpoint(remote))) return false;
  const tagCount = s.tagCount;
  if (tagCount > 0 && !sortTags(b)) return false;
  const hasLocal = hasEndpoint(local);
  const hasRemote = hasEndpoint(remote);
  const hasName = s.nameAt >= 0 && s.nameEnd > s.nameAt;
  const annotationCount = s.annotationCount;
  const ao = s.annotationOffsets;
  const to = s.tagOffsets;
  const kind = s.kind === undefined ? undefined : KINDS[s.kind]!;

  // Every text of the span appears at most three times in its row (twice
  // when quoted, where each byte may double), with no more punctuation and
  // key text around it than in the body; plus a fallback time.
  w.reserve(4 * (s.spanEnd - s.spanAt) + 256);
  const out = w.buffer;
  if (out !== outBuffer) {
    outBuffer = out;
    outView = new DataView(out.buffer, out.byteOffset, out.byteLength);
  }
  let at = w.length;
  at = put(out, at, b, s.traceIdAt, s.traceIdEnd);
  out[at++] = TAB;
  at = put(out, at, b, s.idAt, s.idAt + 16);
  out[at++] = TAB;
  if (s.parentIdAt >= 0) at = put(out, at, b, s.parentIdAt, s.parentIdAt + 16);
  out[at++] = TAB;
  if (kind !== undefined) at = putAll(out, at, kind);
  out[at++] = TAB;
  if (hasName) at = putLower(out, at, b, s.nameAt, s.nameEnd);
  out[at++] = TAB;
  if (hasLocal && local.serviceAt >= 0) at = putLower(out, at, b, local.serviceAt, local.serviceEnd);
  out[at++] = TAB;
  if (hasRemote && remote.serviceAt >= 0) at = putLower(out, at, b, remote.serviceAt, remote.serviceEnd);
  out[at++] = TAB;
  // spanTime: the timestamp, else the first annotation's (they are in order), else the fallback.
  if (s.timestamp > 0) at = put(out, at, b, s.timestampAt, s.timestampEnd);
  else if (annotationCount > 0) at = put(out, at, b, ao[2]!, ao[3]!);
  else {
    w.length = at;
    w.number(uint(fallbackMicros));
    at = w.length;
  }
  out[at++] = TAB;
  if (s.duration > 0) at = put(out, at, b, s.durationAt, s.durationEnd);
  else out[at++] = ZERO;
  out[at++] = TAB;
  out[at++] = OPEN_BRACKET;
  for (let i = 0; i < tagCount; i++) {
    if (i > 0) out[at++] = COMMA;
    const t = 4 * order[i]!;
    at = putQuoted(out, at, b, to[t]!, to[t + 1]!);
  }
  out[at++] = CLOSE_BRACKET;
  out[at++] = TAB;
  out[at++] = OPEN_BRACKET;
  for (let i = 0; i < tagCount; i++) {
    if (i > 0) out[at++] = COMMA;
    const t = 4 * order[i]!;
    at = putQuoted(out, at, b, to[t + 2]!, to[t + 3]!);
  }
  out[at++] = CLOSE_BRACKET;
  out[at++] = TAB;
  out[at++] = OPEN_BRACKET;
  for (let i = 0; i < annotationCount; i++) {
    if (i > 0) out[at++] = COMMA;
    at = putQuoted(out, at, b, ao[4 * i]!, ao[4 * i + 1]!);
  }
  out[at++] = CLOSE_BRACKET;
  out[at++] = TAB;

  // The payload, as span-row.ts writes it: up to its tags, the body's own
  // bytes when they are the same (compact JSON in Zipkin's field order),
  // else piece by piece.
  const verbatim = verbatimEnd(hasName, hasLocal, hasRemote, kind);
  if (verbatim >= 0) {
    transcoderStats.verbatimPayloads++;
    at = put(out, at, b, s.spanAt, verbatim);
  } else {
    at = putAll(out, at, TRACE_ID);
    at = put(out, at, b, s.traceIdAt, s.traceIdEnd);
    if (s.parentIdAt >= 0) {
      at = putAll(out, at, PARENT_ID);
      at = put(out, at, b, s.parentIdAt, s.parentIdAt + 16);
    }
    at = putAll(out, at, ID);
    at = put(out, at, b, s.idAt, s.idAt + 16);
    out[at++] = QUOTE;
    if (kind !== undefined) {
      at = putAll(out, at, KIND);
      at = putAll(out, at, kind);
      out[at++] = QUOTE;
    }
    if (hasName) {
      at = putAll(out, at, NAME);
      at = putLower(out, at, b, s.nameAt, s.nameEnd);
      out[at++] = QUOTE;
    }
    if (s.timestamp > 0) {
      at = putAll(out, at, TIMESTAMP);
      at = put(out, at, b, s.timestampAt, s.timestampEnd);
    }
    if (s.duration > 0) {
      at = putAll(out, at, DURATION);
      at = put(out, at, b, s.durationAt, s.durationEnd);
    }
    if (s.debug) at = putAll(out, at, DEBUG);
    // Zipkin unsets `shared` on client spans.
    if (s.shared && s.kind !== 'CLIENT') at = putAll(out, at, SHARED);
    if (hasLocal) {
      at = putAll(out, at, LOCAL);
      at = putEndpoint(out, at, b, local);
    }
    if (hasRemote) {
      at = putAll(out, at, REMOTE);
      at = putEndpoint(out, at, b, remote);
    }
    if (annotationCount > 0) {
      at = putAll(out, at, ANNOTATIONS);
      for (let i = 0; i < annotationCount; i++) {
        if (i > 0) out[at++] = COMMA;
        at = putAll(out, at, ANNOTATION);
        at = put(out, at, b, ao[4 * i + 2]!, ao[4 * i + 3]!);
        at = putAll(out, at, VALUE);
        at = put(out, at, b, ao[4 * i]!, ao[4 * i + 1]!);
        out[at++] = QUOTE;
        out[at++] = CLOSE_BRACE;
      }
      out[at++] = CLOSE_BRACKET;
    }
  }
  if (tagCount > 0) {
    at = putAll(out, at, TAGS);
    for (let i = 0; i < tagCount; i++) {
      if (i > 0) out[at++] = COMMA;
      const t = 4 * order[i]!;
      at = putString(out, at, b, to[t]!, to[t + 1]!);
      out[at++] = COLON;
      at = putString(out, at, b, to[t + 2]!, to[t + 3]!);
    }
    out[at++] = CLOSE_BRACE;
  }
  out[at++] = CLOSE_BRACE;
  out[at++] = NEWLINE;
  w.length = at;
  return true;
}

/**
 * Where the payload's text before its tags (or its closing brace) ends in
 * the body, when the body's bytes from the span's `{` are that text: keys in
 * Zipkin's order (the payload's, but for debug and shared, which are left
 * out here), nothing the payload drops or changes (a zero, an empty text or
 * list, upper case, a parent id equal to the id...), and no whitespace,
 * which the length of the text then shows. -1 otherwise.
 */
function verbatimEnd(hasName: boolean, hasLocal: boolean, hasRemote: boolean, kind: Uint8Array | undefined): number {
  const s = scanned;
  const f = s.fields;
  if (!s.keysInOrder || (f & (F.debug | F.shared)) !== 0) return -1;
  if ((f & F.parentId) !== 0 && s.parentIdAt < 0) return -1;
  if ((f & F.name) !== 0 && (!hasName || s.nameUpper)) return -1;
  if ((f & F.timestamp) !== 0 && s.timestamp === 0) return -1;
  if ((f & F.duration) !== 0 && s.duration === 0) return -1;
  if ((f & F.annotations) !== 0 && s.annotationCount <= 0) return -1;
  if ((f & F.localEndpoint) !== 0 && !(hasLocal && endpointAsIs(s.local))) return -1;
  if ((f & F.remoteEndpoint) !== 0 && !(hasRemote && endpointAsIs(s.remote))) return -1;
  // The length of the payload's text, as writeScannedRow writes it.
  let n = TRACE_ID.length + (s.traceIdEnd - s.traceIdAt);
  if (s.parentIdAt >= 0) n += PARENT_ID.length + 16;
  n += ID.length + 16 + 1;
  if (kind !== undefined) n += KIND.length + kind.length + 1;
  if (hasName) n += NAME.length + (s.nameEnd - s.nameAt) + 1;
  if (s.timestamp > 0) n += TIMESTAMP.length + (s.timestampEnd - s.timestampAt);
  if (s.duration > 0) n += DURATION.length + (s.durationEnd - s.durationAt);
  if (hasLocal) n += LOCAL.length + endpointLength(s.local);
  if (hasRemote) n += REMOTE.length + endpointLength(s.remote);
  const count = s.annotationCount;
  if (count > 0) {
    const ao = s.annotationOffsets;
    n += ANNOTATIONS.length + 1 + (count - 1);
    for (let i = 0; i < count; i++) {
      // {"timestamp":…,"value":"…"}: the timestamp first.
      if (ao[4 * i + 2]! > ao[4 * i]!) return -1;
      n += ANNOTATION.length + (ao[4 * i + 3]! - ao[4 * i + 2]!) + VALUE.length + (ao[4 * i + 1]! - ao[4 * i]!) + 2;
    }
  }
  // Before `,"tags"` (its comma is two bytes before the key's text), or before the closing brace.
  const end = (f & F.tags) !== 0 ? s.tagsKeyAt - 2 : s.spanEnd - 1;
  return end - s.spanAt === n ? end : -1;
}

/** An endpoint whose body text putEndpoint would write as it is (keys in order, nothing dropped or changed). */
function endpointAsIs(e: ScannedEndpoint): boolean {
  return (
    e.keysInOrder &&
    (e.serviceAt < 0 || (e.serviceEnd > e.serviceAt && !e.serviceUpper)) &&
    (e.ipv4At < 0 || (e.ipv4End > e.ipv4At && e.ipv4Plain)) &&
    e.ipv6At < 0 &&
    e.port !== 0
  );
}

/** The length of putEndpoint's text. */
function endpointLength(e: ScannedEndpoint): number {
  // Each field follows a `{` or a `,`; then the closing brace.
  let n = 1;
  if (e.serviceAt >= 0 && e.serviceEnd > e.serviceAt) n += 1 + SERVICE_NAME.length + (e.serviceEnd - e.serviceAt) + 1;
  if (e.ipv4At >= 0 && e.ipv4End > e.ipv4At) n += 1 + IPV4.length + (e.ipv4End - e.ipv4At) + 1;
  if (e.port > 0) n += 1 + PORT.length + (e.portEnd - e.portAt);
  return n;
}

/** An endpoint with at least one field, as span-row.ts writes it. */
function putEndpoint(out: Buffer, at: number, b: Buffer, e: ScannedEndpoint): number {
  let sep = OPEN_BRACE;
  if (e.serviceAt >= 0 && e.serviceEnd > e.serviceAt) {
    out[at++] = sep;
    at = putAll(out, at, SERVICE_NAME);
    at = putLower(out, at, b, e.serviceAt, e.serviceEnd);
    out[at++] = QUOTE;
    sep = COMMA;
  }
  if (e.ipv4At >= 0 && e.ipv4End > e.ipv4At) {
    out[at++] = sep;
    at = putAll(out, at, IPV4);
    at = put(out, at, b, e.ipv4At, e.ipv4End);
    out[at++] = QUOTE;
    sep = COMMA;
  }
  if (e.port > 0) {
    out[at++] = sep;
    at = putAll(out, at, PORT);
    at = put(out, at, b, e.portAt, e.portEnd);
  }
  out[at++] = CLOSE_BRACE;
  return at;
}
