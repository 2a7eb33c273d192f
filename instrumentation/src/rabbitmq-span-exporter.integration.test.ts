// The exporter against the real RabbitMQ: the wire contract of DESIGN.md.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createServer, connect as connectTcp, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import type { Tracer } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { decodeSpans, type Span } from '@tracehouse/model';
import { connect, type ChannelModel, type GetMessage } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { AmqpPublisher } from './amqp-publisher.js';
import { bufferHeldBytes, RabbitMqSpanExporter, type RabbitMqSpanExporterOptions } from './rabbitmq-span-exporter.js';
import { SLAB_BYTES } from './span-buffer.js';
import { ZipkinSpanConverter } from './zipkin-conversion.js';

const RABBITMQ_URL = process.env.TRACEHOUSE_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const RABBITMQCTL = ['/usr/sbin/rabbitmqctl', '/usr/lib/rabbitmq/bin/rabbitmqctl'].find((path) => existsSync(path));

let broker: ChannelModel;
const queues: string[] = [];

function queueName(): string {
  const name = `th-instr-exporter-${randomBytes(4).toString('hex')}`;
  queues.push(name);
  return name;
}

/** The finished spans of `count` calls of `record`, by a tracer of the service "inventory". */
function recordSpans(count: number, record: (tracer: Tracer, i: number) => void): ReadableSpan[] {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'inventory' }),
    spanProcessors: [new SimpleSpanProcessor(memory)],
  });
  const tracer = provider.getTracer('integration');
  for (let i = 0; i < count; i++) record(tracer, i);
  return memory.getFinishedSpans();
}

function spans(count: number): ReadableSpan[] {
  return recordSpans(count, (tracer, i) =>
    tracer.startSpan(`reserve ${i}`, { attributes: { 'item.id': i, 'item.sku': `sku-${i}-${'z'.repeat(40)}` } }).end(),
  );
}

function exportAsync(exporter: RabbitMqSpanExporter, batch: ReadableSpan[]): Promise<ExportResult> {
  return new Promise((resolve) => exporter.export(batch, resolve));
}

async function drainQueue(queue: string): Promise<GetMessage[]> {
  const channel = await broker.createChannel();
  const messages: GetMessage[] = [];
  for (;;) {
    const message = await channel.get(queue, { noAck: true });
    if (message === false) break;
    messages.push(message);
  }
  await channel.close();
  return messages;
}

function decodeAll(messages: GetMessage[]): Span[] {
  return messages.flatMap((m) => {
    const result = decodeSpans(m.content, { contentEncoding: m.properties.contentEncoding as string | undefined });
    if (!result.ok) throw new Error(`undecodable message: ${result.message}`);
    return result.spans;
  });
}

/** Resolves once `condition` holds, polling; fails the test after 10 s. */
async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function exporter(queue: string, options: RabbitMqSpanExporterOptions = {}): RabbitMqSpanExporter {
  return new RabbitMqSpanExporter({ rabbitmqUrl: RABBITMQ_URL, queue, meterProvider: false, ...options });
}

beforeAll(async () => {
  broker = await connect(RABBITMQ_URL);
});

/**
 * A TCP proxy to the broker that can be cut (connections reset, new ones
 * refused) and restored on the same port, or stalled (nothing forwarded any
 * more, nothing closed: a broker that stopped answering).
 */
class BrokerProxy {
  readonly #target = new URL(RABBITMQ_URL);
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;
  #stalled = false;
  port = 0;

  get url(): string {
    return `amqp://${this.#target.username}:${this.#target.password}@127.0.0.1:${this.port}`;
  }

  async up(): Promise<void> {
    this.#stalled = false;
    const server = createServer((client) => {
      if (this.#stalled) {
        // Accepted, never answered.
        this.#sockets.add(client);
        client.on('error', () => undefined);
        client.on('close', () => this.#sockets.delete(client));
        return;
      }
      const upstream = connectTcp(Number(this.#target.port || 5672), this.#target.hostname);
      for (const socket of [client, upstream]) {
        this.#sockets.add(socket);
        socket.on('error', () => undefined);
        socket.on('close', () => {
          this.#sockets.delete(socket);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    this.#server = server;
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    const address = server.address();
    if (address !== null && typeof address === 'object') this.port = address.port;
  }

  /** Stops forwarding bytes either way; connections stay open, new ones are accepted and never answered. */
  stall(): void {
    this.#stalled = true;
    for (const socket of this.#sockets) {
      socket.unpipe();
      socket.pause();
    }
  }

  async down(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const socket of this.#sockets) socket.destroy();
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** A proxy that is up now and taken down when the test ends, passed or failed. */
async function brokerProxy(): Promise<BrokerProxy> {
  const proxy = new BrokerProxy();
  await proxy.up();
  onTestFinished(() => proxy.down());
  return proxy;
}

/** Spans of varied sizes: some longer than a 64 KiB slab, some longer than that. */
function variedSpans(count: number): ReadableSpan[] {
  return recordSpans(count, (tracer, i) => {
    const attributes: Record<string, string | number> = { 'item.id': i, 'url.path': `/items/${i}/${'p'.repeat((i * 37) % 500)}` };
    if (i % 151 === 0) attributes['blob'] = 'b'.repeat(70_000);
    if (i % 401 === 0) attributes['huge'] = 'h'.repeat(150_000);
    tracer.startSpan(`reserve ${i % 20}`, { attributes }).end();
  });
}

afterAll(async () => {
  const channel = await broker.createChannel();
  for (const queue of queues) await channel.deleteQueue(queue);
  await broker.close();
});

describe('RabbitMqSpanExporter with RabbitMQ', () => {
  it('publishes persistent, confirmed, gzipped messages of many spans, each within the size limit before compression', async () => {
    const queue = queueName();
    const sut = exporter(queue, { maxMessageBytes: 64 * 1024 });
    const batch = spans(1500);
    const first = exportAsync(sut, batch.slice(0, 700));
    const second = exportAsync(sut, batch.slice(700));
    expect((await first).code).toBe(ExportResultCode.SUCCESS);
    expect((await second).code).toBe(ExportResultCode.SUCCESS);
    await sut.forceFlush();
    const stats = sut.stats();
    expect(stats.spansExported).toBe(1500);
    expect(stats.bufferedSpans).toBe(0);
    expect(stats.connected).toBe(true);
    await sut.shutdown();

    const messages = await drainQueue(queue);
    expect(messages.length).toBe(stats.messagesPublished);
    expect(messages.length).toBeGreaterThan(2);
    expect(messages.length).toBeLessThan(50);
    for (const message of messages) {
      expect(message.fields.exchange).toBe('');
      expect(message.fields.routingKey).toBe(queue);
      expect(message.properties.deliveryMode).toBe(2);
      expect(message.properties.contentType).toBeUndefined();
      expect(message.properties.contentEncoding).toBe('gzip');
      const body = gunzipSync(message.content);
      expect(body.length).toBeLessThanOrEqual(64 * 1024);
      expect(body[0]).toBe(0x5b); // JSON list
      expect(message.content.length).toBeLessThan(body.length / 4);
    }
    const decoded = decodeAll(messages);
    expect(decoded.map((s) => s.id).sort()).toEqual(batch.map((s) => s.spanContext().spanId).sort());
    expect(decoded[0]?.localEndpoint?.serviceName).toBe('inventory');
  });

  it('gzips with an unknown compression (from untyped code) instead of failing', async () => {
    const queue = queueName();
    const sut = exporter(queue, { compression: 'brotli' as 'gzip' });
    await exportAsync(sut, spans(3));
    await sut.shutdown();
    const messages = await drainQueue(queue);
    expect(messages.map((m) => m.properties.contentEncoding as unknown)).toEqual(['gzip']);
    expect(decodeAll(messages)).toHaveLength(3);
  });

  it('publishes bodies as they are with compression none', async () => {
    const queue = queueName();
    const sut = exporter(queue, { compression: 'none' });
    const batch = spans(20);
    await exportAsync(sut, batch);
    await sut.shutdown();
    const messages = await drainQueue(queue);
    expect(messages).toHaveLength(1);
    const message = messages[0] as GetMessage;
    expect(message.properties.contentEncoding).toBeUndefined();
    expect(message.content[0]).toBe(0x5b); // JSON list, as Zipkin's own senders publish it
    expect(decodeAll(messages).map((s) => s.id).sort()).toEqual(batch.map((s) => s.spanContext().spanId).sort());
  });

  it('fills a message from batches exported in separate turns, and publishes a part-filled one after messageTimeoutMillis without a flush', async () => {
    const queue = queueName();
    const sut = exporter(queue, { messageTimeoutMillis: 500 });
    await exportAsync(sut, spans(1)); // connects; the lone span goes out once it has waited
    await until(() => sut.stats().spansExported === 1);
    const batch = spans(300);
    for (let i = 0; i < 300; i += 100) {
      expect((await exportAsync(sut, batch.slice(i, i + 100))).code).toBe(ExportResultCode.SUCCESS);
      await new Promise((resolve) => setTimeout(resolve, 20)); // the exporter's drain runs in between
    }
    await until(() => sut.stats().spansExported === 301);
    const stats = sut.stats();
    await sut.shutdown();
    const messages = await drainQueue(queue);
    expect(stats.messagesPublished).toBe(2);
    expect(messages.map((m) => decodeAll([m]).length)).toEqual([1, 300]);
  });

  it('publishes each batch at once with messageTimeoutMillis 0', async () => {
    const queue = queueName();
    const sut = exporter(queue, { messageTimeoutMillis: 0 });
    await exportAsync(sut, spans(1));
    await sut.forceFlush();
    const batch = spans(300);
    for (let i = 0; i < 300; i += 100) {
      await exportAsync(sut, batch.slice(i, i + 100));
      await until(() => sut.stats().spansExported === 1 + i + 100);
    }
    const stats = sut.stats();
    await sut.shutdown();
    expect(stats.messagesPublished).toBe(4);
    expect((await drainQueue(queue)).map((m) => decodeAll([m]).length)).toEqual([1, 100, 100, 100]);
  });

  it('publishes proto3 ListOfSpans when asked', async () => {
    const queue = queueName();
    const sut = exporter(queue, { encoding: 'proto3' });
    await exportAsync(sut, spans(10));
    await sut.shutdown();
    const messages = await drainQueue(queue);
    expect(messages).toHaveLength(1);
    const result = decodeSpans((messages[0] as GetMessage).content, { contentEncoding: (messages[0] as GetMessage).properties.contentEncoding as string | undefined });
    expect(result.ok && result.encoding).toBe('PROTO3');
    expect(result.ok && result.spans.length).toBe(10);
  });

  it('declares a missing queue durable, and leaves a queue declared with other arguments alone', async () => {
    const missing = queueName();
    const sut = exporter(missing);
    await exportAsync(sut, spans(2));
    await sut.shutdown();
    const channel = await broker.createChannel();
    expect((await channel.checkQueue(missing)).messageCount).toBe(1);

    const existing = queueName();
    await channel.assertQueue(existing, { durable: true, arguments: { 'x-max-length': 100_000, 'x-queue-mode': 'lazy' } });
    await channel.close();
    const other = exporter(existing);
    await exportAsync(other, spans(3));
    await other.forceFlush();
    expect(other.stats().spansExported).toBe(3);
    expect(other.stats().publishFailures).toBe(0);
    await other.shutdown();
    expect(decodeAll(await drainQueue(existing))).toHaveLength(3);
  });

  it('delivers what it buffered before it could connect once the broker answers', async () => {
    const queue = queueName();
    // Buffer first (no connection attempt has finished yet), then let it connect.
    const sut = exporter(queue);
    const results = await Promise.all([exportAsync(sut, spans(5)), exportAsync(sut, spans(5))]);
    expect(results.every((r) => r.code === ExportResultCode.SUCCESS)).toBe(true);
    await sut.shutdown();
    expect(sut.stats().spansExported).toBe(10);
    expect(sut.stats().spansDropped.shutdown).toBe(0);
    expect(decodeAll(await drainQueue(queue))).toHaveLength(10);
  });

  it('delivers exactly the spans it did not drop, each as the reference converts it, across broker outages, a full buffer and shutdown', async () => {
    const queue = queueName();
    const proxy = await brokerProxy();
    const all = variedSpans(3000);
    const sut = exporter(queue, {
      rabbitmqUrl: proxy.url,
      // Small messages one at a time: spans are taken while others are written, slabs turn over often.
      maxMessageBytes: 20_000,
      maxInFlightMessages: 1,
      maxBufferedBytes: 400_000,
      maxBufferedSpans: 1500,
      initialReconnectDelayMillis: 20,
      maxReconnectDelayMillis: 100,
      shutdownTimeoutMillis: 20_000,
    });
    let next = 0;
    const exportSome = async (count: number): Promise<void> => {
      await exportAsync(sut, all.slice(next, next + count));
      next += count;
    };
    for (let i = 0; i < 5; i++) await exportSome(100);
    await proxy.down(); // publishes in flight fail and go back to the buffer
    for (let i = 0; i < 8; i++) await exportSome(100); // the buffer fills: drops
    await proxy.up();
    for (let i = 0; i < 5; i++) await exportSome(100);
    await sut.forceFlush();
    await exportSome(300);
    await proxy.down();
    await exportSome(300);
    await proxy.up();
    await exportSome(all.length - next);
    await sut.shutdown(); // delivers what is left
    await proxy.down();
    const stats = sut.stats();
    expect(stats.publishFailures).toBeGreaterThan(0);
    expect(stats.spansDropped.buffer_full).toBeGreaterThan(0);
    // Spans over a message's size are cut down to fit, not dropped.
    expect(stats.spansDropped.too_large).toBe(0);
    expect(stats.spansDropped.shutdown).toBe(0);

    // Each span as the reference converter gives it, decoded the same way.
    const converter = new ZipkinSpanConverter();
    const reference = new Map<string, Span>();
    for (const span of all) {
      const result = decodeSpans(Buffer.from(`[${JSON.stringify(converter.convert(span))}]`, 'utf8'));
      if (!result.ok) throw new Error(result.message);
      reference.set(span.spanContext().spanId, result.spans[0] as Span);
    }
    const delivered = new Map<string, Span>();
    let cut = 0;
    for (const message of await drainQueue(queue)) {
      const result = decodeSpans(message.content, { contentEncoding: message.properties.contentEncoding as string | undefined });
      if (!result.ok) throw new Error(`undecodable message: ${result.message}`);
      expect(result.dropped).toEqual([]);
      // A message whose confirm was lost with the connection may come twice; never a changed span,
      // but for the values of a span too large for a message, cut to fit.
      for (const span of result.spans) {
        const expected = structuredClone(reference.get(span.id)) as Span;
        for (const [key, value] of Object.entries(span.tags ?? {})) {
          const mark = /…\[(\d+) characters cut\]$/.exec(value);
          if (mark === null || expected.tags === undefined) continue;
          const full = expected.tags[key] as string;
          const kept = value.slice(0, mark.index);
          expect(full.startsWith(kept) && full.length - kept.length === Number(mark[1]), key).toBe(true);
          expected.tags[key] = value;
          cut++;
        }
        expect(span).toEqual(expected);
        delivered.set(span.id, span);
      }
    }
    expect(cut).toBeGreaterThan(0);
    const dropped = Object.values(stats.spansDropped).reduce((sum, n) => sum + n, 0);
    expect(delivered.size).toBe(all.length - dropped);
  }, 60_000);

  it('counts the messages in flight when shutdown gives up on a broker that stopped answering, once, and returns within its timeout', async () => {
    const queue = queueName();
    const proxy = await brokerProxy();
    const sut = exporter(queue, {
      rabbitmqUrl: proxy.url,
      messageTimeoutMillis: 0,
      shutdownTimeoutMillis: 200,
      maxMessageBytes: 5000, // many messages: 8 in flight, the rest buffered
    });
    await exportAsync(sut, spans(10));
    await sut.forceFlush();
    expect(sut.stats().spansExported).toBe(10); // connected

    proxy.stall();
    const batch = spans(200);
    for (let i = 0; i < batch.length; i += 50) await exportAsync(sut, batch.slice(i, i + 50));
    await new Promise((resolve) => setTimeout(resolve, 100)); // published, the confirms never come
    const started = Date.now();
    await sut.shutdown();
    const took = Date.now() - started;
    const stats = sut.stats();
    const dropped = Object.values(stats.spansDropped).reduce((sum, n) => sum + n, 0);
    expect(took).toBeLessThan(2000);
    expect(stats.spansExported + dropped + stats.bufferedSpans).toBe(210);
    expect(stats).toMatchObject({ spansExported: 10, bufferedSpans: 0 });
    expect(stats.spansDropped.shutdown).toBe(200);

    // Whatever settles the abandoned publishes later (here: the connection dropped) counts nothing again.
    await proxy.down();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(sut.stats()).toEqual(stats);
  });

  it('AmqpPublisher.close() settles a publish that a broker which stopped answering never confirms', async () => {
    const queue = queueName();
    const proxy = await brokerProxy();
    let ready = false;
    const publisher = new AmqpPublisher({ url: proxy.url, queue, onReady: () => (ready = true) });
    publisher.start();
    await until(() => ready);
    await publisher.publish(Buffer.from('[]')); // confirmed

    proxy.stall();
    const outcome = publisher.publish(Buffer.from('[]')).then(
      () => 'confirmed',
      (error: Error) => error.message,
    );
    const started = Date.now();
    await publisher.close(100);
    expect(Date.now() - started).toBeLessThan(1000);
    // Settled by close() itself, not 30 s later by the (unref()'d) confirm timer.
    const pending = new Promise<string>((resolve) => setImmediate(() => resolve('pending')));
    expect(await Promise.race([outcome, pending])).toBe('connection closed before the broker confirmed');
  });

  it('forceFlush connects at once when the broker is back, instead of waiting out the reconnect backoff', async () => {
    const queue = queueName();
    const proxy = await brokerProxy();
    // After the outage the next attempt is 2.4-3.6 s away: longer than the flush waits.
    const sut = exporter(queue, {
      rabbitmqUrl: proxy.url,
      initialReconnectDelayMillis: 3000,
      maxReconnectDelayMillis: 3000,
      flushTimeoutMillis: 1000,
    });
    await exportAsync(sut, spans(5));
    await sut.forceFlush();
    expect(sut.stats().spansExported).toBe(5);

    await proxy.down();
    await until(() => !sut.stats().connected);
    await exportAsync(sut, spans(7));
    await proxy.up();
    const started = Date.now();
    await sut.forceFlush();
    const took = Date.now() - started;
    const stats = sut.stats();
    await sut.shutdown();
    expect(stats).toMatchObject({ bufferedSpans: 0, spansExported: 12 });
    expect(took).toBeLessThan(1000);
    expect(decodeAll(await drainQueue(queue))).toHaveLength(12);
  });

  it('lets go of the slab grown for a span too large to send: afterwards the buffer holds its usual memory', async () => {
    const queue = queueName();
    const maxMessageBytes = 500_000; // the default
    const sut = exporter(queue, { messageTimeoutMillis: 0, maxMessageBytes });
    const normal = spans(300);
    await exportAsync(sut, normal.slice(0, 100));
    await sut.forceFlush(); // the buffer is empty when the large span comes: it grows the slab written into
    const large = recordSpans(1, (tracer) => tracer.startSpan('upload', { attributes: { body: 'x'.repeat(5_000_000) } }).end());
    await exportAsync(sut, [...large, ...normal.slice(100, 200)]);
    await exportAsync(sut, normal.slice(200));
    await sut.forceFlush();
    const stats = sut.stats();
    const held = bufferHeldBytes(sut);
    await sut.shutdown();
    // The large span was cut down to fit a message, and sent.
    expect(stats.spansDropped.too_large).toBe(0);
    expect(stats).toMatchObject({ spansExported: 301, bufferedSpans: 0 });
    // At most 16 spare slabs and the one written, 2 spare message bodies (today's figure: over 10 MB).
    expect(held).toBeLessThanOrEqual(17 * SLAB_BYTES + 2 * maxMessageBytes + SLAB_BYTES);
    const delivered = decodeAll(await drainQueue(queue));
    expect(delivered).toHaveLength(301);
    const upload = delivered.find((span) => span.name === 'upload');
    expect(upload?.tags?.['body']).toMatch(/^x+…\[\d+ characters cut\]$/);
    expect(upload?.tags?.['body']?.length).toBeLessThan(maxMessageBytes);
  });

  it('notices a queue deleted under it, declares it again and delivers the spans there', async () => {
    const queue = queueName();
    const sut = exporter(queue, { initialReconnectDelayMillis: 50 });
    await exportAsync(sut, spans(3));
    await sut.forceFlush();
    expect(sut.stats().spansExported).toBe(3);

    const channel = await broker.createChannel();
    await channel.deleteQueue(queue);
    await channel.close();

    await exportAsync(sut, spans(4));
    await sut.forceFlush();
    const stats = sut.stats();
    await sut.shutdown();
    expect(stats.publishFailures).toBeGreaterThanOrEqual(1); // the returned message
    expect(stats.spansExported).toBe(7);
    expect(stats.bufferedSpans).toBe(0);
    // The first 3 went down with the deleted queue; the 4 later ones are in the new one.
    expect(decodeAll(await drainQueue(queue))).toHaveLength(4);
  });

  it('keeps spans the broker nacks (a full reject-publish queue) buffered, and delivers them once it takes them', async () => {
    const queue = queueName();
    const channel = await broker.createChannel();
    await channel.assertQueue(queue, { durable: true, arguments: { 'x-max-length': 0, 'x-overflow': 'reject-publish' } });
    const sut = exporter(queue, { messageTimeoutMillis: 0, maxBufferedSpans: 6 });
    await exportAsync(sut, spans(6));
    await until(() => sut.stats().publishFailures >= 3); // nacked, put back, tried again each second
    // A service keeps exporting meanwhile: that must not republish the nacked message at once, every time.
    const failuresBefore = sut.stats().publishFailures;
    const started = Date.now();
    let offered = 6;
    while (Date.now() - started < 2_000) {
      await exportAsync(sut, spans(1));
      offered++;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    // A retry round a second (the message put back, and one of the spans exported since), not one per export.
    expect(sut.stats().publishFailures - failuresBefore).toBeLessThanOrEqual(10);
    expect(sut.stats().bufferedSpans).toBeGreaterThanOrEqual(6);
    expect(sut.stats().spansExported).toBe(0);
    expect(sut.stats().spansDropped.buffer_full).toBeGreaterThan(100);
    expect(sut.stats().spansDropped.rejected).toBe(0);

    // The queue makes room (here: replaced by one without a limit): the same spans go through.
    // Replaced right after a nack, while nothing is in flight: a message published to a queue
    // being deleted can be confirmed and lost (the broker's doing, not the exporter's).
    const failures = sut.stats().publishFailures;
    await until(() => sut.stats().publishFailures > failures);
    await channel.deleteQueue(queue);
    await channel.assertQueue(queue, { durable: true });
    await channel.close();
    await sut.forceFlush();
    const stats = sut.stats();
    await sut.shutdown();
    // The buffer's 6, and the spans of messages in flight when it filled: each span offered is
    // either delivered or counted as dropped, and what was confirmed is in the queue.
    expect(stats.bufferedSpans).toBe(0);
    expect(stats.spansExported).toBeGreaterThanOrEqual(6);
    expect(stats.spansExported + stats.spansDropped.buffer_full).toBe(offered);
    expect(decodeAll(await drainQueue(queue))).toHaveLength(stats.spansExported);
  });

  it('delivers at shutdown what a nack put back, without waiting for the retry, once the queue takes it', async () => {
    const queue = queueName();
    const channel = await broker.createChannel();
    await channel.assertQueue(queue, { durable: true, arguments: { 'x-max-length': 0, 'x-overflow': 'reject-publish' } });
    const sut = exporter(queue, { messageTimeoutMillis: 0, shutdownTimeoutMillis: 400 });
    await exportAsync(sut, spans(4));
    await until(() => sut.stats().publishFailures >= 1); // nacked: the next try would be a second later
    await channel.deleteQueue(queue);
    await channel.assertQueue(queue, { durable: true });
    await channel.close();
    await sut.shutdown();
    expect(sut.stats()).toMatchObject({ spansExported: 4, bufferedSpans: 0 });
    expect(sut.stats().spansDropped.shutdown).toBe(0);
    expect(decodeAll(await drainQueue(queue))).toHaveLength(4);
  });

  // Only where the broker is local and managed by rabbitmqctl (not, say, in a container).
  it.skipIf(RABBITMQCTL === undefined)('drops and counts what the broker refuses for good (no write permission), one message at a time, then goes on', async () => {
    const rabbitmqctl = (...args: string[]) => promisify(execFile)(RABBITMQCTL as string, args);
    const user = `th-instr-readonly-${randomBytes(4).toString('hex')}`;
    await rabbitmqctl('add_user', user, 'secret');
    try {
      await rabbitmqctl('set_permissions', '-p', '/', user, '.*', '', '.*'); // configure, write, read
      const queue = queueName();
      const url = new URL(RABBITMQ_URL);
      url.username = user;
      url.password = 'secret';
      const sut = exporter(queue, {
        rabbitmqUrl: url.toString(),
        messageTimeoutMillis: 0,
        maxMessageBytes: 1500, // several messages
        initialReconnectDelayMillis: 10,
        maxReconnectDelayMillis: 50,
      });
      await exportAsync(sut, spans(12));
      // The broker closes the channel at each publish (ACCESS_REFUSED): every message is dropped after 5 refusals.
      await until(() => sut.stats().spansDropped.rejected === 12);
      expect(sut.stats()).toMatchObject({ bufferedSpans: 0, spansExported: 0 });
      const messages = sut.stats().publishFailures;
      expect(messages).toBeGreaterThanOrEqual(5 * 3);

      // Allowed to write again: later spans are delivered, nothing is stuck at the front.
      await rabbitmqctl('set_permissions', '-p', '/', user, '.*', '.*', '.*');
      await exportAsync(sut, spans(3));
      await sut.forceFlush();
      const stats = sut.stats();
      await sut.shutdown();
      expect(stats).toMatchObject({ spansExported: 3, bufferedSpans: 0 });
      expect(stats.spansDropped.rejected).toBe(12);
      expect(decodeAll(await drainQueue(queue))).toHaveLength(3);
    } finally {
      await rabbitmqctl('delete_user', user).catch(() => undefined);
    }
  });

  describe('in a script that ends (nothing else keeps the process alive)', () => {
    const packageDir = fileURLToPath(new URL('..', import.meta.url));
    const run = (script: string, queue: string): Promise<{ stdout: string }> =>
      promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
        cwd: packageDir,
        env: { PATH: process.env.PATH ?? '', TRACEHOUSE_RABBITMQ_URL: RABBITMQ_URL, TRACEHOUSE_QUEUE: queue },
        timeout: 30_000,
      });

    it('awaits shutdown() to the end: the spans are delivered and the script goes on', async () => {
      const queue = queueName();
      const { stdout } = await run(
        `
        import { trace } from '@opentelemetry/api';
        import { startTracing } from '@tracehouse/instrumentation';
        const tracing = startTracing({ serviceName: 'script', shutdownSignals: [], esmLoaderHook: false });
        for (let i = 0; i < 25; i++) trace.getTracer('script').startSpan('step ' + i).end();
        await tracing.forceFlush();
        console.log('flushed ' + tracing.stats().spansExported);
        await tracing.shutdown();
        console.log('done');
        `,
        queue,
      );
      expect(stdout).toContain('flushed 25');
      expect(stdout).toContain('done');
      expect(decodeAll(await drainQueue(queue))).toHaveLength(25);
    });

    it('delivers when the event loop runs dry without an explicit shutdown', async () => {
      const queue = queueName();
      await run(
        `
        import { trace } from '@opentelemetry/api';
        import { startTracing } from '@tracehouse/instrumentation';
        startTracing({ serviceName: 'script', shutdownSignals: [], esmLoaderHook: false });
        for (let i = 0; i < 7; i++) trace.getTracer('script').startSpan('step ' + i).end();
        `,
        queue,
      );
      expect(decodeAll(await drainQueue(queue))).toHaveLength(7);
    });
  });
});
