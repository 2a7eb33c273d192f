/**
 * Prefetch bounds the messages a replica holds, not their bytes. Large
 * messages arriving while ClickHouse is unreachable must not fill the replica's
 * memory up to the prefetch: it pauses consumption at
 * TRACEHOUSE_COLLECTOR_MAX_PENDING_BYTES, leaves the backlog in RabbitMQ, and
 * stores everything once ClickHouse is back.
 */
import { encodeJsonV2, type Span } from '@tracehouse/model';
import { ClickHouseStore } from '@tracehouse/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLICKHOUSE_URL, CollectorProcess, METRIC, RABBITMQ_URL, Rabbit, TcpProxy, checkStored, chunk, makeSpans, uniqueName, waitFor } from './harness.js';

const MiB = 1024 * 1024;
const PREFETCH = 300;
const MAX_PENDING_BYTES = 2 * MiB;
const PENDING_BYTES = 'tracehouse_collector_pending_bytes';
const PAUSES = 'tracehouse_collector_consumer_pauses_total';
const RECONNECTS = 'tracehouse_collector_rabbitmq_reconnects_total';

describe('a byte bound on unacked messages', () => {
  let rabbit: Rabbit;
  const cleanup: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    rabbit = await Rabbit.open();
  });

  afterAll(async () => {
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
    await rabbit.close();
  });

  /** A collector consuming a new queue into a new database, with ClickHouse (and RabbitMQ, when asked) behind proxies the test can cut. */
  async function bed(o: { proxyRabbitMq?: boolean } = {}) {
    const queue = uniqueName('th_pending');
    const database = uniqueName('th_pending');
    const store = await ClickHouseStore.open({ url: CLICKHOUSE_URL, database });
    cleanup.push(async () => {
      await store.dropDatabase();
      await store.close();
    });
    const clickhouse = await TcpProxy.start(CLICKHOUSE_URL);
    cleanup.push(() => clickhouse.close());
    const broker = o.proxyRabbitMq === true ? await TcpProxy.start(RABBITMQ_URL) : undefined;
    if (broker !== undefined) cleanup.push(() => broker.close());
    cleanup.push(() => rabbit.deleteCollectorTopology(queue));
    const spawn = async (): Promise<CollectorProcess> => {
      const started = await CollectorProcess.spawn({
        queue,
        database,
        clickhouseUrl: clickhouse.url,
        ...(broker === undefined ? {} : { rabbitmqUrl: broker.url }),
        env: {
          TRACEHOUSE_LOG_LEVEL: 'info',
          TRACEHOUSE_COLLECTOR_PREFETCH: String(PREFETCH),
          TRACEHOUSE_COLLECTOR_MAX_PENDING_BYTES: String(MAX_PENDING_BYTES),
          // Batches close by age only, so a whole prefetch of messages would wait in them.
          TRACEHOUSE_COLLECTOR_BATCH_SPANS: '1000000',
          TRACEHOUSE_COLLECTOR_BATCH_MESSAGES: '1000',
          TRACEHOUSE_COLLECTOR_BATCH_AGE_MS: '200',
          TRACEHOUSE_COLLECTOR_INSERT_CONCURRENCY: '1',
          TRACEHOUSE_COLLECTOR_RETRY_MAX_MS: '500',
          TRACEHOUSE_COLLECTOR_RECONNECT_MAX_MS: '500',
          TRACEHOUSE_CLICKHOUSE_TIMEOUT_MS: '2000',
          TRACEHOUSE_CLICKHOUSE_INSERT_TIMEOUT_MS: '2000',
          TRACEHOUSE_COLLECTOR_SHUTDOWN_TIMEOUT_MS: '3000',
        },
      });
      cleanup.push(async () => void (await started.stop()));
      return started;
    };
    const collector = await spawn();
    await collector.waitReady();

    const peaks = { inflight: 0, pendingBytes: 0 };
    const watch = async (watched = collector): Promise<void> => {
      const m = await watched.metrics();
      peaks.inflight = Math.max(peaks.inflight, m.value(METRIC.inflight));
      peaks.pendingBytes = Math.max(peaks.pendingBytes, m.value(PENDING_BYTES));
    };
    const bodiesOf = (spans: Span[], perMessage: number): Buffer[] => chunk(spans, perMessage).map((part) => encodeJsonV2(part));
    /**
     * Messages of 400 spans, about 120 KB (rows of about 200 KB), arriving as a busy service
     * sends them: 60 a second.
     */
    const publishSteadily = async (messages: number): Promise<Span[]> => {
      const sent = makeSpans(messages * 400, { perTrace: 25 });
      const bodies = bodiesOf(sent, 400);
      expect(bodies[0]!.length).toBeGreaterThan(100_000);
      for (const tenth of chunk(bodies, 6)) {
        await rabbit.publishAll(queue, tenth);
        await watch();
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await watch();
      return sent;
    };
    return { queue, store, clickhouse, broker, collector, spawn, peaks, watch, bodiesOf, publishSteadily };
  }

  it('keeps the rows of unacked messages within it while ClickHouse is away, and loses nothing', async () => {
    const { queue, store, clickhouse, collector, peaks, watch, publishSteadily } = await bed();
    clickhouse.cut();
    // 300 messages: 30 times the bound, within the prefetch. The consumer's window is sized to
    // what fits in half the bound at the size of the larger messages lately.
    const sent = await publishSteadily(300);
    expect(peaks.pendingBytes).toBeGreaterThan(MAX_PENDING_BYTES / 4);
    expect(peaks.pendingBytes).toBeLessThan(MAX_PENDING_BYTES);
    expect(peaks.inflight).toBeLessThan(PREFETCH / 10);
    // The backlog waits in RabbitMQ.
    expect(await rabbit.messageCount(queue)).toBeGreaterThan(PREFETCH / 2);
    expect(collector.running).toBe(true);

    clickhouse.restore();
    peaks.pendingBytes = 0;
    await waitFor(
      async () => {
        await watch();
        return (await rabbit.messageCount(queue)) === 0 && (await collector.metrics()).value(METRIC.inflight) === 0;
      },
      { timeoutMs: 60_000, what: 'the backlog written once ClickHouse is back', intervalMs: 100 },
    );
    expect(peaks.pendingBytes).toBeLessThan(2 * MAX_PENDING_BYTES);
    const after = await collector.metrics();
    expect(after.value(PENDING_BYTES)).toBe(0);
    expect(after.value(METRIC.stored)).toBe(sent.length);
    expect(await checkStored(store.reader, sent)).toEqual({ expected: sent.length, missing: 0, duplicates: 0, unexpected: 0 });
  });

  it('pauses when messages outgrow the window, reconnects when the broker refuses to resume, and keeps the bound across reconnects', async () => {
    const { queue, clickhouse, broker, collector, peaks, watch, bodiesOf, publishSteadily } = await bed({ proxyRabbitMq: true });
    // Small messages first: the window stays the whole prefetch.
    await rabbit.publishAll(queue, bodiesOf(makeSpans(30 * 5), 5));
    await waitFor(async () => (await collector.metrics()).value(METRIC.stored) === 150, { timeoutMs: 20_000, what: 'the small messages stored' });
    expect(collector.logs.some((line) => line.includes('resizing the prefetch'))).toBe(false);
    // Then a burst of large ones while ClickHouse is away: more arrive than the bound holds before the window narrows.
    clickhouse.cut();
    await rabbit.publishAll(queue, bodiesOf(makeSpans(120 * 400, { perTrace: 25 }), 400));
    await waitFor(async () => (await collector.metrics()).value(PAUSES) >= 1, { timeoutMs: 20_000, what: 'the pause' });
    const paused = await collector.metrics();
    expect(paused.value(PAUSES)).toBeGreaterThanOrEqual(1);
    expect(paused.value(PENDING_BYTES)).toBeGreaterThanOrEqual(MAX_PENDING_BYTES);

    // The span queue is deleted while consumption is paused; once ClickHouse is back the resume is
    // refused (404). The replica reconnects, declaring the queue again, and stays responsive.
    await rabbit.deleteQueues(queue);
    clickhouse.restore();
    await waitFor(async () => (await collector.metrics()).value(RECONNECTS) >= 1 && (await collector.ready())?.status === 200, {
      timeoutMs: 20_000,
      what: 'the collector reconnected after the refused resume',
    });
    expect(collector.logs.some((line) => line.includes('could not pause, resume or resize consumption; reconnecting'))).toBe(true);
    for (let i = 0; i < 10; i++) {
      const started = Date.now();
      expect((await collector.ready())?.status).toBe(200);
      expect(Date.now() - started).toBeLessThan(1_000);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    // A new backlog while ClickHouse is away again: the new consumer has the byte-sized prefetch.
    clickhouse.cut();
    peaks.pendingBytes = 0;
    peaks.inflight = 0;
    await publishSteadily(120);
    expect(peaks.pendingBytes).toBeLessThan(2 * MAX_PENDING_BYTES);
    expect(peaks.inflight).toBeLessThan(PREFETCH / 10);

    // The broker connection drops: the consumer after that reconnect must not take a whole prefetch either.
    const reconnectsBefore = (await collector.metrics()).value(RECONNECTS);
    broker!.cut();
    broker!.restore();
    await waitFor(async () => (await collector.metrics()).value(RECONNECTS) > reconnectsBefore && (await collector.ready())?.body.rabbitmq === true, {
      timeoutMs: 20_000,
      what: 'the collector reconnected',
    });
    peaks.pendingBytes = 0;
    peaks.inflight = 0;
    for (let i = 0; i < 30; i++) {
      await watch();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(peaks.pendingBytes).toBeLessThan(2 * MAX_PENDING_BYTES);
    expect(peaks.inflight).toBeLessThan(PREFETCH / 10);
    expect(await rabbit.messageCount(queue)).toBeGreaterThan(0);
    // Stopped with ClickHouse away: what it holds stays with the broker, within the shutdown timeout.
    expect(await collector.stop(10_000)).toBe(0);
  });

  it('a replica starting on a backlog of large messages hands back what its first window brings over the bound, then narrows the window', async () => {
    const { queue, store, clickhouse, collector: first, spawn, peaks, watch, bodiesOf } = await bed();
    // The first replica declared the topology; the backlog piles up while no replica runs.
    expect(await first.stop()).toBe(0);
    const sent = makeSpans(200 * 400, { perTrace: 25 });
    await rabbit.publishAll(queue, bodiesOf(sent, 400));
    expect(await rabbit.messageCount(queue)).toBe(200);

    // ClickHouse goes away once the new replica has opened its store, before it consumes.
    const collector = await spawn();
    await waitFor(() => collector.logs.some((line) => line.includes('ClickHouse store open')), { timeoutMs: 20_000, intervalMs: 2, what: 'the store open' });
    clickhouse.cut();
    expect(collector.logs.some((line) => line.includes('"msg":"consuming"'))).toBe(false);
    await waitFor(async () => (await rabbit.messageCount(queue)) < 200, { timeoutMs: 20_000, what: 'consumption' });
    for (let i = 0; i < 20; i++) {
      await watch(collector);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // 200 messages of about 200 KB of rows each would be 40 MB: 20 times the bound.
    expect(peaks.pendingBytes).toBeGreaterThanOrEqual(MAX_PENDING_BYTES);
    expect(peaks.pendingBytes).toBeLessThan(1.25 * MAX_PENDING_BYTES);
    expect((await collector.metrics()).value('tracehouse_collector_messages_requeued_total')).toBeGreaterThan(0);
    expect(peaks.inflight).toBeLessThan(PREFETCH / 10);
    expect(await rabbit.messageCount(queue)).toBeGreaterThan(150);

    clickhouse.restore();
    await waitFor(async () => (await rabbit.messageCount(queue)) === 0 && (await collector.metrics()).value(METRIC.stored) === sent.length, {
      timeoutMs: 60_000,
      what: 'the backlog written once ClickHouse is back',
    });
    // The first window was the configured prefetch; the messages seen narrowed it.
    const consuming = collector.logs.filter((line) => line.includes('"msg":"consuming"')).map((line) => JSON.parse(line) as { prefetch?: number });
    expect(consuming[0]?.prefetch).toBe(PREFETCH);
    expect(collector.logs.some((line) => line.includes('resizing the prefetch'))).toBe(true);
    expect(await checkStored(store.reader, sent)).toEqual({ expected: sent.length, missing: 0, duplicates: 0, unexpected: 0 });
  });

  it('hands back, undecoded, what arrives over the bound when messages grow abruptly, and loses nothing', async () => {
    const { queue, store, clickhouse, collector, peaks, watch, bodiesOf } = await bed();
    // Small messages first: the window widens to the whole prefetch.
    const small = makeSpans(30 * 5);
    await rabbit.publishAll(queue, bodiesOf(small, 5));
    await waitFor(async () => (await collector.metrics()).value(METRIC.stored) === small.length, { timeoutMs: 20_000, what: 'the small messages stored' });
    // Then 80 large ones at once while ClickHouse is away: the broker pushes them into a window
    // sized for small messages before any resize or pause can reach it.
    clickhouse.cut();
    const large = makeSpans(80 * 400, { perTrace: 25 });
    await rabbit.publishAll(queue, bodiesOf(large, 400));
    await waitFor(async () => (await collector.metrics()).value(PAUSES) >= 1, { timeoutMs: 20_000, what: 'the pause' });
    for (let i = 0; i < 20; i++) {
      await watch();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // 80 messages of about 200 KB of rows would be 16 MB; the bound holds within about one message.
    expect(peaks.pendingBytes).toBeGreaterThanOrEqual(MAX_PENDING_BYTES);
    expect(peaks.pendingBytes).toBeLessThan(1.25 * MAX_PENDING_BYTES);
    expect((await collector.metrics()).value('tracehouse_collector_messages_requeued_total')).toBeGreaterThan(0);

    clickhouse.restore();
    const sent = [...small, ...large];
    await waitFor(async () => (await rabbit.messageCount(queue)) === 0 && (await collector.metrics()).value(METRIC.stored) === sent.length, {
      timeoutMs: 60_000,
      what: 'everything written once ClickHouse is back',
    });
    expect(await checkStored(store.reader, sent)).toEqual({ expected: sent.length, missing: 0, duplicates: 0, unexpected: 0 });
  });
});
