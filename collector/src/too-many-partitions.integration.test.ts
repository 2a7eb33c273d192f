/**
 * A batch whose spans cover more days than a modern ClickHouse accepts in one
 * INSERT (max_partitions_per_insert_block, 100 by default; tables are
 * partitioned by day). Retrying the batch can never help: the collector must
 * narrow it down, store every message that fits on its own and dead-letter
 * only the one that by itself spans too many days. Runs against the real
 * RabbitMQ and the embedded current engine (chdb): the 18.16 server has no
 * such limit.
 */
import { randomBytes } from 'node:crypto';
import { connect, type ChannelModel } from 'amqplib';
import { decodeSpans, encodeJsonV2, type Span } from '@tracehouse/model';
import { ClickHouseStore } from '@tracehouse/storage';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Collector } from './collector.js';
import { deleteQueueSet, queueOutcome, waitFor } from './dead-letters.test.helpers.js';
import { parseConfig } from './config.js';

const RABBITMQ_URL = process.env.TRACEHOUSE_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const DAY_MICROS = 86_400_000_000;

/** One trace with a span on each of `days` consecutive days, ending `firstDay` days ago. */
function trace(firstDay: number, days: number): { traceId: string; spans: Span[] } {
  const traceId = randomBytes(8).toString('hex');
  const now = Date.now() * 1000;
  const spans = Array.from({ length: days }, (_, i) => ({
    traceId,
    id: randomBytes(8).toString('hex'),
    name: `day-${firstDay + i}`,
    timestamp: now - (firstDay + i) * DAY_MICROS,
    duration: 10,
    localEndpoint: { serviceName: 'partitions-test' },
  }));
  return { traceId, spans };
}

describe('a batch spanning more days than ClickHouse takes in one INSERT', () => {
  const queue = `th_parts_${randomBytes(4).toString('hex')}`;
  const database = `th_parts_${randomBytes(4).toString('hex')}`;
  let connection: ChannelModel;
  let store: ClickHouseStore;
  let collector: Collector;

  beforeAll(async () => {
    connection = await connect(RABBITMQ_URL);
    connection.on('error', () => undefined);
    store = await ClickHouseStore.open({ url: 'chdb:', database, retentionDays: 1_000 });
    collector = new Collector({
      config: Object.freeze({
        ...parseConfig({
          TRACEHOUSE_RABBITMQ_URL: RABBITMQ_URL,
          TRACEHOUSE_QUEUE: queue,
          // Long enough for every message below to land in one batch.
          TRACEHOUSE_COLLECTOR_BATCH_AGE_MS: '500',
          TRACEHOUSE_COLLECTOR_RETRY_INITIAL_MS: '50',
          TRACEHOUSE_COLLECTOR_RETRY_MAX_MS: '200',
        }),
        adminPort: 0,
        adminHost: '127.0.0.1',
      }),
      logger: pino({ level: 'silent' }),
      openStore: () => ClickHouseStore.open({ url: 'chdb:', database, retentionDays: 1_000 }),
    });
    await collector.start();
    await waitFor(() => Promise.resolve(collector.readiness().ready), () => 'the collector to be ready', 30_000);
  });

  afterAll(async () => {
    await collector?.stop();
    await store?.dropDatabase().catch(() => undefined);
    await store?.close();
    await deleteQueueSet(connection, queue);
    await connection.close();
  });

  it('stores the messages that fit and dead-letters the one spanning over 100 days', async () => {
    // 60 + 60 + 1 days fit one by one but not together; the poison one never fits.
    const first = trace(0, 60);
    const second = trace(60, 60);
    const today = trace(0, 1);
    const poison = trace(0, 150);
    const publisher = await connection.createConfirmChannel();
    for (const message of [first, poison, second, today]) publisher.sendToQueue(queue, encodeJsonV2(message.spans));
    await publisher.waitForConfirms();
    await publisher.close();

    const acked = async (): Promise<number> => (await collector.metrics.messagesAcked.get()).values.reduce((sum, v) => sum + v.value, 0);
    await waitFor(async () => (await acked()) === 4, () => 'every message acked (stored or dead-lettered)', 30_000);

    for (const stored of [first, second, today]) {
      expect((await store.reader.getTrace(stored.traceId)).length, stored.spans[0]!.name).toBe(stored.spans.length);
    }
    expect(await store.reader.getTrace(poison.traceId)).toEqual([]);
    // All four went in as one batch, refused for good (not retried as an overloaded server would be), then narrowed down.
    const batches = (await collector.metrics.batchMessages.get()).values;
    expect(batches.find((v) => v.metricName?.endsWith('_count'))?.value).toBe(1);
    expect(batches.find((v) => v.metricName?.endsWith('_sum'))?.value).toBe(4);
    expect((await collector.metrics.insertRetries.get()).values.reduce((sum, v) => sum + v.value, 0)).toBe(0);

    const { left, parked, letter } = await queueOutcome(connection, queue);
    expect({ left, parked }).toEqual({ left: 0, parked: 1 });
    if (letter === undefined) throw new Error('no dead letter');
    const headers = letter.properties.headers ?? {};
    expect(headers['x-tracehouse-reason']).toBe('insert_rejected');
    expect(String(headers['x-tracehouse-error'])).toMatch(/^StorageError \(too_many_partitions\): .*max_partitions_per_insert_block/);
    const decoded = decodeSpans(letter.content);
    expect(decoded.ok && decoded.spans.map((s) => s.id).sort()).toEqual(poison.spans.map((s) => s.id).sort());
  });
});
