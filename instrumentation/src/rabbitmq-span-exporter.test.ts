// The exporter's behaviour when the broker cannot be reached: no service
// needed, the URL points at a closed port.
import { createServer } from 'node:net';
import { diag, DiagLogLevel } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, type MetricData } from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { TestReader } from './metrics.test.helpers.js';
import { RabbitMqSpanExporter, type RabbitMqSpanExporterOptions } from './rabbitmq-span-exporter.js';

const UNREACHABLE = 'amqp://guest:guest@127.0.0.1:1';

function spans(count: number, attributes: Record<string, string> = {}): ReadableSpan[] {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'unit' }),
    spanProcessors: [new SimpleSpanProcessor(memory)],
  });
  const tracer = provider.getTracer('unit');
  for (let i = 0; i < count; i++) tracer.startSpan(`op-${i}`, { attributes }).end();
  return memory.getFinishedSpans();
}

/** An exporter aimed at nothing, quick to shut down. */
function unreachable(options: RabbitMqSpanExporterOptions = {}): RabbitMqSpanExporter {
  return new RabbitMqSpanExporter({ rabbitmqUrl: UNREACHABLE, shutdownTimeoutMillis: 50, meterProvider: false, ...options });
}

function exportAsync(exporter: RabbitMqSpanExporter, batch: ReadableSpan[]): Promise<ExportResult> {
  return new Promise((resolve) => exporter.export(batch, resolve));
}

describe('RabbitMqSpanExporter without a broker', () => {
  it('buffers up to its limit, then drops and counts; reports the drops in the export result', async () => {
    const exporter = unreachable({ maxBufferedSpans: 5 });
    const first = await exportAsync(exporter, spans(3));
    expect(first.code).toBe(ExportResultCode.SUCCESS);
    const second = await exportAsync(exporter, spans(4));
    expect(second.code).toBe(ExportResultCode.FAILED);
    expect(second.error?.message).toContain('2 of 4');
    const stats = exporter.stats();
    expect(stats.bufferedSpans).toBe(5);
    expect(stats.bufferedBytes).toBeGreaterThan(0);
    expect(stats.spansDropped.buffer_full).toBe(2);
    expect(stats.spansExported).toBe(0);
    expect(stats.connected).toBe(false);
    await exporter.shutdown();
  });

  it('reports a batch that lost spans FAILED at most once in 10 s, so the SDK does not log an error for every batch, and counts every drop', async () => {
    const exporter = unreachable({ maxBufferedSpans: 5 });
    await exportAsync(exporter, spans(5));
    const results: ExportResult[] = [];
    for (let i = 0; i < 20; i++) results.push(await exportAsync(exporter, spans(3)));
    expect(results.map((r) => r.code)).toEqual([ExportResultCode.FAILED, ...Array<ExportResultCode>(19).fill(ExportResultCode.SUCCESS)]);
    expect(results[0]?.error?.message).toMatch(/^3 of 3 spans dropped/);
    expect(exporter.stats().spansDropped.buffer_full).toBe(60);
    await exporter.shutdown();
  });

  it('cuts the longest values of a span larger than the maximum message size to keep it, and drops one that cannot be cut enough', async () => {
    const exporter = unreachable({ maxMessageBytes: 4096 });
    const manyLongTags = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`t${i}`, 'y'.repeat(2000)]));
    await exportAsync(exporter, [...spans(1, { blob: 'x'.repeat(40_000) }), ...spans(1, manyLongTags), ...spans(2)]);
    expect(exporter.stats().spansDropped.too_large).toBe(1);
    expect(exporter.stats().bufferedSpans).toBe(3);
    expect(exporter.stats().bufferedBytes).toBeLessThan(3 * 4096);
    await exporter.shutdown();
  });

  it('counts a span it cannot convert, keeps the others, and does not throw', async () => {
    const exporter = unreachable();
    const broken = {
      ...(spans(1)[0] as ReadableSpan),
      spanContext: () => {
        throw new Error('hostile span');
      },
    } as ReadableSpan;
    const result = await exportAsync(exporter, [broken, ...spans(2)]);
    expect(result.code).toBe(ExportResultCode.FAILED);
    expect(exporter.stats().spansDropped.conversion_error).toBe(1);
    expect(exporter.stats().bufferedSpans).toBe(2);
    await exporter.shutdown();
  });

  it('converts large batches without blocking the event loop for the whole batch', async () => {
    const exporter = unreachable();
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 0);
    const result = await exportAsync(exporter, spans(2000));
    clearInterval(ticker);
    expect(result.code).toBe(ExportResultCode.SUCCESS);
    expect(ticks).toBeGreaterThan(0); // timers ran between conversion chunks
    expect(exporter.stats().bufferedSpans).toBe(2000);
    await exporter.shutdown();
  });

  it('spreads a batch of huge spans over many turns, not just a batch of many spans', async () => {
    const exporter = unreachable({ maxMessageBytes: 8 * 1024 * 1024, maxBufferedBytes: 2 ** 31 });
    // 64 spans of 1 MB each: one turn for all of them would block for tens of milliseconds.
    const batch = spans(64, { payload: 'p'.repeat(1_000_000) });
    let ticks = 0;
    const counter = setInterval(() => ticks++, 0);
    const result = await exportAsync(exporter, batch);
    clearInterval(counter);
    expect(result.code).toBe(ExportResultCode.SUCCESS);
    expect(exporter.stats().bufferedSpans).toBe(64);
    // A turn per two spans or so: timers ran many times while the batch was converted.
    expect(ticks).toBeGreaterThanOrEqual(16);
    await exporter.shutdown();
  });

  it('shuts down once within its timeout, counting what it could not deliver, and refuses later exports', async () => {
    const exporter = unreachable({ shutdownTimeoutMillis: 300 });
    await exportAsync(exporter, spans(4));
    const started = Date.now();
    const first = exporter.shutdown();
    expect(exporter.shutdown()).toBe(first);
    await first;
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(2000);
    expect(exporter.stats().spansDropped.shutdown).toBe(4);
    expect(exporter.stats().bufferedSpans).toBe(0);

    const late = await exportAsync(exporter, spans(2));
    expect(late.code).toBe(ExportResultCode.FAILED);
    expect(exporter.stats().spansDropped.shutdown).toBe(6);
  });

  it('forceFlush resolves after its timeout when the broker is away', async () => {
    const exporter = unreachable({ flushTimeoutMillis: 200 });
    await exportAsync(exporter, spans(1));
    const started = Date.now();
    await exporter.forceFlush();
    expect(Date.now() - started).toBeLessThan(1500);
    expect(exporter.stats().bufferedSpans).toBe(1);
    await exporter.shutdown();
  });

  it('a forceFlush still waiting ends with the shutdown, not at its own, longer timeout', async () => {
    const exporter = unreachable({ flushTimeoutMillis: 10_000, shutdownTimeoutMillis: 200 });
    await exportAsync(exporter, spans(3));
    const flushed = exporter.forceFlush();
    await exporter.shutdown();
    const started = Date.now();
    await flushed;
    expect(Date.now() - started).toBeLessThan(500);
    expect(exporter.stats().spansDropped.shutdown).toBe(3);
  });

  it('replaces options it cannot work with by their defaults, saying so, rather than spin, leak queues or stall', async () => {
    const warnings: string[] = [];
    const keep = (...args: unknown[]): void => void warnings.push(args.map(String).join(' '));
    diag.setLogger({ error: keep, warn: keep, info: () => undefined, debug: () => undefined, verbose: () => undefined }, DiagLogLevel.WARN);
    // A "broker" that counts connection attempts and refuses each.
    let attempts = 0;
    const refuser = createServer((socket) => {
      attempts++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => refuser.listen(0, '127.0.0.1', resolve));
    const port = (refuser.address() as { port: number }).port;
    try {
      const exporter = new RabbitMqSpanExporter({
        rabbitmqUrl: `amqp://guest:guest@127.0.0.1:${port}`,
        meterProvider: false,
        shutdownTimeoutMillis: 50,
        queue: '',
        initialReconnectDelayMillis: 0,
        maxReconnectDelayMillis: Number.NaN,
        maxMessageBytes: Number.POSITIVE_INFINITY,
        maxBufferedBytes: 2 ** 40,
        flushTimeoutMillis: -1,
        connectTimeoutMillis: 10n as unknown as number,
      });
      for (const name of ['queue', 'initialReconnectDelayMillis', 'maxReconnectDelayMillis', 'maxMessageBytes', 'maxBufferedBytes', 'flushTimeoutMillis', 'connectTimeoutMillis']) {
        expect(warnings.some((warning) => warning.includes(` ${name} must be`)), `${name} in ${warnings.join('; ')}`).toBe(true);
      }
      exporter.start();
      // With the default backoff (200 ms, doubling): a handful of attempts in a second, not hundreds.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(attempts).toBeGreaterThan(0);
      expect(attempts).toBeLessThan(6);
      // A message size it can use: the span is buffered for a message, not stuck.
      expect((await exportAsync(exporter, spans(1))).code).toBe(ExportResultCode.SUCCESS);
      expect(exporter.stats().bufferedSpans).toBe(1);
      await exporter.shutdown();
    } finally {
      diag.disable();
      refuser.close();
    }
  });

  it('exposes its counters through the OpenTelemetry metrics API', async () => {
    const reader = new TestReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const exporter = unreachable({ maxBufferedSpans: 2, meterProvider });
    await exportAsync(exporter, spans(5));
    const { resourceMetrics } = await reader.collect();
    const all: MetricData[] = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
    const byName = (name: string): MetricData => {
      const found = all.find((m) => m.descriptor.name === name);
      if (found === undefined) throw new Error(`metric ${name} missing`);
      return found;
    };
    const dropped = byName('tracehouse.exporter.spans.dropped').dataPoints;
    expect(dropped.find((p) => p.attributes.reason === 'buffer_full')?.value).toBe(3);
    expect(byName('tracehouse.exporter.spans.exported').dataPoints[0]?.value).toBe(0);
    expect(byName('tracehouse.exporter.messages.published').dataPoints[0]?.value).toBe(0);
    expect(byName('tracehouse.exporter.publish.failures').dataPoints[0]?.value).toBe(0);
    expect(byName('tracehouse.exporter.buffer.spans').dataPoints[0]?.value).toBe(2);
    await exporter.shutdown();
    await meterProvider.shutdown();
  });
});
