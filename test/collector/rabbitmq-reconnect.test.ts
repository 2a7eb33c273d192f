/**
 * The RabbitMQ connection drops mid-stream (a TCP proxy in front of the
 * broker cuts it and refuses new connections for a while): the collector
 * reports not-ready, reconnects with backoff by itself, and every span is
 * stored exactly once (messages unacked at the cut are redelivered).
 */
import { encodeJsonV2, type Span } from '@tracehouse/model';
import { ClickHouseStore } from '@tracehouse/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLICKHOUSE_URL, CollectorProcess, METRIC, RABBITMQ_URL, Rabbit, TcpProxy, checkStored, chunk, makeSpans, uniqueName, waitFor } from './harness.js';

describe('RabbitMQ connection loss', () => {
  const queue = uniqueName('th_reconnect');
  const database = uniqueName('th_reconnect');
  let rabbit: Rabbit;
  let store: ClickHouseStore;
  let proxy: TcpProxy;
  let collector: CollectorProcess;

  beforeAll(async () => {
    rabbit = await Rabbit.open();
    store = await ClickHouseStore.open({ url: CLICKHOUSE_URL, database });
    proxy = await TcpProxy.start(RABBITMQ_URL);
    collector = await CollectorProcess.spawn({
      queue,
      database,
      rabbitmqUrl: proxy.url,
      env: { TRACEHOUSE_LOG_LEVEL: 'warn', TRACEHOUSE_COLLECTOR_BATCH_AGE_MS: '500', TRACEHOUSE_COLLECTOR_RECONNECT_MAX_MS: '1000' },
    });
    await collector.waitReady();
  });

  afterAll(async () => {
    await collector.stop();
    await proxy.close();
    await store.dropDatabase().catch(() => undefined);
    await store.close();
    await rabbit.deleteCollectorTopology(queue);
    await rabbit.close();
  });

  it('reports not-ready while cut off, reconnects by itself and stores everything once', async () => {
    const sent: Span[] = [];
    const publish = async (n: number): Promise<void> => {
      const spans = makeSpans(n, { perTrace: 10 });
      sent.push(...spans);
      await rabbit.publishAll(queue, chunk(spans, 50).map((s) => encodeJsonV2(s)));
    };
    await publish(5_000);
    // Cut while the collector holds messages it has not acked yet.
    await waitFor(async () => (await collector.metrics()).value(METRIC.inflight) > 0, { timeoutMs: 10_000, what: 'messages in flight', intervalMs: 10 });
    proxy.cut();
    await publish(5_000);
    await waitFor(async () => (await collector.ready())?.status === 503, { timeoutMs: 10_000, what: 'not-ready after the cut' });
    expect((await collector.ready())?.body).toMatchObject({ ready: false, rabbitmq: false });
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect(collector.running).toBe(true);
    expect(await rabbit.messageCount(queue)).toBeGreaterThan(0);

    proxy.restore();
    await waitFor(async () => (await collector.ready())?.status === 200, { timeoutMs: 20_000, what: 'ready after the connection is back' });
    await publish(5_000);
    await waitFor(async () => (await rabbit.messageCount(queue)) === 0 && (await collector.metrics()).value(METRIC.inflight) === 0, {
      timeoutMs: 60_000,
      what: 'queue drained after reconnecting',
      intervalMs: 250,
    });
    const check = await checkStored(store.reader, sent);
    expect(check).toEqual({ expected: sent.length, missing: 0, duplicates: 0, unexpected: 0 });
    expect((await collector.metrics()).value('tracehouse_collector_rabbitmq_reconnects_total')).toBeGreaterThanOrEqual(1);
  });
});
