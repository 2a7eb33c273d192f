// startTracing against the real RabbitMQ, each case in its own process (see child-script.test.helpers.ts).
import { randomBytes } from 'node:crypto';
import { decodeSpans, type Span } from '@tracehouse/model';
import { connect, type ChannelModel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runChild } from './child-script.test.helpers.js';
import type { ExporterStats } from './exporter-stats.js';

const RABBITMQ_URL = process.env.TRACEHOUSE_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

let broker: ChannelModel;
const queues: string[] = [];

beforeAll(async () => {
  broker = await connect(RABBITMQ_URL);
});

afterAll(async () => {
  const channel = await broker.createChannel();
  for (const queue of queues) await channel.deleteQueue(queue);
  await broker.close();
});

/** A new durable queue, deleted after the tests. */
async function newQueue(): Promise<string> {
  const queue = `th-instr-start-tracing-${randomBytes(4).toString('hex')}`;
  queues.push(queue);
  const channel = await broker.createChannel();
  await channel.assertQueue(queue, { durable: true });
  await channel.close();
  return queue;
}

async function readQueue(queue: string): Promise<{ messages: number; spans: Span[]; contentEncodings: Set<unknown> }> {
  const channel = await broker.createChannel();
  const spans: Span[] = [];
  const contentEncodings = new Set<unknown>();
  let messages = 0;
  for (;;) {
    const message = await channel.get(queue, { noAck: true });
    if (message === false) break;
    messages++;
    contentEncodings.add(message.properties.contentEncoding);
    const decoded = decodeSpans(message.content, { contentEncoding: message.properties.contentEncoding as string | undefined });
    if (!decoded.ok) throw new Error(`undecodable message: ${decoded.message}`);
    spans.push(...decoded.spans);
  }
  await channel.close();
  return { messages, spans, contentEncodings };
}

describe('startTracing shutdown', () => {
  it('shuts the exporter down even when the last flush failed, so what it buffers is delivered', async () => {
    const queue = await newQueue();
    // 20 spans wait in the batch processor; at shutdown they go to the exporter in one batch,
    // of which a 5-span buffer keeps 5 and drops 15: the batch is FAILED and the SDK's shutdown
    // chain (flush, then exporter.shutdown()) stops at the flush.
    const { stats, warnings } = await runChild<{ stats: ExporterStats; warnings: string[] }>(
      `
      import { trace } from '@opentelemetry/api';
      import { startTracing } from '@tracehouse/instrumentation';
      const tracing = startTracing({
        serviceName: 'shutdown-after-drop',
        maxBufferedSpans: 5,
        scheduledDelayMillis: 60000,
        shutdownSignals: [],
        esmLoaderHook: false,
      });
      for (let i = 0; i < 20; i++) trace.getTracer('t').startSpan('step ' + i).end();
      await tracing.shutdown();
      report({ stats: tracing.stats(), warnings });
      `,
      { TRACEHOUSE_RABBITMQ_URL: RABBITMQ_URL, TRACEHOUSE_QUEUE: queue, TRACEHOUSE_COMPRESSION: 'none' },
    );
    expect(stats.spansDropped).toMatchObject({ buffer_full: 15, too_large: 0, conversion_error: 0, shutdown: 0 });
    expect(stats.spansExported).toBe(5);
    expect(stats.bufferedSpans).toBe(0);
    expect(warnings.join('\n')).toMatch(/15 of 20 spans dropped/);

    const { messages, spans, contentEncodings } = await readQueue(queue);
    expect(messages).toBe(stats.messagesPublished);
    expect(contentEncodings).toEqual(new Set([undefined])); // TRACEHOUSE_COMPRESSION=none reached the exporter
    expect(spans).toHaveLength(5);
    expect(new Set(spans.map((s) => s.localEndpoint?.serviceName))).toEqual(new Set(['shutdown-after-drop']));
  });
});

describe('startTracing on SIGTERM', () => {
  it('when the app listens for the signal too, the spans of the requests it lets finish are delivered; a span after shutdown is counted', async () => {
    const queue = await newQueue();
    const { stats } = await runChild<{ stats: ExporterStats }>(
      `
      import { trace } from '@opentelemetry/api';
      import { startTracing } from '@tracehouse/instrumentation';
      const tracing = startTracing({ serviceName: 'graceful-stop', scheduledDelayMillis: 60000, esmLoaderHook: false });
      const tracer = trace.getTracer('t');
      tracer.startSpan('ended before the signal').end();
      const inFlight = tracer.startSpan('in flight at the signal');
      // The app's own handler, as a server's graceful stop: requests finish, then it shuts tracing down.
      process.on('SIGTERM', () => {
        setTimeout(async () => {
          inFlight.end();
          await tracing.shutdown();
          tracer.startSpan('after shutdown').end();
          report({ stats: tracing.stats() });
        }, 200);
      });
      process.kill(process.pid, 'SIGTERM');
      `,
      { TRACEHOUSE_RABBITMQ_URL: RABBITMQ_URL, TRACEHOUSE_QUEUE: queue },
    );
    expect(stats.spansExported).toBe(2);
    expect(stats.spansDropped.shutdown).toBe(1);
    const { spans } = await readQueue(queue);
    expect(spans.map((span) => span.name).sort()).toEqual(['ended before the signal', 'in flight at the signal']);
  });
});
