/**
 * The whole path: spans made by the OpenTelemetry SDK, exported by
 * @tracehouse/instrumentation (gzipped bodies, its default, and uncompressed
 * ones) to the real RabbitMQ, consumed by a real collector process and stored
 * in ClickHouse, then read back: every span once, with its fields.
 */
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { RabbitMqSpanExporter, type BodyCompression } from '@tracehouse/instrumentation';
import { describe, expect, it } from 'vitest';
import { METRIC, RABBITMQ_URL, uniqueName, useCollectorBed, waitFor } from './harness.js';

/** Ends `pairs` server spans, each with a client span under it, through a RabbitMQ exporter; returns their ids. */
async function exportPairs(
  queue: string,
  compression: BodyCompression,
  pairs: number,
): Promise<{ traceIds: string[]; spanKeys: string[]; published: number }> {
  const exporter = new RabbitMqSpanExporter({ rabbitmqUrl: RABBITMQ_URL, queue, compression, meterProvider: false });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': `checkout-${compression}` }),
    // Room for every span: the test ends them all in one turn.
    spanProcessors: [new BatchSpanProcessor(exporter, { maxQueueSize: 2 * pairs })],
  });
  const tracer = provider.getTracer('from-instrumentation-test');
  const traceIds: string[] = [];
  const spanKeys: string[] = [];
  for (let i = 0; i < pairs; i++) {
    const server = tracer.startSpan('GET /cart/:id', {
      kind: SpanKind.SERVER,
      attributes: { 'http.request.method': 'GET', 'url.path': `/cart/${i}`, 'http.response.status_code': 200 },
    });
    const client = tracer.startSpan(
      'GET',
      { kind: SpanKind.CLIENT, attributes: { 'peer.service': 'inventory', 'server.address': 'inventory.internal', 'server.port': 9000 } },
      trace.setSpan(context.active(), server),
    );
    if (i === 0) client.setStatus({ code: SpanStatusCode.ERROR, message: 'Service Unavailable' });
    client.end();
    server.end();
    traceIds.push(server.spanContext().traceId);
    for (const span of [server, client]) spanKeys.push(`${span.spanContext().traceId}:${span.spanContext().spanId}`);
  }
  await provider.forceFlush(); // hands every span to the exporter
  await exporter.forceFlush(); // waits for the broker's confirms
  expect(exporter.stats()).toMatchObject({ spansExported: 2 * pairs, bufferedSpans: 0 });
  const published = exporter.stats().messagesPublished;
  await provider.shutdown();
  return { traceIds, spanKeys, published };
}

describe('from the instrumentation to ClickHouse', () => {
  const bed = useCollectorBed();

  it('stores every span the exporter publishes, gzipped or not, once and with its fields', async () => {
    const queue = uniqueName('th_from_instr');
    const { store, collector } = await bed.collectorOn({ queue, database: uniqueName('th_from_instr') });

    // 1200 pairs: several messages each way (a message holds at most 500 KB before compression).
    const gzipped = await exportPairs(queue, 'gzip', 1200);
    const plain = await exportPairs(queue, 'none', 1200);
    expect(gzipped.published).toBeGreaterThan(1);
    expect(plain.published).toBeGreaterThan(1);

    const messages = gzipped.published + plain.published;
    await waitFor(async () => (await collector.metrics()).value(METRIC.acked) >= messages, { timeoutMs: 30_000, what: `${messages} messages acked` });
    const metrics = await collector.metrics();
    expect(metrics.value(METRIC.stored)).toBe(4800);
    expect(metrics.value(METRIC.deadLettered)).toBe(0);
    expect(metrics.value(METRIC.dropped)).toBe(0);

    // Each span exactly once: none missing, none twice, nothing else in those traces.
    for (const { traceIds, spanKeys } of [gzipped, plain]) {
      const stored = (await store.reader.getTraceMany(traceIds)).flat().map((s) => `${s.traceId}:${s.id}`);
      expect(stored.sort()).toEqual([...spanKeys].sort());
    }
    const [first] = await store.reader.getTraceMany([gzipped.traceIds[0] as string]);
    const server = first?.find((s) => s.kind === 'SERVER');
    const client = first?.find((s) => s.kind === 'CLIENT');
    expect(server).toMatchObject({
      name: 'get /cart/:id',
      localEndpoint: { serviceName: 'checkout-gzip' },
      tags: { 'http.request.method': 'GET', 'url.path': '/cart/0', 'http.response.status_code': '200' },
    });
    expect(client).toMatchObject({
      parentId: server?.id,
      remoteEndpoint: { serviceName: 'inventory' },
      tags: { error: 'Service Unavailable', 'otel.status_code': 'ERROR' },
    });
    expect(await bed.rabbit().messageCount(queue)).toBe(0);
  });
});
