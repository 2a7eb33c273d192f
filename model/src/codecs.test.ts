import { describe, it, expect } from 'vitest';
import protobuf from 'protobufjs';
import { decodeSpans, encodeJsonV2, encodeProto3, type Span } from './index.js';
import { API_EXAMPLE, V1_CLIENT_AND_SERVER, ZIPKIN_TEST_SPANS } from './fixtures/zipkin-examples.js';
import { realisticSpans } from './bench/realistic-spans.js';

// An independent schema with the field numbers of shared/reference/zipkin.proto,
// so protobufjs (not our hand-written codec) produces and checks the bytes.
const SCHEMA = `
syntax = "proto3";
package check;
message Endpoint { string service_name = 1; bytes ipv4 = 2; bytes ipv6 = 3; int32 port = 4; }
message Annotation { fixed64 timestamp = 1; string value = 2; }
message Span {
  bytes trace_id = 1; bytes parent_id = 2; bytes id = 3;
  enum Kind { SPAN_KIND_UNSPECIFIED = 0; CLIENT = 1; SERVER = 2; PRODUCER = 3; CONSUMER = 4; }
  Kind kind = 4; string name = 5; fixed64 timestamp = 6; uint64 duration = 7;
  Endpoint local_endpoint = 8; Endpoint remote_endpoint = 9;
  repeated Annotation annotations = 10; map<string, string> tags = 11;
  bool debug = 12; bool shared = 13;
}
message ListOfSpans { repeated Span spans = 1; }
`;
const root = protobuf.parse(SCHEMA, { keepCase: false }).root;
const ListOfSpans = root.lookupType('check.ListOfSpans');

const hexBytes = (hex: string): Buffer => Buffer.from(hex, 'hex');
function ipBytes(ip: string): Buffer {
  if (ip.includes('.')) return Buffer.from(ip.split('.').map(Number));
  // Only the addresses used in these tests: expand '::' by hand.
  const [head = '', tail = ''] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return Buffer.from(groups.map((g) => g.padStart(4, '0')).join(''), 'hex');
}

/** A span as the plain object protobufjs.fromObject takes. */
function toProtobufJs(s: Span): Record<string, unknown> {
  const ep = (e: Span['localEndpoint']) =>
    e && {
      serviceName: e.serviceName,
      ipv4: e.ipv4 ? ipBytes(e.ipv4) : undefined,
      ipv6: e.ipv6 ? ipBytes(e.ipv6) : undefined,
      port: e.port,
    };
  return {
    traceId: hexBytes(s.traceId),
    parentId: s.parentId ? hexBytes(s.parentId) : undefined,
    id: hexBytes(s.id),
    kind: s.kind,
    name: s.name,
    timestamp: s.timestamp,
    duration: s.duration,
    localEndpoint: ep(s.localEndpoint),
    remoteEndpoint: ep(s.remoteEndpoint),
    annotations: s.annotations,
    tags: s.tags,
    debug: s.debug,
    shared: s.shared,
  };
}

interface PbEndpoint {
  serviceName?: string;
  ipv4?: string;
  ipv6?: string;
  port?: number;
}
interface PbSpan {
  traceId: string;
  parentId?: string;
  id: string;
  kind?: string;
  name?: string;
  timestamp?: number;
  duration?: number;
  localEndpoint?: PbEndpoint;
  remoteEndpoint?: PbEndpoint;
  annotations?: { timestamp: number; value: string }[];
  tags?: Record<string, string>;
  debug?: boolean;
  shared?: boolean;
}

/** Decodes with protobufjs into the same shape as our Span, for comparison. */
function decodeWithProtobufJs(bytes: Uint8Array): Span[] {
  const message = ListOfSpans.decode(bytes);
  const obj = ListOfSpans.toObject(message, { longs: Number, enums: String, bytes: String, defaults: false }) as { spans?: PbSpan[] };
  const b64hex = (b64: string) => Buffer.from(b64, 'base64').toString('hex');
  const ip = (b64: string) => {
    const b = Buffer.from(b64, 'base64');
    return b.length === 4 ? [...b].join('.') : b64hex(b64);
  };
  return (obj.spans ?? []).map((p) => {
    const ep = (e: PbEndpoint | undefined) => {
      if (!e) return undefined;
      const out: PbEndpoint = {};
      if (e.serviceName) out.serviceName = e.serviceName;
      if (e.ipv4) out.ipv4 = ip(e.ipv4);
      if (e.ipv6) out.ipv6 = ip(e.ipv6);
      if (e.port) out.port = e.port;
      return out;
    };
    const s: Span = { traceId: b64hex(p.traceId), id: b64hex(p.id) };
    if (p.parentId) s.parentId = b64hex(p.parentId);
    if (p.kind) s.kind = p.kind as Span['kind'];
    if (p.name) s.name = p.name;
    if (p.timestamp) s.timestamp = p.timestamp;
    if (p.duration) s.duration = p.duration;
    if (p.localEndpoint) s.localEndpoint = ep(p.localEndpoint);
    if (p.remoteEndpoint) s.remoteEndpoint = ep(p.remoteEndpoint);
    if (p.annotations?.length) s.annotations = p.annotations;
    if (p.tags && Object.keys(p.tags).length) s.tags = p.tags;
    if (p.debug) s.debug = true;
    if (p.shared) s.shared = true;
    return s;
  });
}

/** Our Span with IPv6 as full hex, to compare with decodeWithProtobufJs. */
function withIpv6Hex(spans: Span[]): Span[] {
  return spans.map((s) => {
    const fix = (e: Span['localEndpoint']) => (e?.ipv6 ? { ...e, ipv6: ipBytes(e.ipv6).toString('hex') } : e);
    const out: Span = { ...s };
    if (s.localEndpoint) out.localEndpoint = fix(s.localEndpoint);
    if (s.remoteEndpoint) out.remoteEndpoint = fix(s.remoteEndpoint);
    return out;
  });
}

function decodeOk(body: Uint8Array, options = {}) {
  const r = decodeSpans(body, options);
  if (!r.ok) throw new Error(`decode failed: ${r.reason}: ${r.message}`);
  expect(r.dropped).toEqual([]);
  return r;
}

const EXAMPLES: [string, string][] = [
  ['zipkin2-api.yaml example', API_EXAMPLE],
  ["Zipkin's test spans", ZIPKIN_TEST_SPANS],
];

describe.each(EXAMPLES)('%s', (_label, text) => {
  const expected = JSON.parse(text) as Span[];

  it('decodes from JSON v2 exactly as written', () => {
    const r = decodeOk(Buffer.from(text));
    expect(r.encoding).toBe('JSON_V2');
    expect(r.spans).toEqual(expected);
  });

  it('re-encodes to JSON v2 byte for byte as Zipkin writes it (field order, no whitespace)', () => {
    const r = decodeOk(Buffer.from(text));
    expect(encodeJsonV2(r.spans).toString()).toBe(JSON.stringify(expected));
  });

  it('round-trips through proto3', () => {
    const proto = encodeProto3(expected);
    expect(proto[0]).toBe(0x0a);
    const r = decodeOk(proto);
    expect(r.encoding).toBe('PROTO3');
    expect(r.spans).toEqual(expected);
  });

  it('decodes proto3 bytes built independently by protobufjs', () => {
    const message = ListOfSpans.fromObject({ spans: expected.map(toProtobufJs) });
    const bytes = ListOfSpans.encode(message).finish();
    const r = decodeOk(bytes);
    expect(r.encoding).toBe('PROTO3');
    expect(r.spans).toEqual(expected);
  });

  it('encodes proto3 that protobufjs decodes to the same values', () => {
    expect(decodeWithProtobufJs(encodeProto3(expected))).toEqual(withIpv6Hex(expected));
  });

  it('round-trips gzipped, with content-encoding: gzip', async () => {
    const { gzipSync } = await import('node:zlib');
    const r = decodeOk(gzipSync(Buffer.from(text)), { contentEncoding: 'gzip' });
    expect(r.spans).toEqual(expected);
  });
});

describe('realistic spans (10 tags, 2 annotations)', () => {
  const spans = realisticSpans(300, 7);
  it('survive JSON v2 and proto3 round trips, and protobufjs agrees', () => {
    expect(decodeOk(encodeJsonV2(spans)).spans).toEqual(spans);
    const proto = encodeProto3(spans);
    expect(decodeOk(proto).spans).toEqual(spans);
    expect(decodeWithProtobufJs(proto)).toEqual(spans);
    const independent = ListOfSpans.encode(ListOfSpans.fromObject({ spans: spans.map(toProtobufJs) })).finish();
    expect(decodeOk(independent).spans).toEqual(spans);
  });

  it('handles non-ASCII names, tags and very long strings in proto3', () => {
    const odd: Span[] = [
      {
        traceId: 'a'.repeat(32),
        id: 'b'.repeat(16),
        name: 'größe 名前 😀',
        tags: { 'ключ': 'значение', long: 'x'.repeat(70_000), '': 'empty key', empty: '' },
        annotations: [{ timestamp: 1, value: '😀'.repeat(40) }],
        duration: 2 ** 53 - 1,
        timestamp: 2 ** 53 - 1,
        localEndpoint: { serviceName: 'svc', port: 65535 },
      },
    ];
    expect(decodeOk(encodeProto3(odd)).spans).toEqual(odd);
    expect(decodeOk(encodeJsonV2(odd)).spans).toEqual(odd);
    expect(decodeWithProtobufJs(encodeProto3(odd))).toEqual(odd);
  });
});

describe('JSON v1', () => {
  it("converts a v1 span holding client and server sides into Zipkin's two v2 spans", () => {
    const r = decodeOk(Buffer.from(V1_CLIENT_AND_SERVER));
    expect(r.encoding).toBe('JSON_V1');
    const [client, server] = JSON.parse(ZIPKIN_TEST_SPANS) as Span[];
    expect(r.spans).toEqual([client, server]);
  });

  it('gives the data of each service its own span, in the order the services first appear, however many there are', () => {
    const services = Array.from({ length: 3000 }, (_, i) => `svc-${i}`);
    const annotations = services.flatMap((name, i) => [
      { timestamp: 10 + i, value: `a${i}`, endpoint: { serviceName: name.toUpperCase() } },
      { timestamp: 20_000 + i, value: `b${i}`, endpoint: { serviceName: services[(i * 7) % services.length] ?? '' } },
    ]);
    const binaryAnnotations = [{ key: 'k', value: 'v', endpoint: { serviceName: 'svc-2999' } }];
    const r = decodeOk(Buffer.from(JSON.stringify([{ traceId: '1', id: '2', name: 'n', annotations, binaryAnnotations }])));
    // One span per service, in the order each first appears among the annotations.
    expect(r.spans.map((s) => s.localEndpoint?.serviceName)).toEqual([...new Set(annotations.map((a) => a.endpoint.serviceName.toLowerCase()))]);
    expect(r.spans).toHaveLength(services.length);
    const of = (name: string): Span | undefined => r.spans.find((s) => s.localEndpoint?.serviceName === name);
    expect(of('svc-7')?.annotations?.map((a) => a.value)).toEqual(['a7', 'b1']);
    expect(of('svc-2999')?.tags).toEqual({ k: 'v' });
  });

  it('turns a lone address annotation into the kind and remote endpoint (late flush)', () => {
    const body = JSON.stringify([
      {
        traceId: '1',
        parentId: '1',
        id: '2',
        name: 'foo',
        binaryAnnotations: [{ key: 'sa', value: true, endpoint: { serviceName: 'backend', ipv4: '192.168.99.101', port: 9000 } }],
      },
    ]);
    expect(decodeOk(Buffer.from(body)).spans).toEqual([
      {
        traceId: '0000000000000001',
        parentId: '0000000000000001',
        id: '0000000000000002',
        kind: 'CLIENT',
        name: 'foo',
        remoteEndpoint: { serviceName: 'backend', ipv4: '192.168.99.101', port: 9000 },
      },
    ]);
  });

  it('treats a local span with an empty "lc" as a local endpoint only, and a lone server side as shared', () => {
    const body = JSON.stringify([
      {
        traceId: '1',
        id: '2',
        name: 'local',
        timestamp: 10,
        duration: 5,
        binaryAnnotations: [{ key: 'lc', value: '', endpoint: { serviceName: 'frontend', ipv4: '127.0.0.1' } }],
      },
      {
        traceId: '1',
        id: '3',
        name: 'get',
        annotations: [
          { timestamp: 20, value: 'sr', endpoint: { serviceName: 'backend' } },
          { timestamp: 50, value: 'ss', endpoint: { serviceName: 'backend' } },
        ],
      },
    ]);
    expect(decodeOk(Buffer.from(body)).spans).toEqual([
      { traceId: '0000000000000001', id: '0000000000000002', name: 'local', timestamp: 10, duration: 5, localEndpoint: { serviceName: 'frontend', ipv4: '127.0.0.1' } },
      { traceId: '0000000000000001', id: '0000000000000003', kind: 'SERVER', name: 'get', timestamp: 20, duration: 30, localEndpoint: { serviceName: 'backend' }, shared: true },
    ]);
  });
  const frontend = { serviceName: 'frontend', ipv4: '127.0.0.1' };
  const backend = { serviceName: 'backend', ipv4: '192.168.99.101', port: 9000 };
  const kafka = { serviceName: 'kafka' };
  const ids = { traceId: '7180c278b62e8f6a216a2aea45d08fc9', parentId: '6b221d5bc9e6496c', id: '5b4185666d50f68b' };

  it('splits a v1 messaging span into producer and shared consumer, timed by ws and wr (Zipkin producerAndConsumer)', () => {
    const body = JSON.stringify([
      {
        ...ids,
        name: 'whatev',
        annotations: [
          { timestamp: 1472470996199000, value: 'ms', endpoint: frontend },
          { timestamp: 1472470996238000, value: 'ws', endpoint: frontend },
          { timestamp: 1472470996403000, value: 'wr', endpoint: backend },
          { timestamp: 1472470996406000, value: 'mr', endpoint: backend },
        ],
        binaryAnnotations: [{ key: 'ma', value: true, endpoint: kafka }],
      },
    ]);
    expect(decodeOk(Buffer.from(body)).spans).toEqual([
      { ...ids, kind: 'PRODUCER', name: 'whatev', timestamp: 1472470996199000, duration: 39000, localEndpoint: frontend, remoteEndpoint: kafka },
      { ...ids, kind: 'CONSUMER', name: 'whatev', timestamp: 1472470996403000, duration: 3000, localEndpoint: backend, remoteEndpoint: kafka, shared: true },
    ]);
  });

  it('gives data of each endpoint its own span, and data without an endpoint to the first (Zipkin dataMissingEndpointGoesOnFirstSpan)', () => {
    const body = JSON.stringify([
      {
        traceId: '216a2aea45d08fc9',
        id: '5b4185666d50f68b',
        name: 'missing',
        annotations: [
          { timestamp: 1472470996199000, value: 'foo', endpoint: frontend },
          { timestamp: 1472470996238000, value: 'bar', endpoint: frontend },
          { timestamp: 1472470996250000, value: 'baz', endpoint: backend },
          { timestamp: 1472470996350000, value: 'qux', endpoint: backend },
          { timestamp: 1472470996403000, value: 'missing' },
        ],
        binaryAnnotations: [
          { key: 'foo', value: 'bar', endpoint: frontend },
          { key: 'baz', value: 'qux', endpoint: backend },
          { key: 'missing', value: '' },
        ],
      },
    ]);
    const common = { traceId: '216a2aea45d08fc9', id: '5b4185666d50f68b', name: 'missing' };
    expect(decodeOk(Buffer.from(body)).spans).toEqual([
      {
        ...common,
        localEndpoint: frontend,
        annotations: [
          { timestamp: 1472470996199000, value: 'foo' },
          { timestamp: 1472470996238000, value: 'bar' },
          { timestamp: 1472470996403000, value: 'missing' },
        ],
        tags: { foo: 'bar', missing: '' },
      },
      {
        ...common,
        localEndpoint: backend,
        annotations: [
          { timestamp: 1472470996250000, value: 'baz' },
          { timestamp: 1472470996350000, value: 'qux' },
        ],
        tags: { baz: 'qux' },
      },
    ]);
  });

  it('keeps a binary annotation keyed "__proto__" as a tag, as JSON v2 keeps such a tag', () => {
    const body = `[{"traceId":"216a2aea45d08fc9","id":"5b4185666d50f68b","name":"get","binaryAnnotations":[{"key":"__proto__","value":"p"},{"key":"k","value":"v"}]}]`;
    const [span] = decodeOk(Buffer.from(body)).spans;
    expect(Object.keys(span?.tags ?? {})).toEqual(['__proto__', 'k']);
    expect(JSON.parse(JSON.stringify(span?.tags))).toEqual(JSON.parse('{"__proto__":"p","k":"v"}'));
  });

  it('reads addresses alone as local and remote endpoint without a kind, and a core annotation without endpoint as an event', () => {
    const body = JSON.stringify([
      {
        ...ids,
        name: 'get',
        timestamp: 1472470996199000,
        duration: 207000,
        binaryAnnotations: [
          { key: 'ca', value: true, endpoint: frontend },
          { key: 'sa', value: true, endpoint: backend },
        ],
      },
      { traceId: '1', parentId: '1', id: '2', name: 'foo', timestamp: 1472470996199000, annotations: [{ timestamp: 1472470996199000, value: 'sr' }] },
    ]);
    expect(decodeOk(Buffer.from(body)).spans).toEqual([
      { ...ids, name: 'get', timestamp: 1472470996199000, duration: 207000, localEndpoint: frontend, remoteEndpoint: backend },
      {
        traceId: '0000000000000001',
        parentId: '0000000000000001',
        id: '0000000000000002',
        name: 'foo',
        timestamp: 1472470996199000,
        annotations: [{ timestamp: 1472470996199000, value: 'sr' }],
      },
    ]);
  });
});
