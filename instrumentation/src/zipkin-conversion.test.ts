import { SpanKind, SpanStatusCode, context, trace, type Tracer } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { decodeSpans } from '@tracehouse/model';
import { describe, expect, it } from 'vitest';
import { MAPPING_TAG_KEYS, ZipkinSpanConverter, attributeToTag } from './zipkin-conversion.js';

interface Sdk {
  tracer: Tracer;
  finished: () => ReadableSpan[];
}

function sdk(
  options: {
    resource?: Record<string, string>;
    attributeCountLimit?: number;
    eventCountLimit?: number;
    linkCountLimit?: number;
    attributePerEventCountLimit?: number;
  } = {},
): Sdk {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes(options.resource ?? { 'service.name': 'checkout' }),
    spanProcessors: [new SimpleSpanProcessor(memory)],
    spanLimits: {
      ...(options.attributeCountLimit === undefined ? {} : { attributeCountLimit: options.attributeCountLimit }),
      ...(options.eventCountLimit === undefined ? {} : { eventCountLimit: options.eventCountLimit }),
      ...(options.linkCountLimit === undefined ? {} : { linkCountLimit: options.linkCountLimit }),
      ...(options.attributePerEventCountLimit === undefined ? {} : { attributePerEventCountLimit: options.attributePerEventCountLimit }),
    },
  });
  return { tracer: provider.getTracer('my-lib', '1.2.3'), finished: () => memory.getFinishedSpans() };
}

function only(finished: ReadableSpan[]): ReadableSpan {
  expect(finished).toHaveLength(1);
  return finished[0] as ReadableSpan;
}

const converter = new ZipkinSpanConverter();

describe('ZipkinSpanConverter', () => {
  it('maps ids, name, kind, times in microseconds and the service name from the resource', () => {
    const { tracer, finished } = sdk();
    const start = new Date('2026-01-02T03:04:05.678Z');
    const parent = tracer.startSpan('parent', { startTime: start });
    const child = tracer.startSpan(
      'GET /cart',
      { kind: SpanKind.SERVER, startTime: [start.getTime() / 1000, 123_456] },
      trace.setSpan(context.active(), parent),
    );
    child.end([start.getTime() / 1000 + 1, 250_123_900]);
    parent.end();
    const [childSpan, parentSpan] = finished() as [ReadableSpan, ReadableSpan];

    const zipkin = converter.convert(childSpan);
    expect(zipkin.traceId).toBe(parent.spanContext().traceId);
    expect(zipkin.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(zipkin.id).toBe(child.spanContext().spanId);
    expect(zipkin.parentId).toBe(parent.spanContext().spanId);
    expect(zipkin.name).toBe('GET /cart');
    expect(zipkin.kind).toBe('SERVER');
    expect(zipkin.timestamp).toBe(start.getTime() * 1000 + 123);
    // 1 s + 250 123 900 ns - 123 456 ns = 1 250 000.444 µs -> whole microseconds
    expect(zipkin.duration).toBe(1_250_000);
    expect(zipkin.localEndpoint).toEqual({ serviceName: 'checkout' });

    const root = converter.convert(parentSpan);
    expect(root.parentId).toBeUndefined();
    expect(root.kind).toBeUndefined(); // INTERNAL has no Zipkin kind
    expect(root.remoteEndpoint).toBeUndefined();
  });

  it('maps every OpenTelemetry kind', () => {
    const { tracer, finished } = sdk();
    for (const kind of [SpanKind.INTERNAL, SpanKind.SERVER, SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER]) {
      tracer.startSpan('k', { kind }).end();
    }
    expect(finished().map((s) => converter.convert(s).kind)).toEqual([
      undefined,
      'SERVER',
      'CLIENT',
      'PRODUCER',
      'CONSUMER',
    ]);
  });

  it('turns attributes into tags, stringified as the specification says, and adds the scope', () => {
    const { tracer, finished } = sdk();
    tracer
      .startSpan('s', {
        attributes: {
          'http.method': 'GET',
          'http.status_code': 200,
          ratio: 0.25,
          cached: false,
          ids: [1, 2, 3],
          names: ['a', 'b"c'],
          flags: [true, false],
        },
      })
      .end();
    const tags = converter.convert(only(finished())).tags;
    expect(tags).toEqual({
      'http.method': 'GET',
      'http.status_code': '200',
      ratio: '0.25',
      cached: 'false',
      ids: '[1,2,3]',
      names: '["a","b\\"c"]',
      flags: '[true,false]',
      'otel.scope.name': 'my-lib',
      'otel.scope.version': '1.2.3',
      // The deprecated aliases, which the specification still requires.
      'otel.library.name': 'my-lib',
      'otel.library.version': '1.2.3',
    });
  });

  it('reports status as otel.status_code and error, never for UNSET', () => {
    const { tracer, finished } = sdk();
    tracer.startSpan('unset').end();
    const ok = tracer.startSpan('ok', { attributes: { error: false } });
    ok.setStatus({ code: SpanStatusCode.OK });
    ok.end();
    const failed = tracer.startSpan('failed');
    failed.setStatus({ code: SpanStatusCode.ERROR, message: 'connection refused' });
    failed.end();
    const bare = tracer.startSpan('bare-error');
    bare.setStatus({ code: SpanStatusCode.ERROR });
    bare.end();
    const [unset, okSpan, failedSpan, bareSpan] = finished().map((s) => converter.convert(s).tags ?? {});

    expect(unset).not.toHaveProperty('otel.status_code');
    expect(unset).not.toHaveProperty('error');
    expect(okSpan?.['otel.status_code']).toBe('OK');
    expect(okSpan).not.toHaveProperty('error'); // a boolean-looking error tag would mark the span failed
    expect(failedSpan?.['otel.status_code']).toBe('ERROR');
    expect(failedSpan?.error).toBe('connection refused');
    expect(bareSpan?.['otel.status_code']).toBe('ERROR');
    expect(bareSpan?.error).toBe('');
  });

  it('lets the status alone decide error and otel.status_code, whatever the attributes say', () => {
    const { tracer, finished } = sdk();
    const ok = tracer.startSpan('ok', { attributes: { error: 'true', 'otel.status_code': 'ERROR' } });
    ok.setStatus({ code: SpanStatusCode.OK });
    ok.end();
    tracer.startSpan('unset', { attributes: { error: 'timeout', 'otel.status_code': 'ERROR', kept: 'yes' } }).end();
    const failed = tracer.startSpan('failed', { attributes: { error: 'false' } });
    failed.setStatus({ code: SpanStatusCode.ERROR, message: 'refused' });
    failed.end();
    const [okTags, unsetTags, failedTags] = finished().map((s) => converter.convert(s).tags ?? {});

    // Zipkin would show a span with any error tag as failed; the status said it was not.
    expect(okTags).toMatchObject({ 'otel.status_code': 'OK' });
    expect(okTags).not.toHaveProperty('error');
    expect(unsetTags).toMatchObject({ kept: 'yes' });
    expect(unsetTags).not.toHaveProperty('error');
    expect(unsetTags).not.toHaveProperty('otel.status_code');
    expect(failedTags).toMatchObject({ 'otel.status_code': 'ERROR', error: 'refused' });
  });

  it('turns events into annotations, with attributes in the annotation value', () => {
    const { tracer, finished } = sdk();
    const span = tracer.startSpan('s', { startTime: 1_700_000_000_000 });
    span.addEvent('cache.miss', 1_700_000_000_005);
    span.addEvent('retry', { attempt: 2, reason: 'timeout' }, 1_700_000_000_007);
    span.end(1_700_000_000_010);
    const zipkin = converter.convert(only(finished()));
    expect(zipkin.annotations).toEqual([
      { timestamp: 1_700_000_000_005_000, value: 'cache.miss' },
      { timestamp: 1_700_000_000_007_000, value: '"retry":{"attempt":"2","reason":"timeout"}' },
    ]);
    expect(zipkin.duration).toBe(10_000);
  });

  it('leaves out an event named "" without attributes (an empty annotation would cost the span), keeps the rest', () => {
    const { tracer, finished } = sdk();
    const span = tracer.startSpan('s', { startTime: 1_700_000_000_000 });
    span.addEvent('', 1_700_000_000_001);
    span.addEvent('', { attempt: 2 }, 1_700_000_000_002);
    span.addEvent('retry', 1_700_000_000_003);
    span.end(1_700_000_000_010);
    const lonely = tracer.startSpan('t');
    lonely.addEvent('');
    lonely.end();
    const [withOthers, alone] = finished().map((s) => converter.convert(s));
    expect(withOthers?.annotations).toEqual([
      { timestamp: 1_700_000_000_002_000, value: '"":{"attempt":"2"}' },
      { timestamp: 1_700_000_000_003_000, value: 'retry' },
    ]);
    expect(alone?.annotations).toBeUndefined();
    // What was left out is counted, as the events the SDK dropped are.
    expect(withOthers?.tags?.['otel.dropped_events_count']).toBe('1');
    expect(alone?.tags?.['otel.dropped_events_count']).toBe('1');
    // The collector takes both spans.
    expect(decodeSpans(Buffer.from(JSON.stringify([withOthers, alone])))).toMatchObject({ ok: true, dropped: [] });
  });

  it('names a resource without service.name as the SDK default resource does: unknown_service:<process>', () => {
    const { tracer, finished } = sdk({ resource: { 'host.name': 'h1' } });
    tracer.startSpan('s').end();
    expect(converter.convert(only(finished())).localEndpoint).toEqual({ serviceName: `unknown_service:${process.argv0}` });
  });

  it('leaves annotations and remote endpoint out when there are none', () => {
    const { tracer, finished } = sdk();
    tracer.startSpan('plain', { kind: SpanKind.CLIENT }).end();
    const zipkin = converter.convert(only(finished()));
    expect(zipkin.annotations).toBeUndefined();
    expect(zipkin.remoteEndpoint).toBeUndefined();
    expect(JSON.parse(JSON.stringify(zipkin))).not.toHaveProperty('annotations');
    expect(JSON.parse(JSON.stringify(zipkin))).not.toHaveProperty('remoteEndpoint');
  });

  it('counts dropped attributes and events in tags', () => {
    const { tracer, finished } = sdk({ attributeCountLimit: 2, eventCountLimit: 1 });
    const span = tracer.startSpan('s', { attributes: { a: 1, b: 2, c: 3, d: 4 } });
    span.addEvent('one');
    span.addEvent('two');
    span.addEvent('three');
    span.end();
    const tags = converter.convert(only(finished())).tags ?? {};
    expect(tags['otel.dropped_attributes_count']).toBe('2');
    expect(tags['otel.dropped_events_count']).toBe('2');
    expect(tags).not.toHaveProperty('otel.dropped_links_count');
  });

  it("counts an event's dropped attributes in its annotation", () => {
    const { tracer, finished } = sdk({ attributePerEventCountLimit: 1 });
    const span = tracer.startSpan('s');
    span.addEvent('retry', { attempt: 2, delayMs: 50, reason: 'timeout' });
    span.addEvent('kept', { only: true });
    span.end();
    const annotations = converter.convert(only(finished())).annotations ?? [];
    expect(annotations.map((a) => a.value)).toEqual([
      '"retry":{"attempt":"2","otel.dropped_attributes_count":"2"}',
      '"kept":{"only":"true"}',
    ]);
  });

  it('writes exactly the tags MAPPING_TAG_KEYS lists (the encoder relies on that list)', () => {
    const { tracer, finished } = sdk({ attributeCountLimit: 1, eventCountLimit: 1, linkCountLimit: 1 });
    const span = tracer.startSpan('s', { attributes: { a: 1, b: 2 } });
    span.addEvent('one');
    span.addEvent('two');
    span.addLink({ context: span.spanContext() });
    span.addLink({ context: span.spanContext() });
    span.setStatus({ code: SpanStatusCode.ERROR, message: 'boom' });
    span.end();
    const tags = converter.convert(only(finished())).tags ?? {};
    const added = Object.keys(tags).filter((key) => key !== 'a');
    expect(added.sort()).toEqual([...MAPPING_TAG_KEYS].sort());
  });

  it('chooses the remote endpoint of outgoing spans by the specification rank', () => {
    const { tracer, finished } = sdk();
    const client = (attributes: Record<string, string | number>): void =>
      tracer.startSpan('c', { kind: SpanKind.CLIENT, attributes }).end();
    client({ 'peer.service': 'Payments', 'server.address': 'pay.internal', 'server.port': 8443 });
    client({ 'server.address': 'pay.internal', 'server.port': 8443, 'net.peer.name': 'other' });
    client({ 'net.peer.name': 'db.local', 'net.peer.port': 5432, 'net.sock.peer.addr': '10.0.0.7' });
    client({ 'network.peer.address': '10.1.2.3', 'network.peer.port': 9000 });
    client({ 'net.sock.peer.addr': '::ffff:127.0.0.1', 'net.sock.peer.port': 6379 });
    client({ 'server.address': '2001:db8::1', 'server.port': 443 });
    client({ 'net.peer.ip': '192.168.1.20', 'net.peer.port': '8080' });
    // net.peer.ip is not in the table: every ranked attribute, down to db.name (11), comes first.
    client({ 'peer.hostname': 'h.example', 'net.peer.ip': '10.0.0.9' });
    client({ 'db.name': 'inventory', 'net.peer.ip': '10.0.0.9', 'net.peer.port': 5432 });
    tracer.startSpan('p', { kind: SpanKind.PRODUCER, attributes: { 'db.name': 'orders' } }).end();
    tracer.startSpan('i', { kind: SpanKind.INTERNAL, attributes: { 'peer.service': 'x' } }).end();

    expect(finished().map((s) => converter.convert(s).remoteEndpoint)).toEqual([
      { serviceName: 'payments' },
      { serviceName: 'pay.internal', port: 8443 },
      { serviceName: 'db.local', port: 5432 },
      { ipv4: '10.1.2.3', port: 9000 },
      { ipv4: '127.0.0.1', port: 6379 },
      { ipv6: '2001:db8::1', port: 443 },
      { ipv4: '192.168.1.20', port: 8080 },
      { serviceName: 'h.example' },
      { serviceName: 'inventory' },
      { serviceName: 'orders' },
      undefined,
    ]);
  });

  it("names a database or broker reached by address (or not at all) by its system, so that Zipkin's dependency graph links it", () => {
    const { tracer, finished } = sdk();
    const span = (kind: SpanKind, attributes: Record<string, string | number>): void => tracer.startSpan('s', { kind, attributes }).end();
    span(SpanKind.CLIENT, { 'db.system.name': 'postgresql', 'server.address': '127.0.0.1', 'server.port': 5432 });
    span(SpanKind.CLIENT, { 'db.system': 'redis', 'network.peer.address': '::1', 'network.peer.port': 6379 });
    span(SpanKind.PRODUCER, { 'messaging.system': 'rabbitmq', 'server.address': '10.0.0.5', 'server.port': 5672 });
    span(SpanKind.CONSUMER, { 'messaging.system': 'rabbitmq', 'server.address': '10.0.0.5' });
    span(SpanKind.CLIENT, { 'db.system.name': 'sqlite' });
    // A host name or peer.service names the peer better than its system.
    span(SpanKind.CLIENT, { 'db.system.name': 'postgresql', 'server.address': 'Orders-DB.internal', 'server.port': 5432 });
    span(SpanKind.CLIENT, { 'db.system.name': 'mysql', 'peer.service': 'billing-db', 'server.address': '10.0.0.9' });
    // Not a caller's system: a server span's remote side is its caller.
    span(SpanKind.SERVER, { 'messaging.system': 'rabbitmq', 'network.peer.address': '10.0.0.7' });

    expect(finished().map((s) => converter.convert(s).remoteEndpoint)).toEqual([
      { serviceName: 'postgresql', ipv4: '127.0.0.1', port: 5432 },
      { serviceName: 'redis', ipv6: '::1', port: 6379 },
      { serviceName: 'rabbitmq', ipv4: '10.0.0.5', port: 5672 },
      { serviceName: 'rabbitmq', ipv4: '10.0.0.5' },
      { serviceName: 'sqlite' },
      { serviceName: 'orders-db.internal', port: 5432 },
      { serviceName: 'billing-db' },
      { ipv4: '10.0.0.7' },
    ]);
  });

  it('takes the remote endpoint of a server span from the caller, never from this server', () => {
    const { tracer, finished } = sdk();
    tracer
      .startSpan('s', {
        kind: SpanKind.SERVER,
        attributes: {
          'server.address': 'localhost',
          'server.port': 8080,
          'net.host.name': 'localhost',
          'client.address': '10.9.8.7',
          'client.port': 51000,
        },
      })
      .end();
    tracer
      .startSpan('s', {
        kind: SpanKind.SERVER,
        attributes: { 'net.host.name': 'localhost', 'net.peer.ip': '::1', 'net.peer.port': 40000 },
      })
      .end();
    expect(finished().map((s) => converter.convert(s).remoteEndpoint)).toEqual([
      { ipv4: '10.9.8.7', port: 51000 },
      { ipv6: '::1', port: 40000 },
    ]);
  });

  it('takes the remote endpoint of a consumer span from the broker it read from, as for a producer', () => {
    const { tracer, finished } = sdk();
    // What instrumentation-amqplib records on both sides of a queue.
    const broker = { 'messaging.system': 'rabbitmq', 'server.address': 'Rabbit', 'server.port': 5672 };
    tracer.startSpan('zipkin publish', { kind: SpanKind.PRODUCER, attributes: broker }).end();
    tracer.startSpan('zipkin process', { kind: SpanKind.CONSUMER, attributes: broker }).end();
    tracer.startSpan('s', { kind: SpanKind.CONSUMER, attributes: { 'peer.service': 'orders-queue', 'server.address': 'rabbit' } }).end();
    expect(finished().map((s) => converter.convert(s).remoteEndpoint)).toEqual([
      { serviceName: 'rabbit', port: 5672 },
      { serviceName: 'rabbit', port: 5672 },
      { serviceName: 'orders-queue' },
    ]);
  });

  it('copies the chosen resource attributes to tags; service.name only as the local endpoint', () => {
    const resource = {
      'service.name': 'Cart',
      'service.namespace': 'shop',
      'service.version': '4.2.0',
      'host.name': 'box-1',
    };
    const { tracer, finished } = sdk({ resource });
    tracer.startSpan('s', { attributes: { 'service.version': 'attribute wins' } }).end();
    const span = only(finished());

    const byDefault = converter.convert(span);
    expect(byDefault.localEndpoint).toEqual({ serviceName: 'Cart' });
    expect(byDefault.tags?.['service.namespace']).toBe('shop');
    expect(byDefault.tags?.['service.version']).toBe('attribute wins');
    expect(byDefault.tags).not.toHaveProperty('host.name');
    expect(byDefault.tags).not.toHaveProperty('service.name');

    const all = new ZipkinSpanConverter({ resourceTags: 'all' }).convert(span);
    expect(all.tags?.['host.name']).toBe('box-1');
    expect(all.tags).not.toHaveProperty('service.name');
    const none = new ZipkinSpanConverter({ resourceTags: 'none' }).convert(span);
    expect(none.tags).not.toHaveProperty('service.namespace');
  });

  it('gives a finished span a duration of at least one microsecond', () => {
    const { tracer, finished } = sdk();
    tracer.startSpan('instant', { startTime: [1_700_000_000, 0] }).end([1_700_000_000, 200]);
    expect(converter.convert(only(finished())).duration).toBe(1);
  });

  it('stringifies attribute values', () => {
    expect(attributeToTag('x')).toBe('x');
    expect(attributeToTag(12.5)).toBe('12.5');
    expect(attributeToTag(true)).toBe('true');
    expect(attributeToTag(['a', null, 'b'])).toBe('["a",null,"b"]');
  });
});
