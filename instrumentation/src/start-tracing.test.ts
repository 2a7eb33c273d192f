// startTracing in-process, without a broker (its URL points at a closed port).
import { context, propagation, trace } from '@opentelemetry/api';
import { Worker } from 'node:worker_threads';
import { BasicTracerProvider, InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterAll, describe, expect, it } from 'vitest';
import { TracingConfigError } from './config.js';
import { TestReader } from './metrics.test.helpers.js';
import { startTracing, type TracingHandle } from './start-tracing.js';

const handles: TracingHandle[] = [];

afterAll(async () => {
  for (const handle of handles) await handle.shutdown();
});

describe('startTracing', () => {
  it('refuses a bad configuration with the variable named', () => {
    expect(() => startTracing({ env: { TRACEHOUSE_RABBITMQ_URL: 'rabbit:5672' } })).toThrow(TracingConfigError);
    expect(() => startTracing({ env: { TRACEHOUSE_MAX_BUFFERED_SPANS: 'many' } })).toThrow(/TRACEHOUSE_MAX_BUFFERED_SPANS/);
  });

  it('does nothing when OTEL_SDK_DISABLED is true, whatever else the environment holds', async () => {
    const handle = startTracing({
      env: { OTEL_SDK_DISABLED: 'true', TRACEHOUSE_RABBITMQ_URL: 'rabbit:5672', TRACEHOUSE_MAX_BUFFERED_SPANS: 'many' },
    });
    expect(handle.exporter).toBeUndefined();
    expect(handle.config.disabled).toBe(true);
    expect(handle.stats().spansExported).toBe(0);
    await handle.shutdown();
  });

  it('traces with W3C and B3 propagation, exposes the exporter counters as metrics, and shuts down within its bound', async () => {
    const reader = new TestReader();
    const handle = startTracing({
      serviceName: 'unit-service',
      env: { TRACEHOUSE_RABBITMQ_URL: 'amqp://127.0.0.1:1', OTEL_BSP_SCHEDULE_DELAY: '10' },
      shutdownTimeoutMillis: 200,
      exporter: { flushTimeoutMillis: 300 },
      shutdownSignals: [],
      esmLoaderHook: false,
      metricReaders: [reader],
    });
    handles.push(handle);
    expect(handle.config.serviceName).toBe('unit-service');
    expect(Object.isFrozen(handle.config)).toBe(true);

    const span = trace.getTracer('unit').startSpan('work');
    const carrier: Record<string, string> = {};
    propagation.inject(trace.setSpan(context.active(), span), carrier);
    span.end();
    const { traceId, spanId } = span.spanContext();
    expect(carrier.traceparent).toBe(`00-${traceId}-${spanId}-01`);
    expect(carrier['x-b3-traceid']).toBe(traceId);
    expect(carrier['x-b3-spanid']).toBe(spanId);

    // A B3 single header from a Brave service is understood.
    const extracted = propagation.extract(context.active(), { b3: `${'a'.repeat(32)}-${'b'.repeat(16)}-1` });
    expect(trace.getSpanContext(extracted)?.traceId).toBe('a'.repeat(32));

    await handle.forceFlush();
    expect(handle.stats().bufferedSpans).toBe(1); // no broker: kept

    const { resourceMetrics } = await reader.collect();
    const names = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics.map((m) => m.descriptor.name));
    expect(names).toContain('tracehouse.exporter.spans.exported');
    expect(names).toContain('tracehouse.exporter.buffer.spans');

    const started = Date.now();
    await handle.shutdown();
    expect(Date.now() - started).toBeLessThan(1700);
    expect(handle.stats().spansDropped.shutdown).toBe(1);
  });

  it('takes another exporter in place of the RabbitMQ one', async () => {
    const memory = new InMemorySpanExporter();
    const handle = startTracing({ spanExporter: memory, shutdownSignals: [], esmLoaderHook: false, env: {} });
    handles.push(handle);
    expect(handle.exporter).toBeUndefined();
    await handle.shutdown();
  });

  it('returns the running setup when called again, and starts anew after shutdown', async () => {
    const options = { spanExporter: new InMemorySpanExporter(), shutdownSignals: [], esmLoaderHook: false, env: {} };
    const first = startTracing(options);
    expect(startTracing(options)).toBe(first);
    await first.shutdown();
    const second = startTracing(options);
    expect(second).not.toBe(first);
    await second.shutdown();
  });

  it('refuses to start when another SDK registered a tracer provider first, whose spans this exporter would never see', async () => {
    const other = new BasicTracerProvider();
    expect(trace.setGlobalTracerProvider(other)).toBe(true);
    try {
      expect(() => startTracing({ shutdownSignals: [], esmLoaderHook: false, env: {} })).toThrow(/global tracer provider.*BasicTracerProvider/);
    } finally {
      trace.disable();
      await other.shutdown();
    }
  });

  it('stays off outside the main thread (Node runs --require preloads again in its module-hooks thread)', async () => {
    const moduleUrl = new URL('./start-tracing.js', import.meta.url).href.replace('/src/', '/dist/');
    const source = `
      import { parentPort } from 'node:worker_threads';
      const { startTracing } = await import(${JSON.stringify(moduleUrl)});
      const handle = startTracing({ env: {}, shutdownSignals: [], esmLoaderHook: false });
      parentPort.postMessage({ disabled: handle.config.disabled, exporter: handle.exporter !== undefined });
      await handle.shutdown();
    `;
    const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(source)}`));
    const answer = await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    expect(answer).toEqual({ disabled: true, exporter: false });
  });
});
