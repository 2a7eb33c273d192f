/**
 * A RabbitMQ address that accepts the TCP connection and then says nothing
 * (a load balancer with no healthy node behind it, a wedged broker): the
 * AMQP handshake never completes. The collector must give that attempt up
 * after its connect timeout and try again, instead of waiting on it forever;
 * once the broker answers, spans flow.
 */
import { connect as dial, createServer, type Server, type Socket } from 'node:net';
import { encodeJsonV2 } from '@tracehouse/model';
import { ClickHouseStore } from '@tracehouse/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLICKHOUSE_URL, CollectorProcess, RABBITMQ_URL, Rabbit, checkStored, makeSpans, uniqueName } from './harness.js';

/** Holds the first `silent` connections open without a byte; forwards the later ones to the broker. */
async function silentThenForward(silent: number): Promise<{ port: number; accepted: () => number; close: () => Promise<void> }> {
  const target = new URL(RABBITMQ_URL);
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server: Server = createServer((client) => {
    accepted++;
    sockets.add(client);
    client.on('error', () => undefined);
    client.on('close', () => sockets.delete(client));
    if (accepted <= silent) return;
    const upstream = dial(Number(target.port || 5672), target.hostname);
    sockets.add(upstream);
    upstream.on('error', () => undefined);
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
    client.on('close', () => upstream.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  const port = await new Promise<number>((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : 0);
    }),
  );
  return {
    port,
    accepted: () => accepted,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('RabbitMQ that accepts connections but never answers', () => {
  const queue = uniqueName('th_silent');
  const database = uniqueName('th_silent');
  let rabbit: Rabbit;
  let store: ClickHouseStore;
  let broker: Awaited<ReturnType<typeof silentThenForward>>;
  let collector: CollectorProcess;

  beforeAll(async () => {
    rabbit = await Rabbit.open();
    store = await ClickHouseStore.open({ url: CLICKHOUSE_URL, database });
    broker = await silentThenForward(1);
    const url = new URL(RABBITMQ_URL);
    url.hostname = '127.0.0.1';
    url.port = String(broker.port);
    collector = await CollectorProcess.spawn({
      queue,
      database,
      rabbitmqUrl: url.toString(),
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
    for (let i = 0; i < 100; i++) {
      if ((await checkStored(store.reader, spans)).missing === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(await checkStored(store.reader, spans)).toEqual({ expected: spans.length, missing: 0, duplicates: 0, unexpected: 0 });
  });
});
