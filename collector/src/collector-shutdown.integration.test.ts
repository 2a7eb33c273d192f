/**
 * Graceful stop against the real RabbitMQ, with a span store that refuses a
 * batch for good while the stop drains it: the refused message must be
 * dead-lettered and acked before the channels close, so that it is parked
 * exactly once and not also handed back to the queue (where the next replica
 * would dead-letter it a second time).
 */
import { randomBytes } from 'node:crypto';
import { connect, type ChannelModel } from 'amqplib';
import { decodeSpans, encodeJsonV2, type Span } from '@tracehouse/model';
import { StorageError } from '@tracehouse/storage';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Collector } from './collector.js';
import { queueOutcome } from './dead-letters.test.helpers.js';
import { parseConfig } from './config.js';

const RABBITMQ_URL = process.env.TRACEHOUSE_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

function span(): Span {
  return {
    traceId: randomBytes(8).toString('hex'),
    id: randomBytes(8).toString('hex'),
    name: 'refused',
    timestamp: Date.now() * 1000,
    duration: 10,
    localEndpoint: { serviceName: 'shutdown-test' },
  };
}

describe('Collector.stop with a batch the store refuses during the drain', () => {
  const queue = `th_stop_dl_${randomBytes(4).toString('hex')}`;
  let connection: ChannelModel;

  beforeAll(async () => {
    connection = await connect(RABBITMQ_URL);
    connection.on('error', () => undefined);
  });

  afterAll(async () => {
    const channel = await connection.createChannel();
    for (const q of [queue, `${queue}.dlq`]) await channel.deleteQueue(q).catch(() => undefined);
    await channel.deleteExchange(`${queue}.dlx`).catch(() => undefined);
    await connection.close();
  });

  it('parks the refused message once and leaves nothing in the queue', async () => {
    let writeStarted: () => void = () => undefined;
    const started = new Promise<void>((resolve) => (writeStarted = resolve));
    let refuse: () => void = () => undefined;
    const refused = new Promise<void>((resolve) => (refuse = resolve));
    const refusedSpan = span();
    const collector = new Collector({
      config: Object.freeze({
        ...parseConfig({ TRACEHOUSE_RABBITMQ_URL: RABBITMQ_URL, TRACEHOUSE_QUEUE: queue, TRACEHOUSE_COLLECTOR_BATCH_AGE_MS: '20' }),
        adminPort: 0,
        adminHost: '127.0.0.1',
      }),
      logger: pino({ level: 'silent' }),
      openStore: () =>
        Promise.resolve({
          writer: {
            // ClickHouse answers only once the stop has begun, and refuses the rows themselves.
            writeEncoded: async () => {
              writeStarted();
              await refused;
              throw new StorageError({ code: 'server', retryable: false, message: 'Code: 27. cannot parse the rows' });
            },
          },
          ping: () => Promise.resolve(true),
          close: () => Promise.resolve(),
        }),
    });
    await collector.start();
    try {
      for (let i = 0; i < 100 && !collector.readiness().ready; i++) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(collector.readiness().ready).toBe(true);
      const publisher = await connection.createConfirmChannel();
      publisher.sendToQueue(queue, encodeJsonV2([refusedSpan]));
      await publisher.waitForConfirms();
      await publisher.close();
      await started;
      const stopping = collector.stop();
      setTimeout(refuse, 20);
      await stopping;
    } finally {
      await collector.stop();
    }
    const { left, parked, letter } = await queueOutcome(connection, queue);
    expect({ left, parked }).toEqual({ left: 0, parked: 1 });
    // The dead letter carries the refused span itself, and why.
    expect(letter?.properties.headers?.['x-tracehouse-reason']).toBe('insert_rejected');
    expect(letter === undefined ? undefined : decodeSpans(letter.content)).toMatchObject({ ok: true, spans: [refusedSpan] });
  });
});
