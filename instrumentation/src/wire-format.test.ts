import { SpanKind } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { decodeSpans, type Span } from '@tracehouse/model';
import { describe, expect, it } from 'vitest';
import { SpanBuffer } from './span-buffer.js';
import { wireFormat } from './wire-format.js';
import { ZipkinSpanConverter } from './zipkin-conversion.js';

function zipkinSpans(count: number): Span[] {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'frontend' }),
    spanProcessors: [new SimpleSpanProcessor(memory)],
  });
  const tracer = provider.getTracer('wire-test');
  for (let i = 0; i < count; i++) {
    const span = tracer.startSpan(`GET /item/${i}`, {
      kind: SpanKind.CLIENT,
      attributes: { 'http.method': 'GET', 'http.url': `http://backend:8080/item/${i}`, 'server.address': 'backend' },
    });
    span.addEvent('sent');
    span.end();
  }
  const converter = new ZipkinSpanConverter();
  return memory.getFinishedSpans().map((s) => converter.convert(s));
}

/** Drains the buffer into message bodies as the exporter does. */
function pack(encoding: 'json' | 'proto3', spans: Span[], maxMessageBytes: number): Buffer[] {
  const format = wireFormat(encoding);
  const buffer = new SpanBuffer({ maxSpans: 10_000, maxBytes: 64 * 1024 * 1024 }, format);
  for (const span of spans) expect(buffer.offer(format.encodeSpan(span))).toBe(true);
  const messages: Buffer[] = [];
  while (buffer.length > 0) {
    const message = buffer.take(maxMessageBytes);
    if (message === undefined) throw new Error('nothing taken from a buffer holding spans');
    expect(message.body.length).toBe(format.messageBytes(message.count, message.pieceBytes));
    messages.push(message.body);
  }
  expect(buffer.bytes).toBe(0);
  return messages;
}

describe.each(['json', 'proto3'] as const)('wire format %s', (encoding) => {
  it('packs many spans per message, each message within the limit, decodable by @tracehouse/model', () => {
    const spans = zipkinSpans(200);
    const maxMessageBytes = 8 * 1024;
    const messages = pack(encoding, spans, maxMessageBytes);
    expect(messages.length).toBeGreaterThan(2);
    expect(messages.length).toBeLessThan(100);
    const decoded: Span[] = [];
    for (const body of messages) {
      expect(body.length).toBeLessThanOrEqual(maxMessageBytes);
      if (encoding === 'json') expect(body[0]).toBe(0x5b);
      const result = decodeSpans(body);
      if (!result.ok) throw new Error(result.message);
      expect(result.encoding).toBe(encoding === 'json' ? 'JSON_V2' : 'PROTO3');
      expect(result.dropped).toEqual([]);
      decoded.push(...result.spans);
    }
    expect(decoded.map((s) => s.id)).toEqual(spans.map((s) => s.id));
    const first = decoded[0] as Span;
    expect(first.kind).toBe('CLIENT');
    expect(first.localEndpoint?.serviceName).toBe('frontend');
    expect(first.remoteEndpoint?.serviceName).toBe('backend');
    expect(first.tags?.['http.url']).toBe('http://backend:8080/item/0');
    expect(first.annotations?.[0]?.value).toBe('sent');
  });

  it('fills one message when everything fits (default 500 KB)', () => {
    const messages = pack(encoding, zipkinSpans(300), 500_000);
    expect(messages).toHaveLength(1);
    const result = decodeSpans(messages[0] as Buffer);
    expect(result.ok && result.spans.length).toBe(300);
  });
});

describe('SpanBuffer', () => {
  it('refuses offers beyond its span count or byte budget', () => {
    const buffer = new SpanBuffer({ maxSpans: 3, maxBytes: 25 }, wireFormat('json'));
    expect(buffer.offer(Buffer.alloc(10))).toBe(true);
    expect(buffer.offer(Buffer.alloc(10))).toBe(true);
    expect(buffer.offer(Buffer.alloc(10))).toBe(false); // 30 bytes > 25
    expect(buffer.offer(Buffer.alloc(5))).toBe(true);
    expect(buffer.offer(Buffer.alloc(1))).toBe(false); // 4 spans > 3
    expect(buffer.length).toBe(3);
    expect(buffer.bytes).toBe(25);
    const taken = buffer.take(22); // 10 + 1 + 10 + 2 brackets = 23 > 22
    expect(taken?.count).toBe(1);
    expect(taken?.pieceBytes).toBe(10);
    expect(buffer.length).toBe(2);
    expect(buffer.bytes).toBe(15);
    expect(buffer.offer(Buffer.alloc(10))).toBe(true);
    if (taken === undefined) throw new Error('nothing taken');
    buffer.putBack(taken); // back in front even though the buffer is full again
    expect(buffer.length).toBe(4);
    expect(buffer.bytes).toBe(35);
    expect(buffer.take(1000)).toBe(taken);
    expect(buffer.clear()).toBe(3);
    expect(buffer.take(1000)).toBeUndefined();
  });

  it('always hands out at least one span, even one larger than the message limit', () => {
    const buffer = new SpanBuffer({ maxSpans: 10, maxBytes: 1000 }, wireFormat('json'));
    buffer.offer(Buffer.alloc(300));
    buffer.offer(Buffer.alloc(10));
    expect(buffer.take(100)?.count).toBe(1);
    expect(buffer.take(100)?.count).toBe(1);
    expect(buffer.length).toBe(0);
  });
});
