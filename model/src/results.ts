// Result and option types of the codecs. Re-exported from index.ts.
import type { Span } from './span.js';

/** How a message body was encoded, detected from its bytes. */
export type Encoding = 'JSON_V2' | 'JSON_V1' | 'PROTO3';

export type DecodeFailureReason =
  | 'empty'
  | 'too_large'
  | 'bad_gzip'
  | 'unknown_encoding'
  | 'malformed_json'
  | 'not_a_list'
  | 'malformed_proto';

export type SpanRejectReason =
  | 'not_an_object'
  | 'missing_trace_id'
  | 'bad_trace_id'
  | 'missing_id'
  | 'bad_id'
  | 'bad_parent_id'
  | 'bad_kind'
  | 'bad_timestamp'
  | 'bad_duration'
  | 'bad_endpoint'
  | 'bad_annotation'
  | 'bad_tags'
  | 'bad_field_type';

export interface DecodeOptions {
  /** The AMQP `content-encoding` property; `gzip` means the body is gunzipped first. */
  contentEncoding?: string;
  /** Largest accepted body after decompression, in bytes. */
  maxBodyBytes?: number;
}

export interface DroppedSpan {
  /** Position of the span in the message's list. */
  index: number;
  reason: SpanRejectReason;
  message: string;
}

export type DecodeResult =
  | { ok: true; encoding: Encoding; spans: Span[]; dropped: DroppedSpan[] }
  | { ok: false; reason: DecodeFailureReason; message: string };

export type NormalizeResult =
  | { ok: true; span: Span }
  | { ok: false; reason: SpanRejectReason; message: string };

/**
 * Thrown inside the validator and the proto3 reader; never leaves the package.
 * There is a single instance, thrown by `rejectSpan` and read by the catcher
 * straight away: a new Error per bad span (with its stack trace) cost ~10 us,
 * which a 5 MiB message of junk items (`[{},{},...]`) turned into tens of
 * seconds of CPU.
 */
export class SpanRejection extends Error {
  reason: SpanRejectReason = 'not_an_object';
}

const REJECTION = (() => {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  const e = new SpanRejection('');
  Error.stackTraceLimit = limit;
  return e;
})();

export function rejectSpan(reason: SpanRejectReason, message: string): never {
  REJECTION.reason = reason;
  REJECTION.message = message;
  throw REJECTION;
}
