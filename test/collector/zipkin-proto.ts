/**
 * A minimal proto3 writer for zipkin.proto's ListOfSpans, written apart from
 * @tracehouse/model's codec so the tests do not check the decoder against
 * itself. Field numbers follow zipkin.proto: Span 1 trace_id, 2 parent_id,
 * 3 id, 4 kind, 5 name, 6 timestamp (fixed64), 7 duration, 8 local_endpoint,
 * 9 remote_endpoint, 10 annotations, 11 tags, 12 debug, 13 shared;
 * Endpoint 1 service_name, 2 ipv4, 3 ipv6, 4 port; Annotation 1 timestamp
 * (fixed64), 2 value; ListOfSpans 1 spans.
 */
const KIND = { CLIENT: 1, SERVER: 2, PRODUCER: 3, CONSUMER: 4 } as const;

export interface ProtoSpan {
  traceId: string;
  parentId?: string;
  id: string;
  kind?: keyof typeof KIND;
  name?: string;
  timestamp?: number;
  duration?: number;
  localEndpoint?: { serviceName?: string; ipv4?: string; port?: number };
  remoteEndpoint?: { serviceName?: string; ipv4?: string; port?: number };
  annotations?: Array<{ timestamp: number; value: string }>;
  tags?: Record<string, string>;
  debug?: boolean;
  shared?: boolean;
}

function varint(value: number | bigint): Buffer {
  let v = BigInt(value);
  const out: number[] = [];
  while (v > 0x7fn) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

const key = (field: number, wire: number): Buffer => varint((field << 3) | wire);
const bytesField = (field: number, value: Buffer): Buffer => Buffer.concat([key(field, 2), varint(value.length), value]);
const stringField = (field: number, value: string): Buffer => bytesField(field, Buffer.from(value, 'utf8'));
const varintField = (field: number, value: number): Buffer => Buffer.concat([key(field, 0), varint(value)]);
function fixed64Field(field: number, value: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(value));
  return Buffer.concat([key(field, 1), b]);
}

function endpoint(e: NonNullable<ProtoSpan['localEndpoint']>): Buffer {
  const parts: Buffer[] = [];
  if (e.serviceName !== undefined) parts.push(stringField(1, e.serviceName));
  if (e.ipv4 !== undefined) parts.push(bytesField(2, Buffer.from(e.ipv4.split('.').map(Number))));
  if (e.port !== undefined) parts.push(varintField(4, e.port));
  return Buffer.concat(parts);
}

function span(s: ProtoSpan): Buffer {
  const parts: Buffer[] = [bytesField(1, Buffer.from(s.traceId, 'hex'))];
  if (s.parentId !== undefined) parts.push(bytesField(2, Buffer.from(s.parentId, 'hex')));
  parts.push(bytesField(3, Buffer.from(s.id, 'hex')));
  if (s.kind !== undefined) parts.push(varintField(4, KIND[s.kind]));
  if (s.name !== undefined) parts.push(stringField(5, s.name));
  if (s.timestamp !== undefined) parts.push(fixed64Field(6, s.timestamp));
  if (s.duration !== undefined) parts.push(varintField(7, s.duration));
  if (s.localEndpoint !== undefined) parts.push(bytesField(8, endpoint(s.localEndpoint)));
  if (s.remoteEndpoint !== undefined) parts.push(bytesField(9, endpoint(s.remoteEndpoint)));
  for (const a of s.annotations ?? []) parts.push(bytesField(10, Buffer.concat([fixed64Field(1, a.timestamp), stringField(2, a.value)])));
  for (const [k, v] of Object.entries(s.tags ?? {})) parts.push(bytesField(11, Buffer.concat([stringField(1, k), stringField(2, v)])));
  if (s.debug === true) parts.push(varintField(12, 1));
  if (s.shared === true) parts.push(varintField(13, 1));
  return Buffer.concat(parts);
}

/** ListOfSpans bytes, as Zipkin's PROTO3 encoding puts on the wire. */
export function listOfSpans(spans: readonly ProtoSpan[]): Buffer {
  return Buffer.concat(spans.map((s) => bytesField(1, span(s))));
}
