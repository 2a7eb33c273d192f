// Two real HTTP services in child processes, auto-instrumented; A calls B.
// The spans read off the queue must form one trace across both services.
import http from 'node:http';
import type { Span } from '@tracehouse/model';
import { describe, expect, it } from 'vitest';
import { RABBITMQ_URL, readSpans, useTestBed, waitFor } from './harness.js';

const bed = useTestBed();

function byKindAndService(spans: Span[], kind: Span['kind'], service: string): Span {
  const found = spans.filter((s) => s.kind === kind && s.localEndpoint?.serviceName === service);
  expect(found, `${kind} span of ${service}`).toHaveLength(1);
  return found[0] as Span;
}

describe('two instrumented HTTP services', () => {
  it('publish one trace holding both services, linked parent to child, with kinds and endpoints', async () => {
    const queue = bed.queue('two-services');
    const b = await bed.startService({ TRACEHOUSE_QUEUE: queue, OTEL_SERVICE_NAME: 'service-b', INSTRUMENTATION: 'http' });
    const a = await bed.startService({
      TRACEHOUSE_QUEUE: queue,
      OTEL_SERVICE_NAME: 'service-a',
      INSTRUMENTATION: 'auto',
      DOWNSTREAM_URL: `http://127.0.0.1:${b.port}/inventory`,
    });

    const response = await a.get('/checkout');
    expect(response.status).toBe(200);
    expect(response.body).toBe('upstream got: hello from downstream');

    await waitFor('both services to export their spans', async () => {
      const [sa, sb] = await Promise.all([a.stats(), b.stats()]);
      return sa.spansExported >= 2 && sb.spansExported >= 1;
    });
    const { spans } = await readSpans(bed.broker, queue);

    // Only the request's spans: its three HTTP spans (and, with auto-instrumentation, the TCP connect
    // of A's call to B), nothing from the exporter's own AMQP traffic.
    expect(spans.filter((s) => s.tags?.['otel.scope.name'] === '@opentelemetry/instrumentation-http')).toHaveLength(3);
    for (const span of spans) expect(span.tags?.['server.port'], span.name).not.toBe(new URL(RABBITMQ_URL).port || '5672');
    const traceIds = new Set(spans.map((s) => s.traceId));
    expect(traceIds.size).toBe(1);
    expect([...traceIds][0]).toMatch(/^[0-9a-f]{32}$/);

    const aServer = byKindAndService(spans, 'SERVER', 'service-a');
    const aClient = byKindAndService(spans, 'CLIENT', 'service-a');
    const bServer = byKindAndService(spans, 'SERVER', 'service-b');

    expect(aServer.parentId).toBeUndefined();
    expect(aClient.parentId).toBe(aServer.id);
    expect(bServer.parentId).toBe(aClient.id);

    // A's client span points at B; B's server span points back at A's socket.
    expect(aClient.remoteEndpoint).toEqual({ ipv4: '127.0.0.1', port: b.port });
    expect(bServer.remoteEndpoint?.ipv4).toBe('127.0.0.1');
    expect(bServer.remoteEndpoint?.port).toBeGreaterThan(0);
    expect(aServer.remoteEndpoint?.ipv4).toBe('127.0.0.1');

    // Nesting in time and whole-microsecond values.
    for (const span of spans) {
      expect(Number.isInteger(span.timestamp)).toBe(true);
      expect(Number.isInteger(span.duration)).toBe(true);
      expect(span.duration).toBeGreaterThan(0);
    }
    expect(aClient.timestamp as number).toBeGreaterThanOrEqual(aServer.timestamp as number);
    expect((aClient.timestamp as number) + (aClient.duration as number)).toBeLessThanOrEqual(
      (aServer.timestamp as number) + (aServer.duration as number),
    );

    expect(aServer.tags?.['url.path']).toBe('/checkout');
    expect(bServer.tags?.['url.path']).toBe('/inventory');
    expect(aClient.tags?.['http.response.status_code']).toBe('200');
    expect(aServer.tags?.['otel.scope.name']).toBe('@opentelemetry/instrumentation-http');
    // The deprecated alias the specification still requires, with the same value.
    expect(aServer.tags?.['otel.library.name']).toBe('@opentelemetry/instrumentation-http');
    expect(aServer.tags?.['otel.library.version']).toBe(aServer.tags?.['otel.scope.version']);
    expect(aServer.tags?.['otel.scope.version']).toMatch(/^\d+\.\d+\.\d+/);

    for (const service of [a, b]) {
      const stats = await service.stats();
      expect(stats.publishFailures).toBe(0);
      expect(Object.values(stats.spansDropped).every((n) => n === 0)).toBe(true);
    }
  });

  it('continues a trace that arrives with B3 headers (Brave/Sleuth callers)', async () => {
    const queue = bed.queue('b3');
    const b = await bed.startService({ TRACEHOUSE_QUEUE: queue, OTEL_SERVICE_NAME: 'service-b', INSTRUMENTATION: 'http' });
    const traceId = '463ac35c9f6413ad48485a3953bb6124';
    const parentId = 'a2fb4a1d1a96d312';
    await new Promise<void>((resolve, reject) => {
      http
        .get(
          {
            host: '127.0.0.1',
            port: b.port,
            path: '/from-brave',
            headers: { 'X-B3-TraceId': traceId, 'X-B3-SpanId': parentId, 'X-B3-Sampled': '1' },
          },
          (response) => {
            response.resume();
            response.on('end', () => resolve());
          },
        )
        .on('error', reject);
    });
    await waitFor('the span to be exported', async () => (await b.stats()).spansExported >= 1);
    const { spans } = await readSpans(bed.broker, queue);
    expect(spans).toHaveLength(1);
    expect(spans[0]).toMatchObject({ traceId, parentId, kind: 'SERVER' });
  });
});
