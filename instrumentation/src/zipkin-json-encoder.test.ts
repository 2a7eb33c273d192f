import { SpanKind, SpanStatusCode, context, trace, type Attributes, type AttributeValue, type HrTime } from '@opentelemetry/api';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
  type TimedEvent,
} from '@opentelemetry/sdk-trace-base';
import { decodeSpans } from '@tracehouse/model';
import { describe, expect, it } from 'vitest';
import { SpanBuffer } from './span-buffer.js';
import { spanEncoder, wireFormat } from './wire-format.js';
import { ZipkinConversionError, ZipkinSpanConverter, addressCacheChars, type ZipkinConversionOptions } from './zipkin-conversion.js';
import { ZipkinJsonEncoder, scopeCacheBytes } from './zipkin-json-encoder.js';
import { seededRandom } from './seeded-random.test.helpers.js';


const rand = seededRandom(20261128);
const systemRand = seededRandom(20261208);
const int = (n: number): number => Math.floor(rand() * n);
const pick = <T,>(items: readonly T[]): T => items[int(items.length)] as T;

const PIECES = [
  'GET', 'http', '/api/cart/42', 'checkout.internal', '10.2.3.4', 'Mozilla/5.0 (X11; Linux x86_64)',
  'quote"inside', 'back\\slash', 'tab\tnew\nline\r', '\u0000\u0001\u001f', '\u007f', 'é', 'naïve café',
  '中文', '😀', '\ud800', '\udc00x', '\u2028\u2029', '', ' ', '{"json":[1,2]}', '</script>', 'a'.repeat(300),
];

function text(): string {
  let out = '';
  const parts = 1 + int(3);
  for (let i = 0; i < parts; i++) out += pick(PIECES);
  return out;
}

const NUMBERS = [0, -0, 1, 7, 200, -42, 65535, 65536, 1.5, -3.25, 1e21, 1e-7, 2 ** 53, 2 ** 53 + 2, -(2 ** 53), Number.MAX_SAFE_INTEGER, NaN, Infinity, -Infinity, 1234567890123456];

function value(): AttributeValue {
  switch (int(7)) {
    case 0:
    case 1:
    case 2:
      return text();
    case 3:
      return pick(NUMBERS);
    case 4:
      return rand() < 0.5;
    case 5:
      return Array.from({ length: int(4) }, () => text());
    default:
      return pick([[1, 2.5, NaN], [true, false], [], ['a', 'b"c']]);
  }
}

const KEYS = [
  'http.request.method', 'url.path', 'server.address', 'server.port', 'peer.service', 'net.peer.name', 'net.peer.port',
  'network.peer.address', 'network.peer.port', 'client.address', 'client.port', 'db.name', 'peer.hostname',
  'unicodé.key', 'key"quote', 'key\\back', 'ctl\u0001key', '',
];
/** Keys the fused path leaves to the reference: they reorder or override tags. */
const RARE_KEYS = ['0', '12', '1a', 'error', 'otel.status_code', 'otel.scope.name', 'otel.library.version', 'otel.dropped_events_count', 'service.version'];

function attributes(): Attributes {
  const out: Attributes = {};
  const count = int(14);
  for (let i = 0; i < count; i++) {
    const key = rand() < 0.05 ? pick(RARE_KEYS) : rand() < 0.7 ? pick(KEYS) : `custom.${text()}`;
    out[key] = value();
  }
  // Remote endpoint candidates with the values the mapping distinguishes.
  if (rand() < 0.5) out[pick(['network.peer.address', 'peer.address', 'net.peer.ip', 'client.address'])] = pick(['10.0.0.1', '::1', '::ffff:10.1.2.3', 'fe80::1%eth0', 'Not.An.IP', '999.1.1.1']);
  // The peer's system, which names a peer known by address only (or not at all). From a random
  // stream of its own, so that the cases drawn from `rand` stay the ones they were.
  if (systemRand() < 0.3) {
    const key = ['db.system.name', 'db.system', 'messaging.system'][Math.floor(systemRand() * 3)] as string;
    out[key] = ['postgresql', 'RabbitMQ', '', 7][Math.floor(systemRand() * 4)];
  }
  if (rand() < 0.5) out[pick(['network.peer.port', 'server.port', 'peer.port', 'client.port'])] = pick([80, '8080', 0, 70000, 'x', 443.5]);
  return out;
}

function time(refusable = true): HrTime {
  const times: HrTime[] = [
    [1764369000, 123_456_789],
    [1764369000, 999_999_600], // rounds up to the next second
    [0, 0],
    [0, 499],
    [1, 500],
    [1764369000, 0],
    [4102444800, 1000], // beyond 2100
    [1764369000.0000005, 0], // a fraction of a microsecond in the seconds
  ];
  // Beyond 2^53 microseconds: the collector would refuse the span, so the encoder does.
  if (refusable) times.push([17643690001, 5]);
  return pick(times);
}

const RESOURCES: Resource[] = [
  resourceFromAttributes({ 'service.name': 'checkout', 'service.version': '2.4.1', 'service.instance.id': 'i-1' }),
  resourceFromAttributes({ 'service.name': 'Frontend "v2"', 'deployment.environment': 'prod\n', 'host.name': 'h' }),
  resourceFromAttributes({ 'host.name': 'no-service-name', 'process.pid': 4242 }),
  resourceFromAttributes({ 'service.name': 'ünïcode', 'service.namespace': '中文', 'k.list': ['a', 'b'] }),
  resourceFromAttributes({ 'service.name': 'svc', '7': 'index key', error: 'false', 'otel.scope.name': 'resource scope' }),
  resourceFromAttributes({ 'service.name': '' }),
];

const SCOPES = [
  { name: '@opentelemetry/instrumentation-http', version: '0.223.0' },
  { name: 'my-lib' },
  { name: '' },
  { name: 'scopé "quoted"', version: 'v\t1' },
  // Not strings, from untyped code: written as text, or left out when empty.
  { name: 0 as unknown as string, version: false as unknown as string },
  { name: Number.NaN as unknown as string },
];

function event(): TimedEvent {
  const withAttributes = rand() < 0.5;
  return {
    name: text(),
    time: time(),
    ...(withAttributes ? { attributes: attributes() } : rand() < 0.5 ? { attributes: {} } : {}),
    droppedAttributesCount: 0,
  };
}

const KINDS = [SpanKind.INTERNAL, SpanKind.SERVER, SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER];

/**
 * A span as a plain object: reaches cases the SDK never produces (raw attribute values, odd counts).
 * `refusable`: also ids and times the collector would refuse, which the encoder must refuse too.
 */
function handMadeSpan(refusable = false): ReadableSpan {
  const validTraceIds = ['4bf92f3577b34da6a3ce929d0e0e4736', '00000000000000000000000000000001'];
  const refusedTraceIds = ['ABCDEF"', 'é1', '0'.repeat(32), '4BF92F3577B34DA6A3CE929D0E0E4736'];
  const traceId = refusable && rand() < 0.2 ? pick(refusedTraceIds) : pick(validTraceIds);
  const spanId = pick(['00f067aa0ba902b7', 'b7ad6b7169203331']);
  const parent = pick([undefined, { traceId, spanId: '53995c3f42cd8ad8', traceFlags: 1 }, { traceId, spanId: '', traceFlags: 1 }]);
  const status = pick([
    { code: SpanStatusCode.UNSET },
    { code: SpanStatusCode.OK },
    { code: SpanStatusCode.ERROR },
    { code: SpanStatusCode.ERROR, message: text() },
    { code: SpanStatusCode.OK, message: 'ignored' },
  ]);
  const duration = pick<HrTime>([[0, 0], [0, 400], [0, 1_500], [2, 999_999_999], [-1, 5], [0, 2.5e6]]);
  return {
    name: text(),
    kind: rand() < 0.05 ? (9 as SpanKind) : pick(KINDS),
    spanContext: () => ({ traceId, spanId, traceFlags: 1 }),
    parentSpanContext: parent,
    startTime: time(refusable),
    endTime: time(refusable),
    status,
    attributes: attributes(),
    links: [],
    events: Array.from({ length: pick([0, 0, 1, 3]) }, event),
    duration,
    ended: true,
    resource: pick(RESOURCES),
    instrumentationScope: pick(SCOPES),
    droppedAttributesCount: pick([0, 0, 0, 3, 1.5]),
    droppedEventsCount: pick([0, 0, 2]),
    droppedLinksCount: pick([0, 0, 12345678901]),
  };
}

/** Spans from the real SDK, so their objects have the SDK's shapes. */
function sdkSpans(count: number): ReadableSpan[] {
  const memory = new InMemorySpanExporter();
  const spans: ReadableSpan[] = [];
  for (const resource of RESOURCES) {
    const provider = new BasicTracerProvider({
      resource,
      spanProcessors: [new SimpleSpanProcessor(memory)],
      spanLimits: { attributeCountLimit: 10, eventCountLimit: 2, linkCountLimit: 1 },
    });
    for (const scope of SCOPES) {
      const tracer = provider.getTracer(scope.name, scope.version);
      for (let i = 0; i < count; i++) {
        const parent = rand() < 0.5 ? tracer.startSpan('parent') : undefined;
        const ctx = parent === undefined ? context.active() : trace.setSpan(context.active(), parent);
        const span = tracer.startSpan(text(), { kind: pick(KINDS), attributes: attributes(), startTime: time() }, ctx);
        for (let e = int(4); e > 0; e--) span.addEvent(text(), rand() < 0.5 ? attributes() : undefined);
        if (rand() < 0.2) span.addLink({ context: span.spanContext() });
        if (rand() < 0.2) span.addLink({ context: span.spanContext() });
        if (rand() < 0.5) span.setStatus(pick([{ code: SpanStatusCode.OK }, { code: SpanStatusCode.ERROR, message: text() }]));
        span.end(rand() < 0.5 ? undefined : time());
        parent?.end();
      }
    }
  }
  for (const span of memory.getFinishedSpans()) spans.push(span);
  return spans;
}

function reference(converter: ZipkinSpanConverter, span: ReadableSpan): Buffer {
  return Buffer.from(JSON.stringify(converter.convert(span)), 'utf8');
}

/** The bytes `encode` gives, or the reason it refuses the span (what the collector would drop). */
function attempt(encode: () => Buffer): Buffer | string {
  try {
    return encode();
  } catch (error) {
    if (error instanceof ZipkinConversionError) return `refused: ${error.reason}`;
    throw error;
  }
}

const OPTIONS: ZipkinConversionOptions[] = [{}, { resourceTags: 'all' }, { resourceTags: 'none' }, { resourceTags: ['host.name', '7', 'host.name', 'process.pid'] }];

describe('what the exporter writes, the collector takes whole', () => {
  // The SDK accepts all of these from application code.
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ resource: RESOURCES[0] as Resource, spanProcessors: [new SimpleSpanProcessor(memory)] });
  const oddTracer = provider.getTracer(123 as unknown as string, 4 as unknown as string);
  const odd = oddTracer.startSpan(42 as unknown as string, { startTime: [1_700_000_000.0000005, 0] });
  odd.addEvent('at the epoch', new Date(0));
  odd.addEvent('before it', [-5, 0]);
  odd.addEvent('kept', [1_700_000_000, 5_000]);
  odd.end([1_700_000_001, 0]);
  const far = provider.getTracer('t').startSpan('far future', { startTime: new Date(8.64e15) });
  far.end(new Date(8.64e15));
  // A custom IdGenerator can hand the SDK ids the collector refuses.
  for (const [traceId, spanId] of [
    ['0'.repeat(32), '0'.repeat(16)],
    ['z'.repeat(32), '00f067aa0ba902b7'],
  ] as const) {
    const idGenerator = { generateTraceId: () => traceId, generateSpanId: () => spanId };
    new BasicTracerProvider({ idGenerator, spanProcessors: [new SimpleSpanProcessor(memory)] }).getTracer('t').startSpan(`ids ${traceId}`).end();
  }
  const [oddSpan, farSpan, zeroIds, notHex] = memory.getFinishedSpans() as [ReadableSpan, ReadableSpan, ReadableSpan, ReadableSpan];

  it.each(['json', 'proto3'] as const)('mends odd times, names and scopes, and refuses what it cannot mend (%s)', (encoding) => {
    const encode = spanEncoder(encoding);
    const piece = encode(oddSpan);
    const body = encoding === 'json' ? Buffer.concat([Buffer.from('['), piece, Buffer.from(']')]) : piece;
    const decoded = decodeSpans(body);
    expect(decoded).toMatchObject({ ok: true, dropped: [] });
    const [span] = decoded.ok ? decoded.spans : [];
    expect(span).toMatchObject({
      name: '42',
      timestamp: 1_700_000_000_000_001,
      duration: 1_000_000,
      annotations: [{ timestamp: 1_700_000_000_000_005, value: 'kept' }],
      // The two events left out (at and before the epoch) are counted.
      tags: { 'otel.scope.name': '123', 'otel.scope.version': '4', 'otel.library.name': '123', 'otel.library.version': '4', 'otel.dropped_events_count': '2' },
    });
    for (const refused of [farSpan, zeroIds, notHex]) {
      expect(() => encode(refused), refused.name).toThrow(ZipkinConversionError);
    }
  });
});

describe('the encoder caches stay small whatever the values', () => {
  it('keeps neither huge scope names nor huge peer names, however many', () => {
    const memory = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ resource: RESOURCES[0] as Resource, spanProcessors: [new SimpleSpanProcessor(memory)] });
    const encoder = new ZipkinJsonEncoder();
    for (let i = 0; i < 300; i++) {
      const huge = `${i}-${'x'.repeat(100_000)}`;
      provider.getTracer(huge).startSpan('op', { kind: SpanKind.CLIENT, attributes: { 'peer.service': huge } }).end();
      const [span] = memory.getFinishedSpans();
      memory.reset();
      encoder.encode(span as ReadableSpan);
    }
    // 300 names of 100 KB: 30 MB each way if they were kept.
    expect(scopeCacheBytes(encoder)).toBeLessThanOrEqual(1024 * 1024);
    expect(addressCacheChars()).toBeLessThan(1024 * 1024);
  });
});

describe('ZipkinJsonEncoder', () => {
  it.each(OPTIONS)('writes exactly the bytes of JSON.stringify(convert(span)) for varied spans (%j)', (options) => {
    const converter = new ZipkinSpanConverter(options);
    const encoder = new ZipkinJsonEncoder(options);
    const spans = [...sdkSpans(40), ...Array.from({ length: 3000 }, () => handMadeSpan(true))];
    // All pieces kept until the end: later spans must not overwrite earlier pieces (they share slabs).
    const pieces = spans.map((span) => attempt(() => encoder.encode(span)));
    let refused = 0;
    spans.forEach((span, i) => {
      // Both refuse the same spans (for the same reason), or both write the same bytes.
      const expected = attempt(() => reference(converter, span));
      const piece = pieces[i] as Buffer | string;
      if (typeof expected === 'string') {
        refused++;
        expect(piece).toBe(expected);
        return;
      }
      expect(typeof piece).not.toBe('string');
      if (!(piece as Buffer).equals(expected)) {
        // The first difference, readable.
        expect(piece.toString('utf8')).toBe(expected.toString('utf8'));
      }
      expect((piece as Buffer).equals(expected)).toBe(true);
    });
    // Hand-made spans with ids that are not hex or times beyond 2^53 µs are refused; most are not.
    expect(refused).toBeGreaterThan(0);
    expect(refused).toBeLessThan(spans.length / 2);
    const fused = spans.length - encoder.referenceSpans;
    // Many spans go through the fused path; the rest are the rare keys, the odd resource, the scopes
    // that are not strings and the refused.
    expect(fused).toBeGreaterThan((spans.length - refused) * 0.35);
    expect(encoder.referenceSpans).toBeGreaterThan(0);
  });

  it('stays exact for spans of one name that repeat most attributes (cached members)', () => {
    const converter = new ZipkinSpanConverter();
    const encoder = new ZipkinJsonEncoder();
    const base = attributes();
    const keys = Object.keys(base);
    const spans: ReadableSpan[] = [];
    for (let i = 0; i < 3000; i++) {
      const span = handMadeSpan();
      const attrs: Attributes = {};
      for (const key of keys) {
        const roll = rand();
        if (roll < 0.05) continue; // a key left out
        attrs[key] = roll < 0.15 ? value() : base[key]; // a changed value
        if (rand() < 0.03) attrs[`extra.${int(3)}`] = value(); // a key added in between
      }
      Object.assign(span, { name: pick(['GET /cart', 'GET', 'SELECT']), attributes: attrs, resource: pick(RESOURCES.slice(0, 3)) });
      spans.push(span);
    }
    const pieces = spans.map((span) => encoder.encode(span));
    spans.forEach((span, i) => expect((pieces[i] as Buffer).toString()).toBe(reference(converter, span).toString()));
    expect(encoder.referenceSpans).toBeLessThan(spans.length / 2);
  });

  it('stays exact when spans of one name alternate between resources (templates and endpoints are per resource)', () => {
    const converter = new ZipkinSpanConverter();
    const encoder = new ZipkinJsonEncoder();
    // RESOURCES[0] has service.version as a tag, so an attribute with that key overrides it in place
    // (reference path); under RESOURCES[1] the same attribute is an ordinary tag.
    const shared: Attributes = { 'http.request.method': 'GET', 'service.version': 'attr', 'network.peer.address': '10.0.0.9', 'network.peer.port': 4242 };
    for (let i = 0; i < 2000; i++) {
      const span = handMadeSpan();
      const attrs: Attributes = { ...shared };
      if (i % 7 === 0) attrs['url.path'] = `/p/${i}`;
      Object.assign(span, {
        name: pick(['GET /a', 'GET /b']),
        kind: SpanKind.SERVER,
        attributes: attrs,
        events: i % 3 === 0 ? [] : span.events,
        resource: RESOURCES[int(2)],
      });
      expect(encoder.encode(span).toString()).toBe(reference(converter, span).toString());
    }
  });

  it('stays exact while attribute keys churn beyond every cache (key chains, templates, values)', () => {
    const converter = new ZipkinSpanConverter();
    const encoder = new ZipkinJsonEncoder();
    for (let i = 0; i < 12_000; i++) {
      const span = handMadeSpan();
      const attrs: Attributes = { 'http.request.method': pick(['GET', 'POST']) };
      // Keys new for a long time (past the 4096 the key cache holds), in a varying order and number.
      for (let k = int(4); k > 0; k--) attrs[`churn.${(i * 7 + k * 13) % 9000}`] = pick(['x', 1, true, `v${i % 40}`]);
      if (rand() < 0.5) attrs['server.address'] = pick(['a.internal', 'b.internal']);
      Object.assign(span, { name: pick(['op', 'op2', `op.${i % 1500}`]), attributes: attrs, resource: RESOURCES[0] });
      expect(encoder.encode(span).toString()).toBe(reference(converter, span).toString());
    }
  });

  it('stays exact for remote endpoints whose port changes from span to span', () => {
    const converter = new ZipkinSpanConverter();
    const encoder = new ZipkinJsonEncoder();
    for (let i = 0; i < 3000; i++) {
      const span = handMadeSpan();
      const attrs: Attributes = {
        'network.peer.address': pick(['10.0.0.1', '::1', 'Peer.Name', '::ffff:10.1.2.3']),
        'network.peer.port': pick([40000 + (i % 300), '8080', 0, 'x', undefined, 443.5]),
        'server.address': pick(['upstream', 'UpStream', '10.9.9.9']),
        'server.port': pick([9000, 9001, '70000']),
      };
      Object.assign(span, {
        name: 'GET',
        kind: pick([SpanKind.SERVER, SpanKind.CLIENT, SpanKind.CONSUMER, SpanKind.PRODUCER]),
        attributes: attrs,
        resource: pick(RESOURCES.slice(0, 4)),
        events: rand() < 0.5 ? [] : span.events,
      });
      expect(encoder.encode(span).toString()).toBe(reference(converter, span).toString());
    }
  });

  it('stays exact when the template of a span name was built from an unusual span and is rebuilt', () => {
    const converter = new ZipkinSpanConverter();
    const encoder = new ZipkinJsonEncoder();
    for (let i = 0; i < 3000; i++) {
      const span = handMadeSpan();
      // The first span differs (an error status code, an extra key); later ones drop or add keys now and then.
      const attrs: Attributes = { method: 'GET', status: i === 0 ? 503 : 200 };
      if (i === 0 || i % 97 === 0) attrs['extra'] = 'x';
      attrs['path'] = `/item/${i % 5}`;
      if (i % 13 !== 0) attrs['tail'] = i % 500 < 250 ? 'one' : 'two';
      if (i % 31 === 0) delete attrs['method'];
      Object.assign(span, { name: 'GET /item', kind: SpanKind.SERVER, attributes: attrs, resource: RESOURCES[0] });
      expect(encoder.encode(span).toString()).toBe(reference(converter, span).toString());
    }
  });

  it('keeps huge values and many spans exact across slab boundaries', () => {
    const converter = new ZipkinSpanConverter();
    const encoder = new ZipkinJsonEncoder();
    const spans: ReadableSpan[] = [];
    for (let i = 0; i < 400; i++) {
      const span = handMadeSpan();
      span.attributes['big'] = i % 50 === 0 ? 'x'.repeat(200_000 + i) : `v${i}`;
      if (i % 70 === 0) span.attributes['big.unicode'] = 'é😀'.repeat(40_000);
      spans.push(span);
    }
    const pieces = spans.map((span) => encoder.encode(span));
    spans.forEach((span, i) => expect((pieces[i] as Buffer).equals(reference(converter, span))).toBe(true));
  });

  it('gives the reference the same span object shapes after caches fill and empty', () => {
    // Many distinct keys and values: the caches empty themselves, stop caching, and stay within their byte budget.
    const converter = new ZipkinSpanConverter();
    const encoder = new ZipkinJsonEncoder();
    for (let i = 0; i < 6000; i++) {
      const span = handMadeSpan();
      // Long values: past the cache's byte budget (and past the length it caches at all).
      span.attributes[`key.${i % 5000}`] = `value ${i} ${'v'.repeat(200 + (i % 100))}`;
      span.attributes['url.path'] = `/item/${i}`;
      span.attributes['method'] = i % 3 === 0 ? 'GET' : 'POST';
      expect(encoder.encode(span).equals(reference(converter, span))).toBe(true);
    }
  });

  it('pieces frame into messages that @tracehouse/model decodes', () => {
    const memory = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ resource: RESOURCES[0], spanProcessors: [new SimpleSpanProcessor(memory)] });
    const tracer = provider.getTracer('wire-test', '1.0.0');
    for (let i = 0; i < 50; i++) {
      const span = tracer.startSpan(`GET /item/${i}`, {
        kind: SpanKind.CLIENT,
        attributes: { 'http.request.method': 'GET', 'url.full': `http://backend:8080/item/${i}`, 'server.address': 'backend', 'server.port': 8080 },
      });
      span.addEvent('sent', { bytes: i });
      span.end();
    }
    const spans = memory.getFinishedSpans();
    const encoder = new ZipkinJsonEncoder();
    const pieces = spans.map((span) => encoder.encode(span));
    expect(encoder.referenceSpans).toBe(0);
    const buffer = new SpanBuffer({ maxSpans: 100, maxBytes: 1024 * 1024 }, wireFormat('json'));
    for (const piece of pieces) expect(buffer.offer(piece)).toBe(true);
    const result = decodeSpans(buffer.take(1024 * 1024)?.body ?? Buffer.alloc(0));
    if (!result.ok) throw new Error(result.message);
    expect(result.dropped).toEqual([]);
    expect(result.spans.map((s) => s.id)).toEqual(spans.map((s) => s.spanContext().spanId));
    const first = result.spans[0];
    expect(first?.remoteEndpoint).toEqual({ serviceName: 'backend', port: 8080 });
    expect(first?.tags?.['url.full']).toBe('http://backend:8080/item/0');
    expect(first?.tags?.['service.version']).toBe('2.4.1');
    expect(first?.annotations?.[0]?.value).toBe('"sent":{"bytes":"0"}');
  });
});
