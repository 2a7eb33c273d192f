// Public surface of @tracehouse/model: the Zipkin v2 span model, its codecs
// (JSON v2, JSON v1 read-only, proto3 ListOfSpans) and validation.
export type { Span, SpanKind, Endpoint, Annotation } from './span.js';
export { SPAN_KINDS } from './span.js';
export type {
  Encoding,
  DecodeFailureReason,
  SpanRejectReason,
  DecodeOptions,
  DroppedSpan,
  DecodeResult,
  NormalizeResult,
} from './results.js';
export { decodeSpans, readBody, decodeReadBody, DEFAULT_MAX_BODY_BYTES } from './decode-spans.js';
export type { ReadBody } from './decode-spans.js';
export { normalizeSpan, normalizeTraceId } from './normalize-span.js';
export { encodeJsonV2 } from './json-v2.js';
export { encodeProto3 } from './proto3.js';
// Low level: the scan step of the JSON v2 fast path (offsets of each clean
// span's fields in the body, no objects) and its materialise step, for code
// that writes spans elsewhere without making Span objects (storage's row
// transcoder). See json-v2-scan.ts for the protocol.
export { scanBegin, scanNext, scanFinish, scanned, SCANNED_FIELD, SCAN_END, SCAN_SPAN, SCAN_ITEM } from './json-v2-scan.js';
export type { ScannedEndpoint } from './json-v2-scan.js';
export { materializeScanned } from './json-v2-fast-path.js';
