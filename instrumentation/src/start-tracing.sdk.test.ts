// How startTracing sets up sdk-node: resource, propagators, metrics and the
// environment it reads. Each case runs in its own process (see
// child-script.test.helpers.ts), since startTracing registers global state.
import { describe, expect, it } from 'vitest';
import { runChild, runChildForStderr } from './child-script.test.helpers.js';

/** Starts tracing into memory with `options` (a JS expression), ends one span and reports its resource. */
async function resourceOf(options: string, env: Record<string, string>): Promise<{ attributes: Record<string, unknown>; warnings: string[] }> {
  return runChild(
    `
    import { trace } from '@opentelemetry/api';
    import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
    import { startTracing } from '@tracehouse/instrumentation';
    const memory = new InMemorySpanExporter();
    const tracing = startTracing({ spanExporter: memory, shutdownSignals: [], esmLoaderHook: false, ...${options} });
    trace.getTracer('t').startSpan('work').end();
    await tracing.forceFlush();
    const [span] = memory.getFinishedSpans();
    report({ attributes: span.resource.attributes, warnings });
    await tracing.shutdown();
    `,
    env,
  );
}

describe.concurrent('resource', () => {
  it('typed resourceAttributes win over OTEL_RESOURCE_ATTRIBUTES, and the SDK default and detected attributes stay', async () => {
    const { attributes, warnings } = await resourceOf(`{ resourceAttributes: { k: 'option', n: 7 } }`, {
      OTEL_RESOURCE_ATTRIBUTES: 'k=env,other=env',
    });
    expect(attributes).toMatchObject({ k: 'option', n: 7, other: 'env', 'telemetry.sdk.language': 'nodejs', 'telemetry.sdk.name': 'opentelemetry' });
    expect(attributes['service.name']).toMatch(/^unknown_service:/);
    expect(attributes['process.pid']).toEqual(expect.any(Number)); // the process detector still ran
    expect(warnings).toEqual([]);
  });

  it('service.name: serviceName, then a typed service.name attribute, then OTEL_SERVICE_NAME, then OTEL_RESOURCE_ATTRIBUTES', async () => {
    const env = { OTEL_SERVICE_NAME: 'env-name', OTEL_RESOURCE_ATTRIBUTES: 'service.name=env-attribute' };
    const names = await Promise.all([
      resourceOf(`{ serviceName: 'option', resourceAttributes: { 'service.name': 'typed' } }`, env),
      resourceOf(`{ resourceAttributes: { 'service.name': 'typed' } }`, env),
      resourceOf('{}', env),
      resourceOf('{}', { OTEL_RESOURCE_ATTRIBUTES: 'service.name=env-attribute' }),
    ]);
    expect(names.map((r) => r.attributes['service.name'])).toEqual(['option', 'typed', 'env-name', 'env-attribute']);
  });

  it('applies OTEL_RESOURCE_ATTRIBUTES from options.env, over what the SDK detects in process.env', async () => {
    const { attributes } = await resourceOf(`{ env: { OTEL_RESOURCE_ATTRIBUTES: 'k=options-env' }, resourceAttributes: { typed: true } }`, {
      OTEL_RESOURCE_ATTRIBUTES: 'k=process-env,p=process-env',
    });
    expect(attributes).toMatchObject({ k: 'options-env', p: 'process-env', typed: true });
  });

  it('a malformed OTEL_RESOURCE_ATTRIBUTES is reported and ignored, and tracing starts', async () => {
    const { attributes, warnings } = await resourceOf(`{ serviceName: 'svc' }`, { OTEL_RESOURCE_ATTRIBUTES: 'k=a=b,other=x' });
    expect(attributes).not.toHaveProperty('k');
    expect(attributes).not.toHaveProperty('other');
    expect(attributes['service.name']).toBe('svc');
    expect(warnings.join('\n')).toMatch(/OTEL_RESOURCE_ATTRIBUTES: got "k=a=b,other=x".* ignored/);
  });

  it('OTEL_NODE_RESOURCE_DETECTORS still chooses the detectors when resourceAttributes are given', async () => {
    const { attributes } = await resourceOf(`{ resourceAttributes: { k: 'option' } }`, { OTEL_NODE_RESOURCE_DETECTORS: 'none' });
    expect(attributes).toHaveProperty('k', 'option');
    expect(attributes).toHaveProperty('telemetry.sdk.language', 'nodejs');
    expect(attributes).not.toHaveProperty('process.pid');
  });
});

/** The headers the global propagator writes for a sampled span. */
async function injected(options: string, env: Record<string, string>): Promise<{ headers: string[]; warnings: string[] }> {
  return runChild(
    `
    import { context, propagation, trace } from '@opentelemetry/api';
    import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
    import { W3CTraceContextPropagator } from '@opentelemetry/core';
    import { startTracing } from '@tracehouse/instrumentation';
    const tracing = startTracing({ spanExporter: new InMemorySpanExporter(), shutdownSignals: [], esmLoaderHook: false, ...${options} });
    const span = trace.getTracer('t').startSpan('work');
    const carrier = {};
    propagation.inject(trace.setSpan(context.active(), span), carrier);
    span.end();
    report({ headers: Object.keys(carrier).sort(), warnings });
    await tracing.shutdown();
    `,
    env,
  );
}

describe.concurrent('propagators', () => {
  it('default: W3C trace-context and B3 multi-header', async () => {
    expect((await injected('{}', {})).headers).toEqual(['traceparent', 'x-b3-sampled', 'x-b3-spanid', 'x-b3-traceid']);
  });

  it.each([
    ['b3', ['b3']],
    ['tracecontext', ['traceparent']],
    ['b3multi, tracecontext', ['traceparent', 'x-b3-sampled', 'x-b3-spanid', 'x-b3-traceid']],
    ['none', []],
  ])('OTEL_PROPAGATORS=%j is honoured', async (value, headers) => {
    expect((await injected('{}', { OTEL_PROPAGATORS: value })).headers).toEqual(headers);
  });

  it.each(['bogus', 'tracecontxt, b3mutli'])(
    'OTEL_PROPAGATORS=%j, naming no propagator the SDK offers, is reported and the default applies (not no propagation at all)',
    async (value) => {
      const { headers, warnings } = await injected('{}', { OTEL_PROPAGATORS: value });
      expect(headers).toEqual(['traceparent', 'x-b3-sampled', 'x-b3-spanid', 'x-b3-traceid']);
      expect(warnings.join('\n')).toMatch(/OTEL_PROPAGATORS: got .* ignored, using W3C/);
    },
  );

  it('OTEL_PROPAGATORS with nothing between its commas is unset: the default applies', async () => {
    const { headers, warnings } = await injected('{}', { OTEL_PROPAGATORS: ' , ' });
    expect(headers).toEqual(['traceparent', 'x-b3-sampled', 'x-b3-spanid', 'x-b3-traceid']);
    expect(warnings).toEqual([]);
  });

  it('the propagator option wins over OTEL_PROPAGATORS', async () => {
    const { headers } = await injected('{ propagator: new W3CTraceContextPropagator() }', { OTEL_PROPAGATORS: 'b3' });
    expect(headers).toEqual(['traceparent']);
  });

  it('OTEL_PROPAGATORS given only in options.env is not read by the SDK: the default applies, with a warning', async () => {
    const { headers, warnings } = await injected(`{ env: { OTEL_PROPAGATORS: 'b3' } }`, {});
    expect(headers).toEqual(['traceparent', 'x-b3-sampled', 'x-b3-spanid', 'x-b3-traceid']);
    expect(warnings.join('\n')).toMatch(/options\.env: OTEL_PROPAGATORS not applied/);
  });
});

interface MetricsReport {
  /** Instrument names per reader. */
  names: string[][];
  /** The buffer gauge of the first reader that has it. */
  buffered: number | undefined;
  warnings: string[];
}

/**
 * Runs `setup` (which must define `tracing` and may register meter
 * providers with the readers `readers[i]`), ends a span, flushes (no broker:
 * the span stays buffered), and reports what each reader collects.
 */
async function metricsAfter(setup: string): Promise<MetricsReport> {
  return runChild(
    `
    import { metrics, trace } from '@opentelemetry/api';
    import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
    import { startTracing } from '@tracehouse/instrumentation';
    class Reader extends MetricReader {
      onForceFlush() { return Promise.resolve(); }
      onShutdown() { return Promise.resolve(); }
    }
    const readers = [new Reader(), new Reader()];
    const base = { shutdownSignals: [], esmLoaderHook: false, shutdownTimeoutMillis: 100, exporter: { flushTimeoutMillis: 50 } };
    ${setup}
    trace.getTracer('t').startSpan('work').end();
    await tracing.forceFlush();
    const names = [];
    let buffered;
    for (const reader of readers) {
      let collected = [];
      try {
        const { resourceMetrics } = await reader.collect();
        collected = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
      } catch { /* a reader no provider took */ }
      names.push(collected.map((m) => m.descriptor.name).sort());
      const point = collected.find((m) => m.descriptor.name === 'tracehouse.exporter.buffer.spans')?.dataPoints[0];
      buffered ??= point?.value;
    }
    report({ names, buffered, warnings });
    await tracing.shutdown();
    `,
  );
}

const EXPORTER_METRICS = [
  'tracehouse.exporter.buffer.spans',
  'tracehouse.exporter.messages.published',
  'tracehouse.exporter.publish.failures',
  'tracehouse.exporter.spans.dropped',
  'tracehouse.exporter.spans.exported',
];

describe.concurrent('exporter metrics', () => {
  const noBroker = `env: { TRACEHOUSE_RABBITMQ_URL: 'amqp://127.0.0.1:1' }`;

  it('go to the readers given to startTracing', async () => {
    const { names, buffered } = await metricsAfter(`const tracing = startTracing({ ...base, ${noBroker}, metricReaders: [readers[0]] });`);
    expect(names[0]).toEqual(expect.arrayContaining(EXPORTER_METRICS));
    expect(buffered).toBe(1); // no broker: the span waits in the buffer
  });

  it('go to a global meter provider the app registers after startTracing', async () => {
    const { names, buffered } = await metricsAfter(`
      const tracing = startTracing({ ...base, ${noBroker} });
      metrics.setGlobalMeterProvider(new MeterProvider({ readers: [readers[0]] }));
    `);
    expect(names[0]).toEqual(EXPORTER_METRICS);
    expect(buffered).toBe(1);
  });

  it('go to the global meter provider the app registered before startTracing', async () => {
    const { names } = await metricsAfter(`
      metrics.setGlobalMeterProvider(new MeterProvider({ readers: [readers[0]] }));
      const tracing = startTracing({ ...base, ${noBroker} });
    `);
    expect(names[0]).toEqual(EXPORTER_METRICS);
  });

  it("go to startTracing's readers even when the app registered its own global meter provider first", async () => {
    const { names } = await metricsAfter(`
      metrics.setGlobalMeterProvider(new MeterProvider({ readers: [readers[0]] }));
      const tracing = startTracing({ ...base, ${noBroker}, metricReaders: [readers[1]] });
    `);
    expect(names[1]).toEqual(expect.arrayContaining(EXPORTER_METRICS));
    expect(names[0]).toEqual([]);
  });

  it('go where the exporter option meterProvider says', async () => {
    const { names } = await metricsAfter(`
      const own = new MeterProvider({ readers: [readers[1]] });
      metrics.setGlobalMeterProvider(new MeterProvider({ readers: [readers[0]] }));
      const tracing = startTracing({ ...base, ${noBroker}, exporter: { ...base.exporter, meterProvider: own } });
    `);
    expect(names).toEqual([[], EXPORTER_METRICS]);
  });
});

describe.concurrent('the environment', () => {
  it('OTEL_SDK_DISABLED=true in process.env leaves tracing off even when options.env says otherwise, with a warning', async () => {
    const result = await runChild<{ exporter: boolean; disabled: boolean; tracer: string; warnings: string[] }>(
      `
      import { trace } from '@opentelemetry/api';
      import { startTracing } from '@tracehouse/instrumentation';
      const tracing = startTracing({ env: {}, shutdownSignals: [], esmLoaderHook: false });
      const span = trace.getTracer('t').startSpan('work');
      report({ exporter: tracing.exporter !== undefined, disabled: tracing.config.disabled, tracer: span.constructor.name, warnings });
      `,
      { OTEL_SDK_DISABLED: 'true' },
    );
    expect(result).toMatchObject({ exporter: false, disabled: true, tracer: 'NonRecordingSpan' });
    expect(result.warnings.join('\n')).toMatch(/OTEL_SDK_DISABLED=true in process\.env/);
  });

  it('span limits: a bad value is reported and the default applies, and the specification names for event attributes count', async () => {
    const script = `
      import { trace } from '@opentelemetry/api';
      import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
      import { startTracing } from '@tracehouse/instrumentation';
      const memory = new InMemorySpanExporter();
      const tracing = startTracing({ spanExporter: memory, shutdownSignals: [], esmLoaderHook: false });
      const span = trace.getTracer('t').startSpan('work', { attributes: { a: 1, b: 2, c: 3 } });
      span.addEvent('e', { x: 1, y: 2, z: 3 });
      span.end();
      await tracing.forceFlush();
      const [done] = memory.getFinishedSpans();
      report({ attributes: Object.keys(done.attributes), eventAttributes: Object.keys(done.events[0].attributes), warnings });
      await tracing.shutdown();
    `;
    type Report = { attributes: string[]; eventAttributes: string[]; warnings: string[] };
    const [negative, specNames] = await Promise.all([
      runChild<Report>(script, { OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT: '-1' }),
      runChild<Report>(script, { OTEL_ATTRIBUTE_COUNT_LIMIT: '2', OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT: '1' }),
    ]);
    // -1 (meant as "no limit"?) used to drop every attribute, silently.
    expect(negative.attributes).toEqual(['a', 'b', 'c']);
    expect(negative.warnings.join('\n')).toMatch(/OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT: got "-1".* ignored/);
    expect(specNames).toMatchObject({ attributes: ['a', 'b'], eventAttributes: ['x'], warnings: [] });
  });

  it('OTEL_TRACES_EXPORTER=none exports and records nothing, and the trace context still flows through', async () => {
    const result = await runChild<{ exporter: boolean; span: string; traceparent: string | undefined; warnings: string[] }>(
      `
      import { context, propagation, trace } from '@opentelemetry/api';
      import { startTracing } from '@tracehouse/instrumentation';
      const tracing = startTracing({ shutdownSignals: [], esmLoaderHook: false });
      const incoming = propagation.extract(context.active(), { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' });
      const span = trace.getTracer('t').startSpan('work', {}, incoming);
      const outgoing = {};
      propagation.inject(trace.setSpan(incoming, span), outgoing);
      span.end();
      report({ exporter: tracing.exporter !== undefined, span: span.constructor.name, traceparent: outgoing.traceparent, warnings });
      await tracing.shutdown();
      `,
      { OTEL_TRACES_EXPORTER: 'none', TRACEHOUSE_RABBITMQ_URL: 'amqp://127.0.0.1:1' },
    );
    expect(result).toMatchObject({ exporter: false, span: 'NonRecordingSpan', warnings: [] });
    expect(result.traceparent).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01$/);
  });

  it('OTEL_TRACES_EXPORTER naming an exporter this package does not offer is reported, and spans still go to RabbitMQ', async () => {
    const result = await runChild<{ exporter: boolean; span: string; warnings: string[] }>(
      `
      import { trace } from '@opentelemetry/api';
      import { startTracing } from '@tracehouse/instrumentation';
      const tracing = startTracing({ shutdownSignals: [], esmLoaderHook: false, shutdownTimeoutMillis: 100 });
      const span = trace.getTracer('t').startSpan('work');
      report({ exporter: tracing.exporter !== undefined, span: span.constructor.name, warnings });
      await tracing.shutdown();
      `,
      { OTEL_TRACES_EXPORTER: 'otlp', TRACEHOUSE_RABBITMQ_URL: 'amqp://127.0.0.1:1' },
    );
    expect(result).toMatchObject({ exporter: true, span: 'SpanImpl' });
    expect(result.warnings.join('\n')).toMatch(/OTEL_TRACES_EXPORTER: got "otlp".*ignored, spans go to RabbitMQ/);
  });

  it('OTEL_METRICS_EXPORTER given only in options.env starts no metrics exporter (the SDK would read process.env)', async () => {
    const result = await runChild<{ meterProvider: string; warnings: string[] }>(
      `
      import { metrics } from '@opentelemetry/api';
      import { startTracing } from '@tracehouse/instrumentation';
      const tracing = startTracing({ env: { OTEL_METRICS_EXPORTER: 'console', TRACEHOUSE_RABBITMQ_URL: 'amqp://127.0.0.1:1' }, shutdownSignals: [], esmLoaderHook: false, shutdownTimeoutMillis: 100 });
      report({ meterProvider: metrics.getMeterProvider().constructor.name, warnings });
      await tracing.shutdown();
      `,
    );
    expect(result.meterProvider).toBe('NoopMeterProvider');
    expect(result.warnings.join('\n')).toMatch(/options\.env: OTEL_METRICS_EXPORTER not applied/);
  });
});

describe('diagnostics with OTEL_LOG_LEVEL and no logger of the app', () => {
  it('what startTracing reports before the SDK is built reaches the console, without "overwritten" noise', async () => {
    const stderr = await runChildForStderr(
      `
      import { startTracing } from '@tracehouse/instrumentation';
      const tracing = startTracing({ serviceName: 'diag', shutdownSignals: [], esmLoaderHook: false });
      await tracing.shutdown();
      `,
      { OTEL_LOG_LEVEL: 'warn', OTEL_BSP_SCHEDULE_DELAY: 'soon', TRACEHOUSE_RABBITMQ_URL: 'amqp://127.0.0.1:1' },
    );
    expect(stderr).toMatch(/OTEL_BSP_SCHEDULE_DELAY: got "soon"/);
    expect(stderr).not.toMatch(/overwrit/);
  });
});
