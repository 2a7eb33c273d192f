/**
 * The dead-letter queue refuses a poison message for a while (an operator's
 * max-length with reject-publish, and the queue is full): the broker nacks
 * the dead-letter publish. The collector must not leave the poison message
 * unacked for good - that holds a prefetch slot until the next reconnect, and
 * enough of them stop consumption altogether. Once the dead-letter queue has
 * room again, every poison message is parked, every good one stored.
 */
import { ClickHouseStore } from '@tracehouse/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLICKHOUSE_URL, CollectorProcess, METRIC, Rabbit, checkStored, makeSpans, uniqueName, waitFor } from './harness.js';

describe('dead-letter queue refusing publishes', () => {
  const queue = uniqueName('th_dlq_full');
  const database = uniqueName('th_dlq_full');
  const dlq = `${queue}.dlq`;
  let rabbit: Rabbit;
  let store: ClickHouseStore;
  let collector: CollectorProcess;

  beforeAll(async () => {
    rabbit = await Rabbit.open();
    store = await ClickHouseStore.open({ url: CLICKHOUSE_URL, database });
    // The operator's dead-letter queue holds one message and refuses more.
    const channel = await rabbit.connection.createChannel();
    await channel.assertQueue(dlq, { durable: true, arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish' } });
    await channel.close();
    collector = await CollectorProcess.spawn({
      queue,
      database,
      env: {
        TRACEHOUSE_LOG_LEVEL: 'warn',
        TRACEHOUSE_COLLECTOR_BATCH_AGE_MS: '100',
        TRACEHOUSE_COLLECTOR_PREFETCH: '2',
        TRACEHOUSE_COLLECTOR_RETRY_INITIAL_MS: '100',
        TRACEHOUSE_COLLECTOR_RETRY_MAX_MS: '500',
      },
    });
    await collector.waitReady();
  });

  afterAll(async () => {
    await collector.stop();
    await store.dropDatabase().catch(() => undefined);
    await store.close();
    await rabbit.deleteCollectorTopology(queue);
    await rabbit.close();
  });

  it('retries the refused dead letter and keeps consuming once the queue has room', async () => {
    const poison = [1, 2, 3].map((i) => Buffer.from(`not json ${i} {`));
    for (const body of poison) await rabbit.publish(queue, body);
    const good = makeSpans(30, { perTrace: 10, service: 'after-poison' });
    await rabbit.publish(queue, Buffer.from(JSON.stringify(good)));

    // The first poison message fills the dead-letter queue; the next ones are nacked.
    await waitFor(async () => (await rabbit.messageCount(dlq)) === 1, { timeoutMs: 20_000, what: 'the first dead letter' });
    await waitFor(() => collector.logs.some((line) => line.includes('not confirmed')), {
      timeoutMs: 20_000,
      what: `a refused dead letter; logs:\n${collector.logs.slice(-10).join('\n')}`,
    });

    // The operator empties the dead-letter queue, one message at a time, as it fills.
    const parked: Buffer[] = [];
    await waitFor(
      async () => {
        parked.push(...(await rabbit.getAll(dlq)).map((m) => m.content));
        return parked.length >= poison.length;
      },
      { timeoutMs: 30_000, what: 'every poison message parked', intervalMs: 200 },
    );
    expect(parked.map((b) => b.toString()).sort()).toEqual(poison.map((b) => b.toString()).sort());

    await waitFor(async () => (await collector.metrics()).value(METRIC.acked) >= poison.length + 1, {
      timeoutMs: 30_000,
      what: `all messages acked; logs:\n${collector.logs.slice(-10).join('\n')}`,
      intervalMs: 200,
    });
    expect(await checkStored(store.reader, good)).toEqual({ expected: good.length, missing: 0, duplicates: 0, unexpected: 0 });
    expect(await rabbit.messageCount(queue)).toBe(0);
    expect(collector.running).toBe(true);
  });
});
