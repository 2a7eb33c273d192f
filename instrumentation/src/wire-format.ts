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
 * JSON is the measured hot path: `spanEncoder('json')` writes a span's bytes
 * straight from the SDK's `ReadableSpan` into a slab (zipkin-json-encoder.ts),
 * byte for byte what `JSON.stringify` of the converted span gives (tested on
 * varied spans). `jsonV2.encodeSpan` is that reference path (converter object
 * -> `JSON.stringify` -> `Buffer.from`), for callers holding Zipkin spans.
 *
 * Measured with `npm run bench -w instrumentation` (realistic HTTP spans,
 * 773 B each; medians of 3 runs on the 2-core VM while other work kept its
 * load average at 4.6-5.8, so absolute figures are inflated): conversion
 * alone 1.6 µs CPU; conversion + JSON encoding 3.9 µs fused against 7.8 µs
 * via the Zipkin object in the same runs (ratio 0.50-0.55); export() into
 * the buffer 5.4 µs (was 10.5 µs); export() until RabbitMQ confirmed 8.8 µs
 * (was 14.7 µs). The goal of 2 µs per span is not reached: on the ~5.4 µs
 * this path cost on a quieter machine, the same ratio gives about 3 µs.
 * wire-format.test.ts checks that `decodeSpans` reads these bodies.
 */
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { encodeProto3, type Span } from '@tracehouse/model';
import type { WireEncoding } from './config.js';
import { ZipkinSpanConverter, type ZipkinConversionOptions } from './zipkin-conversion.js';
import { ZipkinJsonEncoder } from './zipkin-json-encoder.js';

export interface WireFormat {
  readonly encoding: WireEncoding;
  /** Bytes of one span as it sits inside a message. */
  encodeSpan(span: Span): Buffer;
  /** Size of a message holding `count` pieces whose sizes add up to `pieceBytes`. */
  readonly messageBytes: (count: number, pieceBytes: number) => number;
  /** Frames the pieces as one message body. */
  frame(pieces: readonly Buffer[], pieceBytes: number): Buffer;
}

const OPEN = 0x5b; // [
const CLOSE = 0x5d; // ]
const COMMA = 0x2c; // ,

function jsonMessageBytes(count: number, pieceBytes: number): number {
  return pieceBytes + Math.max(0, count - 1) + 2;
}

const jsonV2: WireFormat = {
  encoding: 'json',
  encodeSpan(span) {
    return Buffer.from(JSON.stringify(span), 'utf8');
  },
  messageBytes: jsonMessageBytes,
  frame(pieces, pieceBytes) {
    const body = Buffer.allocUnsafe(jsonMessageBytes(pieces.length, pieceBytes));
    let offset = 0;
    body[offset++] = OPEN;
    for (let i = 0; i < pieces.length; i++) {
      if (i > 0) body[offset++] = COMMA;
      offset += (pieces[i] as Buffer).copy(body, offset);
    }
    body[offset] = CLOSE;
    return body;
  },
};

const proto3: WireFormat = {
  encoding: 'proto3',
  encodeSpan(span) {
    return encodeProto3([span]);
  },
  messageBytes: (_count, pieceBytes) => pieceBytes,
  frame(pieces, pieceBytes) {
    return Buffer.concat(pieces, pieceBytes);
  },
};

export function wireFormat(encoding: WireEncoding): WireFormat {
  return encoding === 'proto3' ? proto3 : jsonV2;
}

/** One exporter's SDK span -> piece function (it keeps per-resource and per-key caches). */
export function spanEncoder(encoding: WireEncoding, options: ZipkinConversionOptions = {}): (span: ReadableSpan) => Buffer {
  if (encoding === 'json') {
    const encoder = new ZipkinJsonEncoder(options);
    return (span) => encoder.encode(span);
  }
  const converter = new ZipkinSpanConverter(options);
  return (span) => proto3.encodeSpan(converter.convert(span));
}
