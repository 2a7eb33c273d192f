/**
 * A RabbitMQ address that accepts the TCP connection and then says nothing
 * (a load balancer with no healthy node behind it, a wedged broker): the
 * AMQP handshake never completes. The collector must give that attempt up
 * after its connect timeout and try again, instead of waiting on it forever;
 * once the broker answers, spans flow.
 */
import { encodeJsonV2 } from '@tracehouse/model';
import { ClickHouseStore } from '@tracehouse/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLICKHOUSE_URL, CollectorProcess, RABBITMQ_URL, Rabbit, TcpProxy, checkStored, makeSpans, uniqueName, waitFor } from './harness.js';

describe('RabbitMQ that accepts connections but never answers', () => {
  const queue = uniqueName('th_silent');
  const database = uniqueName('th_silent');
  let rabbit: Rabbit;
  let store: ClickHouseStore;
  let broker: TcpProxy;
  let collector: CollectorProcess;

  beforeAll(async () => {
    rabbit = await Rabbit.open();
    store = await ClickHouseStore.open({ url: CLICKHOUSE_URL, database });
    broker = await TcpProxy.start(RABBITMQ_URL, { silent: 1 });
    collector = await CollectorProcess.spawn({
      queue,
      database,
      rabbitmqUrl: broker.url,
      env: {
        TRACEHOUSE_LOG_LEVEL: 'warn',
        TRACEHOUSE_COLLECTOR_BATCH_AGE_MS: '100',
        TRACEHOUSE_RABBITMQ_CONNECT_TIMEOUT_MS: '1000',
        TRACEHOUSE_COLLECTOR_RECONNECT_MAX_MS: '500',
      },
    });
  });

  afterAll(async () => {
    await collector.stop();
    await broker.close();
    await store.dropDatabase().catch(() => undefined);
    await store.close();
    await rabbit.deleteCollectorTopology(queue);
    await rabbit.close();
  });

  it('gives up the silent attempt, reconnects and stores spans', async () => {
    await collector.waitReady(15_000);
    expect(broker.accepted()).toBeGreaterThanOrEqual(2);
    const spans = makeSpans(20, { perTrace: 5, service: 'after-silence' });
    await rabbit.publish(queue, encodeJsonV2(spans));
    await waitFor(async () => (await checkStored(store.reader, spans)).missing === 0, { timeoutMs: 10_000, what: 'the spans stored' });
    expect(await checkStored(store.reader, spans)).toEqual({ expected: spans.length, missing: 0, duplicates: 0, unexpected: 0 });
  });
});
