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
export { decodeSpans, DEFAULT_MAX_BODY_BYTES } from './decode-spans.js';
export { normalizeSpan, normalizeTraceId } from './normalize-span.js';
export { encodeJsonV2 } from './json-v2.js';
export { encodeProto3 } from './proto3.js';
