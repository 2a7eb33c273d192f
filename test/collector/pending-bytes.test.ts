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
import { CLICKHOUSE_URL, CollectorProcess, METRIC, Rabbit, TcpProxy, checkStored, chunk, makeSpans, uniqueName, waitFor } from './harness.js';

const MiB = 1024 * 1024;
const PREFETCH = 300;
const MAX_PENDING_BYTES = 2 * MiB;
const PENDING_BYTES = 'tracehouse_collector_pending_bytes';
const PAUSES = 'tracehouse_collector_consumer_pauses_total';

describe('a byte bound on unacked messages', () => {
  const queue = uniqueName('th_pending');
  const database = uniqueName('th_pending');
  let rabbit: Rabbit;
  let proxy: TcpProxy;
  let store: ClickHouseStore;
  let collector: CollectorProcess | undefined;

  beforeAll(async () => {
    rabbit = await Rabbit.open();
    store = await ClickHouseStore.open({ url: CLICKHOUSE_URL, database });
    proxy = await TcpProxy.start(CLICKHOUSE_URL);
  });

  afterAll(async () => {
    await collector?.stop();
    await rabbit.deleteCollectorTopology(queue);
    await rabbit.close();
    await proxy.close();
    await store.dropDatabase();
    await store.close();
  });

  it('pauses consumption while the rows of unacked messages reach it, and loses nothing', async () => {
    collector = await CollectorProcess.spawn({
      queue,
      database,
      clickhouseUrl: proxy.url,
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
        TRACEHOUSE_CLICKHOUSE_TIMEOUT_MS: '2000',
        TRACEHOUSE_CLICKHOUSE_INSERT_TIMEOUT_MS: '2000',
      },
    });
    await collector.waitReady();
    proxy.cut();

    // 300 messages of about 120 KB (rows of about 200 KB), 30 times the bound and within the
    // prefetch, arriving as a busy service sends them: 60 a second.
    const sent: Span[] = makeSpans(300 * 400, { perTrace: 25 });
    const bodies = chunk(sent, 400).map((spans) => encodeJsonV2(spans));
    expect(bodies[0]!.length).toBeGreaterThan(100_000);
    let peakInflight = 0;
    let peakPendingBytes = 0;
    const watch = async (): Promise<void> => {
      const m = await collector!.metrics();
      peakInflight = Math.max(peakInflight, m.value(METRIC.inflight));
      peakPendingBytes = Math.max(peakPendingBytes, m.value(PENDING_BYTES));
    };
    for (const tenth of chunk(bodies, 6)) {
      await rabbit.publishAll(queue, tenth);
      await watch();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await watch();
    expect((await collector.metrics()).value(PAUSES)).toBeGreaterThanOrEqual(1);
    // What the broker sent before it saw the pause comes on top of the bound: a few messages.
    expect(peakPendingBytes).toBeGreaterThanOrEqual(MAX_PENDING_BYTES);
    expect(peakPendingBytes).toBeLessThan(2 * MAX_PENDING_BYTES);
    expect(peakInflight).toBeLessThan(PREFETCH / 10);
    // The backlog waits in RabbitMQ.
    expect(await rabbit.messageCount(queue)).toBeGreaterThan(PREFETCH / 2);
    expect(collector.running).toBe(true);

    // Resumed, the replica takes from the backlog only what fits in the bound, not a whole prefetch.
    proxy.restore();
    peakPendingBytes = 0;
    await waitFor(
      async () => {
        await watch();
        return (await rabbit.messageCount(queue)) === 0 && (await collector!.metrics()).value(METRIC.inflight) === 0;
      },
      { timeoutMs: 60_000, what: 'the backlog written once ClickHouse is back', intervalMs: 100 },
    );
    expect(peakPendingBytes).toBeLessThan(2 * MAX_PENDING_BYTES);
    const after = await collector.metrics();
    expect(after.value(PENDING_BYTES)).toBe(0);
    expect(after.value(METRIC.stored)).toBe(sent.length);
    expect(await checkStored(store.reader, sent)).toEqual({ expected: sent.length, missing: 0, duplicates: 0, unexpected: 0 });
  });
});
