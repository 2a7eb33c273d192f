import { describe, it, expect } from 'vitest';
import { gzipSync, deflateSync } from 'node:zlib';
import protobuf from 'protobufjs';
import { decodeSpans, encodeProto3, DEFAULT_MAX_BODY_BYTES, type DecodeResult, type Span } from './index.js';

const TRACE = '463ac35c9f6413ad48485a3953bb6124';
const good: Span = { traceId: TRACE, id: 'a2fb4a1d1a96d312', name: 'get', timestamp: 1, duration: 2 };
const json = (v: unknown) => Buffer.from(JSON.stringify(v));

function failure(r: DecodeResult) {
  if (r.ok) throw new Error(`expected a failure, got ${r.spans.length} spans`);
  expect(r.message.length).toBeGreaterThan(5);
  return r;
}

describe('decodeSpans: whole-body failures', () => {
  it('empty', () => {
    expect(failure(decodeSpans(new Uint8Array(0))).reason).toBe('empty');
    expect(failure(decodeSpans(Buffer.from('  \n\t'))).reason).toBe('empty');
    expect(failure(decodeSpans(gzipSync(Buffer.alloc(0)), { contentEncoding: 'gzip' })).reason).toBe('empty');
  });

  it('too_large: a raw body over maxBodyBytes', () => {
    const body = json([good, good, good]);
    const r = failure(decodeSpans(body, { maxBodyBytes: body.length - 1 }));
    expect(r.reason).toBe('too_large');
    expect(decodeSpans(body, { maxBodyBytes: body.length }).ok).toBe(true);
    expect(DEFAULT_MAX_BODY_BYTES).toBe(5 * 1024 * 1024);
  });

  it('a maxBodyBytes that is not a positive number means the default', () => {
    for (const maxBodyBytes of [0, -1, NaN, Infinity]) {
      expect(decodeSpans(json([good]), { maxBodyBytes })).toMatchObject({ ok: true, spans: [good] });
      expect(decodeSpans(gzipSync(json([good])), { maxBodyBytes, contentEncoding: 'gzip' })).toMatchObject({ ok: true, spans: [good] });
    }
  });

  it('too_large: a gzip bomb stops at the bound instead of inflating', () => {
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x20)); // 64 MiB of spaces, ~64 KiB gzipped
    expect(bomb.length).toBeLessThan(DEFAULT_MAX_BODY_BYTES);
    const started = performance.now();
    const r = failure(decodeSpans(bomb, { contentEncoding: 'gzip' }));
    expect(r.reason).toBe('too_large');
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it('bad_gzip: the gzip flag on plain bytes, or a truncated gzip stream', () => {
    expect(failure(decodeSpans(json([good]), { contentEncoding: 'gzip' })).reason).toBe('bad_gzip');
    const gz = gzipSync(json([good]));
    expect(failure(decodeSpans(gz.subarray(0, gz.length - 10), { contentEncoding: 'gzip' })).reason).toBe('bad_gzip');
  });

  it('accepts gzip as GZIP / x-gzip, deflate, and a gzip body sent without the property', () => {
    for (const contentEncoding of ['GZIP', 'x-gzip', ' gzip ']) {
      expect(decodeSpans(gzipSync(json([good])), { contentEncoding })).toMatchObject({ ok: true, spans: [good] });
    }
    expect(decodeSpans(deflateSync(json([good])), { contentEncoding: 'deflate' })).toMatchObject({ ok: true, spans: [good] });
    expect(decodeSpans(gzipSync(json([good])))).toMatchObject({ ok: true, spans: [good] });
    expect(decodeSpans(json([good]), { contentEncoding: 'identity' })).toMatchObject({ ok: true, spans: [good] });
    // A charset where the compression goes (Spring AMQP writes UTF-8, kombu utf-8 or binary): Zipkin's
    // collector ignores the property, so the body is read as it is (and a gzip header still gunzips).
    for (const charset of ['UTF-8', 'utf8', 'binary', '8bit']) {
      expect(decodeSpans(json([good]), { contentEncoding: charset }), charset).toMatchObject({ ok: true, spans: [good] });
      expect(decodeSpans(gzipSync(json([good])), { contentEncoding: charset }), charset).toMatchObject({ ok: true, spans: [good] });
    }
  });

  it('unknown_encoding: an unsupported content-encoding, or bytes that are neither JSON nor proto3', () => {
    expect(failure(decodeSpans(json([good]), { contentEncoding: 'br' })).reason).toBe('unknown_encoding');
    expect(failure(decodeSpans(json([good]), { contentEncoding: 'zstd' })).reason).toBe('unknown_encoding');
    expect(failure(decodeSpans(json([good]), { contentEncoding: 5 as unknown as string })).reason).toBe('unknown_encoding');
    expect(failure(decodeSpans(Buffer.from('hello'))).reason).toBe('unknown_encoding');
    expect(failure(decodeSpans(Buffer.from([0x08, 0x01]))).reason).toBe('unknown_encoding'); // thrift-like / wrong proto field
  });

  it('malformed_json and not_a_list', () => {
    expect(failure(decodeSpans(Buffer.from('[{"traceId": '))).reason).toBe('malformed_json');
    expect(failure(decodeSpans(Buffer.from('[1,]'))).reason).toBe('malformed_json');
    const single = failure(decodeSpans(json(good)));
    expect(single.reason).toBe('not_a_list');
    expect(single.message).toContain('wrap a single span');
  });

  it('malformed_proto: bad framing of ListOfSpans', () => {
    const proto = encodeProto3([good, good]);
    expect(failure(decodeSpans(proto.subarray(0, proto.length - 3))).reason).toBe('malformed_proto');
    // field 1 with a varint wire type
    expect(failure(decodeSpans(Buffer.from([0x0a, 0x02, 0x08, 0x01, 0x08, 0x01]))).reason).toBe('malformed_proto');
    // a length running past the end
    expect(failure(decodeSpans(Buffer.from([0x0a, 0x7f, 0x01]))).reason).toBe('malformed_proto');
  });
});

describe('decodeSpans: detection', () => {
  it('detects JSON v2 with leading whitespace, a BOM, or a leading newline (which is also the proto3 tag)', () => {
    for (const prefix of ['  ', '\n', '\r\n\t', '\uFEFF']) {
      expect(decodeSpans(Buffer.from(prefix + JSON.stringify([good])))).toMatchObject({ ok: true, encoding: 'JSON_V2', spans: [good] });
    }
  });

  it('a cut JSON body led by a newline is malformed JSON, not proto3 that lost a span', () => {
    // Read as proto3, such a body sometimes frames a "span" of JSON text that is dropped, and
    // the rest of the text then happens to frame nothing more.
    for (let count = 1; count <= 5; count++) {
      const text = JSON.stringify(Array.from({ length: count }, (_, i) => ({ ...good, name: 'x'.repeat(i * 13) })));
      for (let cut = 1; cut < text.length; cut++) {
        for (const prefix of ['\n', '\n\n', '\n ']) {
          const r = decodeSpans(Buffer.from(prefix + text.slice(0, cut)));
          if (!r.ok && r.reason === 'malformed_json') continue;
          expect.fail(`${count} spans cut at ${cut} after ${JSON.stringify(prefix)}: ${JSON.stringify(r)}`);
        }
      }
    }
  });

  it('a proto3 body whose first span length reads as "[" and whose spans are all refused is proto3, not JSON', () => {
    // A span of exactly 91 bytes (0x5b, "["): a 4-byte trace id (refused), an id, a 73-byte name.
    const span = Buffer.concat([
      Buffer.from([0x0a, 0x04, 1, 2, 3, 4]),
      Buffer.from([0x1a, 0x08]),
      Buffer.from('a2fb4a1d1a96d312', 'hex'),
      Buffer.from([0x2a, 73]),
      Buffer.alloc(73, 0x61),
    ]);
    expect(span.length).toBe(0x5b);
    const r = decodeSpans(Buffer.concat([Buffer.from([0x0a, span.length]), span]));
    expect(r).toMatchObject({ ok: true, encoding: 'PROTO3', spans: [], dropped: [{ index: 0, reason: 'bad_trace_id' }] });
  });

  it('an empty JSON list is a valid message with no spans', () => {
    expect(decodeSpans(Buffer.from('[]'))).toEqual({ ok: true, encoding: 'JSON_V2', spans: [], dropped: [] });
  });

  it('accepts a Uint8Array that is a view into a larger buffer', () => {
    const body = json([good]);
    const big = new Uint8Array(body.length + 20);
    big.set(body, 10);
    expect(decodeSpans(big.subarray(10, 10 + body.length))).toMatchObject({ ok: true, spans: [good] });
  });
});

describe('decodeSpans: bad spans are dropped, the rest kept', () => {
  it('JSON: reports each bad span with its index and reason', () => {
    const r = decodeSpans(json([good, { id: '1' }, 7, { ...good, kind: 'LOCAL' }, { ...good, id: 'b2fb4a1d1a96d312' }]));
    expect(r).toMatchObject({
      ok: true,
      spans: [good, { ...good, id: 'b2fb4a1d1a96d312' }],
      dropped: [
        { index: 1, reason: 'missing_trace_id' },
        { index: 2, reason: 'not_an_object' },
        { index: 3, reason: 'bad_kind' },
      ],
    });
  });

  // Spans with faults only proto3 can have, built with protobufjs so the
  // bytes come from an independent encoder.
  const root = protobuf.parse(`
    syntax = "proto3";
    message Endpoint { string service_name = 1; bytes ipv4 = 2; bytes ipv6 = 3; int32 port = 4; }
    message Span { bytes trace_id = 1; bytes parent_id = 2; bytes id = 3; int32 kind = 4; string name = 5;
      fixed64 timestamp = 6; uint64 duration = 7; Endpoint local_endpoint = 8; uint32 unknown = 99; fixed64 bad_name = 55; }
    message WrongName { bytes trace_id = 1; bytes id = 3; fixed64 name = 5; }
    message ListOfSpans { repeated Span spans = 1; repeated WrongName wrong = 2; }
    message WrongList { repeated WrongName spans = 1; }
    message PortAsText { string service_name = 1; string port = 4; }
    message WrongTypes { bytes trace_id = 1; bytes parent_id = 2; bytes id = 3; string kind = 4; fixed64 name = 5;
      uint64 timestamp = 6; string duration = 7; Endpoint local_endpoint = 8; PortAsText remote_endpoint = 9; string debug = 12; }
    message WrongTypesList { repeated WrongTypes spans = 1; }`).root;
  const List = root.lookupType('ListOfSpans');
  const WrongList = root.lookupType('WrongList');
  const tid = Buffer.from(TRACE, 'hex');
  const sid = Buffer.from('a2fb4a1d1a96d312', 'hex');

  it('proto3: wrong id lengths and huge durations are dropped by index; negative times are absent; unknown fields and kinds are skipped', () => {
    const bytes = List.encode(
      List.fromObject({
        spans: [
          { traceId: tid, id: sid, name: 'get', timestamp: 1, duration: 2, unknown: 7, badName: 3 },
          { traceId: tid.subarray(0, 4), id: sid },
          { traceId: tid, id: sid.subarray(0, 7) },
          { traceId: tid, id: sid, parentId: Buffer.alloc(9, 1) },
          { traceId: tid, id: sid, kind: 9 },
          // -1 as int64 (the field's type in zipkin.proto): absent, as Zipkin's Span.Builder clamps it.
          { traceId: tid, id: sid, duration: '18446744073709551615', timestamp: '18446744073709551615' },
          { traceId: tid, id: sid, localEndpoint: { serviceName: 'SVC', ipv4: Buffer.from([1, 2, 3]), port: -1 } },
          // 2^60 µs: positive, but beyond what a double holds exactly.
          { traceId: tid, id: sid, duration: '1152921504606846976' },
        ],
        wrong: [{ traceId: tid, id: sid, name: 5 }],
      }),
    ).finish();
    const r = decodeSpans(bytes);
    expect(r).toMatchObject({
      ok: true,
      encoding: 'PROTO3',
      spans: [
        good,
        { traceId: TRACE, id: 'a2fb4a1d1a96d312' },
        { traceId: TRACE, id: 'a2fb4a1d1a96d312' },
        { traceId: TRACE, id: 'a2fb4a1d1a96d312', localEndpoint: { serviceName: 'svc' } },
      ],
      dropped: [
        { index: 1, reason: 'bad_trace_id' },
        { index: 2, reason: 'bad_id' },
        { index: 3, reason: 'bad_parent_id' },
        { index: 7, reason: 'bad_duration' },
      ],
    });
    expect(r.ok && r.spans[2]).toEqual({ traceId: TRACE, id: 'a2fb4a1d1a96d312' });
    // Kind 9 (unknown to this schema) left the span without kind.
    expect(r.ok && r.spans[1]).not.toHaveProperty('kind');
  });

  it('proto3: a known field with the wrong wire type is skipped, as Zipkin skips it, and the span keeps the rest', () => {
    const wrong = root.lookupType('WrongTypesList').encode({
      spans: [
        {
          traceId: tid,
          parentId: Buffer.from('0000000000000001', 'hex'),
          id: sid,
          kind: 'SERVER',
          name: 5,
          timestamp: 1_700_000_000_000_000,
          duration: '10',
          localEndpoint: { serviceName: 'web', port: 80 },
          remoteEndpoint: { serviceName: 'db', port: '5432' },
          debug: 'yes',
        },
      ],
    });
    const bytes = Buffer.concat([encodeProto3([good]), wrong.finish(), encodeProto3([good])]);
    const r = decodeSpans(bytes);
    expect(r).toEqual({
      ok: true,
      encoding: 'PROTO3',
      dropped: [],
      spans: [
        good,
        {
          traceId: TRACE,
          parentId: '0000000000000001',
          id: 'a2fb4a1d1a96d312',
          localEndpoint: { serviceName: 'web', port: 80 },
          remoteEndpoint: { serviceName: 'db' },
        },
        good,
      ],
    });
    // The same span through a WrongName message too (name as fixed64).
    const named = decodeSpans(WrongList.encode(WrongList.fromObject({ spans: [{ traceId: tid, id: sid, name: 5 }] })).finish());
    expect(named).toMatchObject({ ok: true, spans: [{ traceId: TRACE, id: 'a2fb4a1d1a96d312' }], dropped: [] });
  });

  it('proto3: a field running past the end of its nested message drops that span only', () => {
    const abcde = [0x61, 0x62, 0x63, 0x64, 0x65];
    const ts = [1, 0, 0, 0, 0, 0, 0, 0];
    // A span field (tag byte), the content of its nested message, and a
    // declared length that ends inside the content's last field.
    const damaged: [string, number, number[], number][] = [
      ['local endpoint with a 5-byte service name', 0x42, [0x0a, 0x05, ...abcde], 2],
      ['remote endpoint with a 5-byte service name', 0x4a, [0x0a, 0x05, ...abcde], 2],
      ['endpoint with a 4-byte ipv4', 0x42, [0x12, 0x04, 1, 2, 3, 4], 2],
      ['endpoint with a 2-byte port varint', 0x42, [0x20, 0x80, 0x01], 2],
      ['annotation with a 5-byte value', 0x52, [0x09, ...ts, 0x12, 0x05, ...abcde], 11],
      ['annotation with a fixed64 timestamp', 0x52, [0x12, 0x01, 0x78, 0x09, ...ts], 4],
      ['tag entry with a 5-byte key', 0x5a, [0x0a, 0x05, ...abcde], 2],
      ['tag entry with a 5-byte value', 0x5a, [0x0a, 0x01, 0x6b, 0x12, 0x05, ...abcde], 5],
    ];
    const goodBytes = encodeProto3([good]);
    const spanOf = (field: number, content: number[], length: number): Buffer => {
      const bytes = Buffer.concat([Buffer.from([0x0a, 0x10]), tid, Buffer.from([0x1a, 0x08]), sid, Buffer.from([field, length, ...content])]);
      return Buffer.concat([Buffer.from([0x0a, bytes.length]), bytes]);
    };
    for (const [label, field, content, length] of damaged) {
      const r = decodeSpans(Buffer.concat([spanOf(field, content, length), goodBytes]));
      expect(r, label).toMatchObject({ ok: true, spans: [good], dropped: [{ index: 0, reason: 'bad_field_type' }] });
      // The same bytes with the length told right are a good span.
      const ok = decodeSpans(Buffer.concat([goodBytes, spanOf(field, content, content.length)]));
      expect(ok, label).toMatchObject({ ok: true, dropped: [] });
      expect(ok.ok && ok.spans.length, label).toBe(2);
    }
  });
});

describe('encoders', () => {
  it('encodeProto3 throws a TypeError naming the span for ids it cannot encode', () => {
    expect(() => encodeProto3([good, { ...good, id: 'xyz' }])).toThrow(/span 1 id/);
    expect(() => encodeProto3([{ ...good, traceId: 'abc' }])).toThrow(TypeError);
    expect(() => encodeProto3([{ ...good, localEndpoint: { ipv4: 'nope' } }])).toThrow(/ipv4/);
  });

  it('encodeProto3 writes nested lengths correctly around the 1- and 2-byte varint boundaries', () => {
    for (const size of [0, 1, 100, 110, 120, 127, 128, 200, 16_300, 16_383, 16_384, 20_000]) {
      const span: Span = { ...good, name: 'n'.repeat(size), localEndpoint: { serviceName: 's'.repeat(size) }, tags: { k: 'v'.repeat(size) } };
      const r = decodeSpans(encodeProto3([span, good]));
      const expected = { ...span };
      if (size === 0) {
        delete expected.name;
        delete expected.localEndpoint;
      }
      expect(r).toMatchObject({ ok: true, spans: [expected, good], dropped: [] });
    }
  });
});
