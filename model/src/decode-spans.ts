// decodeSpans: message body -> validated spans. Detects the encoding from the
// bytes as Zipkin's SpanBytesDecoderDetector does, gunzips with a bound, and
// never throws.
import { kMaxLength } from 'node:buffer';
import { gunzipSync, inflateSync } from 'node:zlib';
import { droppedSpan, normalizeInto, normalizeOrThrow, show } from './normalize-span.js';
import { decodeJsonV2Fast } from './json-v2-fast-path.js';
import { MALFORMED_SPAN_BYTES, decodeProto3List } from './proto3.js';
import { looksLikeJsonV1, v1ToV2 } from './json-v1.js';
import type { DecodeOptions, DecodeResult, DroppedSpan } from './results.js';
import type { Span } from './span.js';

/**
 * Default largest body, after decompression: 5 MiB. Zipkin's senders cap a
 * message at 500 KB, so this leaves ten times the room while bounding what one
 * message (or one gzip bomb) can make the collector allocate.
 */
export const DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024;

type Failure = Extract<DecodeResult, { ok: false }>;

function fail(reason: Failure['reason'], message: string): Failure {
  return { ok: false, reason, message };
}

function asBuffer(body: Uint8Array): Buffer {
  return Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

function decompress(body: Buffer, encoding: string, max: number): Buffer | Failure {
  try {
    const options = { maxOutputLength: max };
    return encoding === 'deflate' ? inflateSync(body, options) : gunzipSync(body, options);
  } catch (e) {
    const err = e as { code?: unknown; message?: unknown };
    if (err.code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) {
      return fail('too_large', `body inflates to more than ${max} bytes (content-encoding: ${encoding})`);
    }
    const detail = typeof err.message === 'string' ? err.message : String(e);
    const code = typeof err.code === 'string' ? ` (${err.code})` : '';
    return fail('bad_gzip', `content-encoding is ${encoding} but the body could not be decompressed: ${detail}${code}`);
  }
}

function normalizeList(list: unknown[], encoding: 'JSON_V2' | 'JSON_V1'): DecodeResult {
  const spans: Span[] = [];
  const dropped: DroppedSpan[] = [];
  for (let index = 0; index < list.length; index++) {
    if (encoding === 'JSON_V2') {
      normalizeInto(list[index], index, spans, dropped);
      continue;
    }
    try {
      for (const raw of v1ToV2(list[index])) spans.push(normalizeOrThrow(raw, true));
    } catch (e) {
      dropped.push(droppedSpan(e, index));
    }
  }
  return { ok: true, encoding, spans, dropped };
}

function decodeJson(body: Buffer, start: number, fastPath: boolean): DecodeResult {
  if (fastPath && body[start] === 0x5b) {
    // The usual JSON v2 list: the fast path, same result as below at about
    // twice the speed; undefined for a body it leaves to JSON.parse.
    const fast = decodeJsonV2Fast(body, start);
    if (fast !== undefined) return fast;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8', start));
  } catch (e) {
    return fail('malformed_json', `body is not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!Array.isArray(parsed)) {
    return fail('not_a_list', `expected a JSON list of spans, got ${show(parsed)}; wrap a single span in [ ]`);
  }
  const list = parsed as unknown[];
  return normalizeList(list, looksLikeJsonV1(list) ? 'JSON_V1' : 'JSON_V2');
}

/** A message body ready to be read: decompressed, within its bound. */
export type ReadBody = { ok: true; bytes: Buffer; start: number } | Failure;

/**
 * Compressions a content-encoding may name that are not read here. Any other
 * value reads as no compression: publishers put a charset there (Spring AMQP's
 * message converters write `UTF-8`, kombu `utf-8` or `binary`), and Zipkin's
 * collector never looks at the property, so such spans must not be parked.
 */
const UNREADABLE_COMPRESSIONS: ReadonlySet<string> = new Set([
  'br',
  'compress',
  'x-compress',
  'zstd',
  'lz4',
  'snappy',
  'x-snappy-framed',
  'bzip2',
  'x-bzip2',
  'xz',
  'lzma',
  'exi',
  'pack200-gzip',
]);

/**
 * The first step of decodeSpans, shared with storage's row transcoder: checks
 * the size bound, decompresses (content-encoding gzip or deflate, or a gzip
 * header without it), and finds where the content starts after a UTF-8 byte
 * order mark and JSON whitespace (`start`; `bytes[start]` is then `[` or `{`
 * for JSON, 0x0a for proto3). Never throws.
 */
export function readBody(body: Uint8Array, options: DecodeOptions = {}): ReadBody {
  try {
    const requested = options.maxBodyBytes;
    // A missing or nonsensical bound (not a positive number) means the default.
    const max = typeof requested === 'number' && requested > 0 ? Math.min(Math.floor(requested), kMaxLength) : DEFAULT_MAX_BODY_BYTES;
    if (!(body instanceof Uint8Array)) return fail('unknown_encoding', 'body is not bytes');
    if (body.byteLength === 0) return fail('empty', 'body is empty');
    if (body.byteLength > max) return fail('too_large', `body is ${body.byteLength} bytes, more than the ${max} allowed`);
    let bytes = asBuffer(body);

    const rawEncoding: unknown = options.contentEncoding;
    const contentEncoding = typeof rawEncoding === 'string' ? rawEncoding.trim().toLowerCase() : rawEncoding == null ? '' : typeof rawEncoding;
    if (contentEncoding === 'gzip' || contentEncoding === 'x-gzip' || contentEncoding === 'deflate') {
      const inflated = decompress(bytes, contentEncoding === 'deflate' ? 'deflate' : 'gzip', max);
      if (!Buffer.isBuffer(inflated)) return inflated;
      bytes = inflated;
    } else if (UNREADABLE_COMPRESSIONS.has(contentEncoding) || (typeof rawEncoding !== 'string' && rawEncoding != null)) {
      return fail('unknown_encoding', `content-encoding ${show(options.contentEncoding)} is not supported (use gzip or none)`);
    } else if (bytes.byteLength >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
      // A gzip header without the content-encoding property: a sender that
      // forgot to set it. Inflating costs nothing for anyone else.
      const inflated = decompress(bytes, 'gzip', max);
      if (!Buffer.isBuffer(inflated)) return inflated;
      bytes = inflated;
    }
    if (bytes.byteLength === 0) return fail('empty', 'body is empty after decompression');

    // Skip a UTF-8 byte order mark and leading JSON whitespace.
    let start = 0;
    if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) start = 3;
    while (start < bytes.byteLength) {
      const c = bytes[start];
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      start++;
    }
    return { ok: true, bytes, start };
  } catch (e) {
    return fail('unknown_encoding', `body could not be read: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * Decodes a message body into validated, normalised spans. Never throws: a
 * body that cannot be read at all comes back as `{ ok: false, reason }`, and
 * bad spans inside a readable list are reported in `dropped` while the good
 * ones are returned.
 */
export function decodeSpans(body: Uint8Array, options: DecodeOptions = {}): DecodeResult {
  return decodeSpansWith(body, options, true);
}

/**
 * decodeSpans, with the JSON v2 fast path (json-v2-fast-path.ts) on or off.
 * Not exported from index.ts: tests compare the two.
 */
export function decodeSpansWith(body: Uint8Array, options: DecodeOptions, fastPath: boolean): DecodeResult {
  // Neither step throws.
  const read = readBody(body, options);
  return read.ok ? decodeReadBody(read.bytes, read.start, fastPath) : read;
}

/**
 * The rest of decodeSpans, on a body readBody has read: for storage's row
 * transcoder, which reads the body once and falls back to this (without the
 * fast path, which it has just tried) for what it does not write itself.
 */
export function decodeReadBody(bytes: Buffer, start: number, fastPath: boolean): DecodeResult {
  try {
    const first = bytes[start];
    if (first === 0x5b /* [ */ || first === 0x7b /* { */) {
      const json = decodeJson(bytes, start, fastPath);
      // 0x0a is both a newline and the proto3 tag of ListOfSpans.spans, so a
      // body led by it that is not JSON gets a second chance as proto3. Cut
      // JSON text can also frame as proto3 whose "spans" are all bytes that
      // frame nothing: then it is malformed JSON. A span read, or one refused
      // for what it says (a bad id...), makes it proto3.
      if (json.ok || bytes[0] !== 0x0a) return json;
      const proto = decodeProto3List(bytes);
      const isProto = proto.ok && (proto.spans.length > 0 || proto.dropped.some((d) => !d.message.startsWith(MALFORMED_SPAN_BYTES)));
      return isProto ? proto : json;
    }
    // Proto3 ListOfSpans begins with the tag of field 1, length-delimited.
    if (bytes[0] === 0x0a) return decodeProto3List(bytes);
    if (first === undefined) return fail('empty', 'body is only whitespace');
    return fail(
      'unknown_encoding',
      `body starts with byte 0x${first.toString(16).padStart(2, '0')}: neither a JSON list ('[') nor proto3 ListOfSpans (0x0a)` +
        (first === 0x1f ? '; it looks gzipped, set content-encoding: gzip' : ''),
    );
  } catch (e) {
    // Nothing above should throw; this is the last line of "never throws".
    return fail('unknown_encoding', `body could not be decoded: ${e instanceof Error ? e.message : String(e)}`);
  }
}
