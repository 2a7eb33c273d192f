/**
 * How spans become message bodies. Each span is encoded on its own as soon as
 * it is exported (so its size is known and the buffer is bounded in bytes),
 * and a message is the list of those pieces framed as one list:
 *
 * - JSON v2: the per-span encoding of `[span]` minus its brackets; a message
 *   is `[` + pieces joined by `,` + `]`.
 * - proto3: `ListOfSpans` is `repeated Span spans = 1`, and concatenated
 *   encodings of repeated fields are one valid message, so the encoding of a
 *   one-span list is already a piece and a message is their concatenation.
 *
 * proto3 uses `@tracehouse/model`'s encoder on the converter's Zipkin span.
 * JSON is the measured hot path: `spanWriter('json')` writes a span's bytes
 * straight from the SDK's `ReadableSpan` (zipkin-json-encoder.ts) into the
 * exporter's SpanBuffer, whose slabs and message bodies are reused
 * (span-buffer.ts), byte for byte what `JSON.stringify` of the converted span
 * gives (tested on varied spans). `spanEncoder('json')` hands out the same
 * bytes as views of fresh slabs. `jsonV2.encodeSpan` is the reference path
 * (converter object -> `JSON.stringify` -> `Buffer.from`), for callers holding
 * Zipkin spans.
 *
 * Measured with `npm run bench -w instrumentation` (realistic HTTP spans,
 * 773 B each) on the 2-core VM shared with other work, whose load inflates
 * absolute figures by up to 2x between runs, so builds are compared in
 * alternating runs. 2026-11-28, 3 runs before and 3 after the reuse of slabs
 * and bodies (load 1.6-3.6): conversion + JSON encoding into the buffer's
 * reused slabs 3.9 µs CPU per span (median; 5.4 µs for fresh slabs and a
 * Buffer view per span in the runs before), 0.46x going via the Zipkin object
 * and `JSON.stringify`; interleaved in one process: encoding 0.94x, encoding
 * + buffering + framing 0.87x, export() until RabbitMQ confirmed 0.91x.
 * 2026-11-29, 3 runs with the encoder's caches (zipkin-json-encoder.ts)
 * alternating with 3 without (load 1.6-6): 1.38 µs against 1.84 µs (0.75x),
 * 0.35x going via the Zipkin object; interleaved in one process (an ad-hoc
 * script, write + commit into the SpanBuffer): 0.70-0.73x. Throughput figures
 * are in the README. wire-format.test.ts checks that `decodeSpans` reads the
 * bodies.
 */
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { encodeProto3, type Span } from '@tracehouse/model';
import type { WireEncoding } from './config.js';
import type { Framing, SpanBuffer } from './span-buffer.js';
import { ZipkinSpanConverter, type ZipkinConversionOptions } from './zipkin-conversion.js';
import { ZipkinJsonEncoder } from './zipkin-json-encoder.js';

export interface WireFormat extends Framing {
  readonly encoding: WireEncoding;
  /** Bytes of one span as it sits inside a message. */
  encodeSpan(span: Span): Buffer;
}

const NOTHING = new Uint8Array(0);

function jsonMessageBytes(count: number, pieceBytes: number): number {
  return pieceBytes + Math.max(0, count - 1) + 2;
}

const jsonV2: WireFormat = {
  encoding: 'json',
  encodeSpan(span) {
    return Buffer.from(JSON.stringify(span), 'utf8');
  },
  messageBytes: jsonMessageBytes,
  open: Uint8Array.of(0x5b), // [
  separator: Uint8Array.of(0x2c), // ,
  close: Uint8Array.of(0x5d), // ]
};

const proto3: WireFormat = {
  encoding: 'proto3',
  encodeSpan(span) {
    return encodeProto3([span]);
  },
  messageBytes: (_count, pieceBytes) => pieceBytes,
  open: NOTHING,
  separator: NOTHING,
  close: NOTHING,
};

export function wireFormat(encoding: WireEncoding): WireFormat {
  return encoding === 'proto3' ? proto3 : jsonV2;
}

/**
 * One exporter's SDK span -> piece function (it keeps per-resource and
 * per-key caches). The pieces are views of slabs that are never rewritten;
 * the exporter uses `spanWriter` instead.
 */
export function spanEncoder(encoding: WireEncoding, options: ZipkinConversionOptions = {}): (span: ReadableSpan) => Buffer {
  if (encoding === 'json') {
    const encoder = new ZipkinJsonEncoder(options);
    return (span) => encoder.encode(span);
  }
  const converter = new ZipkinSpanConverter(options);
  return (span) => proto3.encodeSpan(converter.convert(span));
}

/**
 * One exporter's function that writes a span's piece at the buffer's tail
 * (`SpanBuffer.stage`: not kept until `commit`) and returns its length.
 */
export function spanWriter(
  encoding: WireEncoding,
  options: ZipkinConversionOptions = {},
): (span: ReadableSpan, buffer: SpanBuffer) => number {
  if (encoding === 'json') {
    const encoder = new ZipkinJsonEncoder(options);
    return (span, buffer) => encoder.write(span, buffer);
  }
  const converter = new ZipkinSpanConverter(options);
  return (span, buffer) => buffer.stage(proto3.encodeSpan(converter.convert(span)));
}
