/**
 * ClickHouse goes away for more than 10 s while spans keep arriving: the
 * collectors stay up, stop pulling (memory bounded by the prefetch), report
 * not-ready, retry, and store everything exactly once when it is back.
 * Uses a private clickhouse-server so the shared one keeps serving others.
 */
import { encodeJsonV2, type Span } from '@tracehouse/model';
import { ClickHouseStore } from '@tracehouse/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CollectorProcess, METRIC, Rabbit, checkStored, chunk, makeSpans, sumMetric, uniqueName, waitFor } from './harness.js';
import { PrivateClickHouse } from './private-clickhouse.js';

const PREFETCH = 40;
const MiB = 1024 * 1024;

describe('ClickHouse outage', () => {
  const queue = uniqueName('th_outage');
  const database = uniqueName('th_outage');
  let clickhouse: PrivateClickHouse;
  let rabbit: Rabbit;
  let collectors: CollectorProcess[] = [];

  beforeAll(async () => {
    clickhouse = await PrivateClickHouse.launch();
    rabbit = await Rabbit.open();
    // Create the schema once so the collectors find it.
    const store = await ClickHouseStore.open({ url: clickhouse.url, database });
    await store.close();
    const env = {
      TRACEHOUSE_LOG_LEVEL: 'error',
      TRACEHOUSE_COLLECTOR_BATCH_SPANS: '2000',
      TRACEHOUSE_COLLECTOR_BATCH_MESSAGES: '20',
      TRACEHOUSE_COLLECTOR_INSERT_CONCURRENCY: '1',
      TRACEHOUSE_COLLECTOR_PREFETCH: String(PREFETCH),
      TRACEHOUSE_COLLECTOR_BATCH_AGE_MS: '200',
      TRACEHOUSE_COLLECTOR_RETRY_MAX_MS: '2000',
      TRACEHOUSE_CLICKHOUSE_TIMEOUT_MS: '3000',
    };
    collectors = await Promise.all([1, 2].map(() => CollectorProcess.spawn({ queue, database, clickhouseUrl: clickhouse.url, env })));
    await Promise.all(collectors.map((c) => c.waitReady()));
  });

  afterAll(async () => {
    await Promise.all(collectors.map((c) => c.stop()));
    await rabbit.deleteCollectorTopology(queue);
    await rabbit.close();
    await clickhouse.destroy();
  });

  it('keeps the collectors up with bounded memory, reports not-ready, and lands everything afterwards', async () => {
    const sent: Span[] = [];
    let publishing = true;
    // A steady stream: 50 messages of 100 spans per second.
    const publisher = (async () => {
      while (publishing) {
        const spans = makeSpans(5_000, { perTrace: 20 });
        sent.push(...spans);
        await rabbit.publishAll(queue, chunk(spans, 100).map((s) => encodeJsonV2(s)));
        await new Promise((resolve) => setTimeout(resolve, 1_000));
      }
    })();

    await waitFor(async () => (await sumMetric(collectors, METRIC.stored)) > 5_000, { timeoutMs: 30_000, what: 'spans flowing before the outage' });
    await clickhouse.stop();
    const outageStarted = Date.now();

    await waitFor(async () => (await Promise.all(collectors.map((c) => c.ready()))).every((r) => r?.status === 503), {
      timeoutMs: 15_000,
      what: 'collectors reporting not-ready',
    });
    const notReady = await collectors[0]!.ready();
    expect(notReady?.body).toMatchObject({ ready: false, clickhouse: false, rabbitmq: true });

    // Hold the outage for at least 10 s, watching memory and what the replicas hold.
    let peakInflight = 0;
    let peakRss = 0;
    while (Date.now() - outageStarted < 12_000) {
      for (const c of collectors) {
        expect(c.running).toBe(true);
        const m = await c.metrics();
        peakInflight = Math.max(peakInflight, m.value(METRIC.inflight));
        peakRss = Math.max(peakRss, m.value(METRIC.rss));
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    // Each replica holds at most its prefetch; the backlog waits in RabbitMQ.
    expect(peakInflight).toBeLessThanOrEqual(PREFETCH);
    expect(peakRss).toBeLessThan(300 * MiB);
    expect(await rabbit.messageCount(queue)).toBeGreaterThan(0);
    expect(await sumMetric(collectors, METRIC.retries)).toBeGreaterThan(0);

    await clickhouse.start();
    publishing = false;
    await publisher;

    await waitFor(async () => (await Promise.all(collectors.map((c) => c.ready()))).every((r) => r?.status === 200), {
      timeoutMs: 30_000,
      what: 'collectors ready again',
    });
    await waitFor(async () => (await rabbit.messageCount(queue)) === 0 && (await sumMetric(collectors, METRIC.inflight)) === 0, {
      timeoutMs: 60_000,
      what: 'backlog written',
      intervalMs: 250,
    });

    const store = await ClickHouseStore.open({ url: clickhouse.url, database });
    try {
      const check = await checkStored(store.reader, sent);
      expect(check).toEqual({ expected: sent.length, missing: 0, duplicates: 0, unexpected: 0 });
    } finally {
      await store.close();
    }
    for (const c of collectors) expect(c.running).toBe(true);
  });
  it('starts without ClickHouse, and a SIGTERM during an outage exits 0 in bounded time leaving its messages to others', async () => {
    const queue2 = uniqueName('th_outage2');
    const database2 = uniqueName('th_outage2');
    const env = { TRACEHOUSE_LOG_LEVEL: 'error', TRACEHOUSE_COLLECTOR_BATCH_AGE_MS: '200', TRACEHOUSE_COLLECTOR_SHUTDOWN_TIMEOUT_MS: '3000', TRACEHOUSE_CLICKHOUSE_TIMEOUT_MS: '2000' };
    const spawn = (): Promise<CollectorProcess> => CollectorProcess.spawn({ queue: queue2, database: database2, clickhouseUrl: clickhouse.url, env });
    try {
      await clickhouse.stop();
      const first = await spawn();
      collectors.push(first);
      await waitFor(async () => (await fetch(`${first.url}/health`).then((r) => r.status, () => 0)) === 200, { timeoutMs: 10_000, what: '/health' });
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(await first.ready()).toMatchObject({ status: 503, body: { ready: false, clickhouse: false } });
      expect(first.running).toBe(true);

      await clickhouse.start();
      await first.waitReady(30_000);
      const before = makeSpans(1_000, { perTrace: 10 });
      await rabbit.publishAll(queue2, chunk(before, 100).map((s) => encodeJsonV2(s)));
      await waitFor(async () => (await first.metrics()).value(METRIC.stored) >= before.length, { timeoutMs: 20_000, what: 'first spans stored' });

      // ClickHouse goes; the replica takes messages it cannot write, then is told to stop.
      await clickhouse.stop();
      const during = makeSpans(1_000, { perTrace: 10 });
      await rabbit.publishAll(queue2, chunk(during, 100).map((s) => encodeJsonV2(s)));
      await waitFor(async () => (await first.metrics()).value(METRIC.inflight) === 10, { timeoutMs: 10_000, what: 'messages held during the outage' });
      const stopping = Date.now();
      const code = await first.stop(15_000);
      expect(code).toBe(0);
      expect(Date.now() - stopping).toBeLessThan(8_000);
      // Nothing acked without being stored: all ten are back in the queue.
      expect(await rabbit.messageCount(queue2)).toBe(10);

      await clickhouse.start();
      const second = await spawn();
      collectors.push(second);
      await second.waitReady(30_000);
      await waitFor(async () => (await rabbit.messageCount(queue2)) === 0 && (await second.metrics()).value(METRIC.inflight) === 0, {
        timeoutMs: 30_000,
        what: 'the second replica writing what the first left',
      });
      const store = await ClickHouseStore.open({ url: clickhouse.url, database: database2 });
      try {
        expect(await checkStored(store.reader, [...before, ...during])).toEqual({ expected: 2_000, missing: 0, duplicates: 0, unexpected: 0 });
      } finally {
        await store.close();
      }
    } finally {
      await clickhouse.start();
      await rabbit.deleteCollectorTopology(queue2);
    }
  });
});
