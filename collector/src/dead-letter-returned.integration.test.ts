/**
 * The dead-letter queue is deleted while a replica is connected (what the
 * README tells an operator to do with one declared with the wrong
 * arguments): the broker confirms a dead letter that routes nowhere. The
 * collector must not ack the poison message then: it is returned, so the
 * replica reconnects (which declares the queue again) and parks the
 * redelivered message for real. Real RabbitMQ and ClickHouse.
 */
import { randomBytes } from 'node:crypto';
import { connect, type ChannelModel } from 'amqplib';
import { dropDatabase } from '@tracehouse/storage/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Collector } from './collector.js';
import { collectorFromEnv, counterTotal, deleteQueueSet, queueOutcome, waitFor } from './dead-letters.test.helpers.js';

const RABBITMQ_URL = process.env.TRACEHOUSE_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const CLICKHOUSE_URL = process.env.TRACEHOUSE_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123';

/** Messages on `queue`, or 'missing' when the broker has no such queue. */
async function messageCount(connection: ChannelModel, queue: string): Promise<number | 'missing'> {
  const channel = await connection.createChannel();
  // A passive check of a missing queue closes the channel; the rejection says so.
  channel.on('error', () => undefined);
  try {
    return (await channel.checkQueue(queue)).messageCount;
  } catch (error) {
    if ((error as { code?: unknown }).code === 404) return 'missing';
    throw error;
  } finally {
    await channel.close().catch(() => undefined);
  }
}

describe('a dead-letter queue deleted under a connected collector', () => {
  const queue = `th_dl_return_${randomBytes(4).toString('hex')}`;
  const database = `th_dl_return_${randomBytes(4).toString('hex')}`;
  const lines: Array<{ level: number; msg: string }> = [];
  let connection: ChannelModel;
  let collector: Collector;

  beforeAll(async () => {
    connection = await connect(RABBITMQ_URL);
    connection.on('error', () => undefined);
    collector = collectorFromEnv({
      env: {
        TRACEHOUSE_RABBITMQ_URL: RABBITMQ_URL,
        TRACEHOUSE_CLICKHOUSE_URL: CLICKHOUSE_URL,
        TRACEHOUSE_CLICKHOUSE_DATABASE: database,
        TRACEHOUSE_QUEUE: queue,
        TRACEHOUSE_COLLECTOR_RECONNECT_INITIAL_MS: '50',
        TRACEHOUSE_COLLECTOR_RECONNECT_MAX_MS: '500',
      },
      level: 'warn',
      lines,
    });
    await collector.start();
    await waitFor(() => Promise.resolve(collector.readiness().ready), () => `the collector to be ready: ${JSON.stringify(lines.slice(-5))}`, 60_000);
  });

  afterAll(async () => {
    await collector?.stop();
    await dropDatabase({ url: CLICKHOUSE_URL, database }).catch(() => undefined);
    await deleteQueueSet(connection, queue);
    await connection.close();
  });

  it('does not ack the returned poison message, reconnects and parks it in the declared-again queue', async () => {
    const admin = await connection.createChannel();
    await admin.deleteQueue(`${queue}.dlq`);
    await admin.close();

    const publisher = await connection.createConfirmChannel();
    publisher.sendToQueue(queue, Buffer.from('{oops'));
    await publisher.waitForConfirms();
    await publisher.close();

    // Acked once the dead letter is really parked; before that the message must stay unacked.
    await waitFor(
      async () => (await counterTotal(collector.metrics.messagesAcked)) >= 1,
      () => `the poison message acked: ${JSON.stringify(lines.slice(-5))}`,
    );
    expect(await messageCount(connection, `${queue}.dlq`), 'the dead-letter queue').toBe(1);
    const { left, parked, letter } = await queueOutcome(connection, queue);
    expect({ left, parked }).toEqual({ left: 0, parked: 1 });
    expect(letter?.content.toString()).toBe('{oops');
    expect(letter?.properties.headers?.['x-tracehouse-reason']).toBe('malformed_json');

    // Counted once, after the reconnect, not for the copy that went nowhere.
    expect(await counterTotal(collector.metrics.messagesDeadLettered)).toBe(1);
    expect((await collector.metrics.messagesDeadLettered.get()).values).toMatchObject([{ labels: { reason: 'malformed_json' }, value: 1 }]);
    expect(await counterTotal(collector.metrics.messagesAcked)).toBe(1);
    expect(await counterTotal(collector.metrics.messagesConsumed)).toBe(2);
    expect(await counterTotal(collector.metrics.reconnects)).toBeGreaterThanOrEqual(1);
    expect(lines.some((line) => line.level === 50 && /returned/.test(line.msg))).toBe(true);
    expect(collector.readiness().ready).toBe(true);
  });
});
