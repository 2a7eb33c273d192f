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
    const collector = await CollectorProcess.spawn({
      queue,
      database,
      clickhouseUrl: clickhouse.url,
      ...(broker === undefined ? {} : { rabbitmqUrl: broker.url }),
      env: {
        TRACEHOUSE_LOG_LEVEL: 'warn',
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
    cleanup.push(async () => void (await collector.stop()));
    await collector.waitReady();

    const peaks = { inflight: 0, pendingBytes: 0 };
    const watch = async (): Promise<void> => {
      const m = await collector.metrics();
      peaks.inflight = Math.max(peaks.inflight, m.value(METRIC.inflight));
      peaks.pendingBytes = Math.max(peaks.pendingBytes, m.value(PENDING_BYTES));
    };
    /**
     * Messages of 400 spans, about 120 KB (rows of about 200 KB), arriving as a busy service
     * sends them: 60 a second.
     */
    const publishSteadily = async (messages: number): Promise<Span[]> => {
      const sent = makeSpans(messages * 400, { perTrace: 25 });
      const bodies = chunk(sent, 400).map((spans) => encodeJsonV2(spans));
      expect(bodies[0]!.length).toBeGreaterThan(100_000);
      for (const tenth of chunk(bodies, 6)) {
        await rabbit.publishAll(queue, tenth);
        await watch();
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await watch();
      return sent;
    };
    return { queue, store, clickhouse, broker, collector, peaks, watch, publishSteadily };
  }

  it('pauses consumption while the rows of unacked messages reach it, and loses nothing', async () => {
    const { queue, store, clickhouse, collector, peaks, watch, publishSteadily } = await bed();
    clickhouse.cut();
    // 300 messages: 30 times the bound, within the prefetch.
    const sent = await publishSteadily(300);
    expect((await collector.metrics()).value(PAUSES)).toBeGreaterThanOrEqual(1);
    // What the broker sent before it saw the pause comes on top of the bound: a few messages.
    expect(peaks.pendingBytes).toBeGreaterThanOrEqual(MAX_PENDING_BYTES);
    expect(peaks.pendingBytes).toBeLessThan(2 * MAX_PENDING_BYTES);
    expect(peaks.inflight).toBeLessThan(PREFETCH / 10);
    // The backlog waits in RabbitMQ.
    expect(await rabbit.messageCount(queue)).toBeGreaterThan(PREFETCH / 2);
    expect(collector.running).toBe(true);

    // Resumed, the replica takes from the backlog only what fits in the bound, not a whole prefetch.
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

  it('reconnects when the broker refuses to resume, and keeps the bound across reconnects', async () => {
    const { queue, clickhouse, broker, collector, peaks, watch, publishSteadily } = await bed({ proxyRabbitMq: true });
    clickhouse.cut();
    await publishSteadily(120);
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
    expect(collector.logs.some((line) => line.includes('could not pause or resume consumption; reconnecting'))).toBe(true);
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
});
