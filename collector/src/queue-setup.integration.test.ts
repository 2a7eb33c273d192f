/**
 * setUpQueues against the real RabbitMQ. Arguments are read back without the
 * management plugin: a redeclare succeeds only with the arguments the queue
 * has (the broker answers 406 when one differs or is missing).
 */
import { randomBytes } from 'node:crypto';
import { connect, type ChannelModel } from 'amqplib';
import { pino, type Logger } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QueueRefusedError, setUpQueues, type QueueSetupOptions } from './queue-setup.js';

const RABBITMQ_URL = process.env.TRACEHOUSE_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const SPAN_QUEUE_ARGUMENTS = { 'x-message-ttl': 60_000, 'x-max-length': 10, 'x-overflow': 'drop-head' };

function capture(): { logger: Logger; lines: Array<{ level: number; msg: string; broker?: string }> } {
  const lines: Array<{ level: number; msg: string; broker?: string }> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as { level: number; msg: string }) });
  return { logger, lines };
}

describe('setUpQueues', () => {
  let connection: ChannelModel;
  const created: string[] = [];
  const exchanges: string[] = [];

  function names(): { queue: string; deadLetterQueue: string; deadLetterExchange: string } {
    const queue = `th_qsetup_${randomBytes(4).toString('hex')}`;
    created.push(queue, `${queue}.dlq`);
    exchanges.push(`${queue}.dlx`);
    return { queue, deadLetterQueue: `${queue}.dlq`, deadLetterExchange: `${queue}.dlx` };
  }

  function options(n: ReturnType<typeof names>, logger: Logger): QueueSetupOptions {
    return { ...n, queueType: 'classic', queueArguments: SPAN_QUEUE_ARGUMENTS, logger };
  }

  /** Whether the queue's arguments are exactly `args` (for the arguments the broker compares). */
  async function hasArguments(queue: string, args: Record<string, unknown>): Promise<boolean> {
    const channel = await connection.createChannel();
    channel.on('error', () => undefined);
    try {
      await channel.assertQueue(queue, { durable: true, arguments: args });
      return true;
    } catch (error) {
      if ((error as { code?: unknown }).code === 406) return false;
      throw error;
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  beforeAll(async () => {
    connection = await connect(RABBITMQ_URL);
    connection.on('error', () => undefined);
  });

  afterAll(async () => {
    const channel = await connection.createChannel();
    for (const q of created) await channel.deleteQueue(q).catch(() => undefined);
    for (const x of exchanges) await channel.deleteExchange(x).catch(() => undefined);
    await connection.close();
  });

  it('says which settings to check when the broker refuses the span queue arguments, rather than failing as a lost connection', async () => {
    const n = names();
    const refused: unknown = await setUpQueues(connection, { ...options(n, pino({ level: 'silent' })), queueArguments: { 'x-max-length': 'ten' } }).catch(
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(QueueRefusedError);
    expect((refused as Error).message).toMatch(/refuses to declare queue "th_qsetup_\w+" .*x-max-length.*: check TRACEHOUSE_QUEUE_ARGUMENTS/);
    // The connection is still usable: only a channel was closed by the refusal.
    expect(await hasArguments(n.queue, {})).toBe(true);
  });

  it('refuses a span queue that exists as a stream, whose backlog a consumer would never read, and accepts classic and quorum ones', async () => {
    const stream = names();
    const channel = await connection.createChannel();
    await channel.assertQueue(stream.queue, { durable: true, arguments: { 'x-queue-type': 'stream' } });
    const refused: unknown = await setUpQueues(connection, options(stream, pino({ level: 'silent' }))).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(QueueRefusedError);
    expect((refused as Error).message).toMatch(/queue "th_qsetup_\w+" is a stream: .*classic or quorum/);

    const quorum = names();
    await channel.assertQueue(quorum.queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await channel.close();
    await setUpQueues(connection, options(quorum, pino({ level: 'silent' })));
    // Still a quorum queue: asking did not change it.
    expect(await hasArguments(quorum.queue, { 'x-queue-type': 'quorum' })).toBe(true);
  });

  it('gives TRACEHOUSE_QUEUE_ARGUMENTS to the span queue only, never to the dead-letter queue', async () => {
    const n = names();
    await setUpQueues(connection, options(n, pino({ level: 'silent' })));
    expect(await hasArguments(n.queue, { ...SPAN_QUEUE_ARGUMENTS, 'x-queue-type': 'classic' })).toBe(true);
    expect(await hasArguments(n.deadLetterQueue, { 'x-queue-type': 'classic' })).toBe(true);
    expect(await hasArguments(n.deadLetterQueue, { ...SPAN_QUEUE_ARGUMENTS, 'x-queue-type': 'classic' })).toBe(false);
    // The dead-letter exchange routes to it (routing key = the span queue).
    const channel = await connection.createConfirmChannel();
    channel.publish(n.deadLetterExchange, n.queue, Buffer.from('[]'));
    await channel.waitForConfirms();
    expect((await channel.checkQueue(n.deadLetterQueue)).messageCount).toBe(1);
    await channel.close();
  });

  it('a quorum span queue dead-letters a message over its delivery limit into the dead-letter queue, not into nothing', async () => {
    const n = names();
    await setUpQueues(connection, { ...n, queueType: 'quorum', queueArguments: { 'x-delivery-limit': 2 }, logger: pino({ level: 'silent' }) });
    const channel = await connection.createConfirmChannel();
    channel.sendToQueue(n.queue, Buffer.from('[]'), { persistent: true });
    await channel.waitForConfirms();
    // Returned to the queue, as a collector's reconnects return what it holds, until the limit.
    for (let attempt = 0; attempt < 10; attempt++) {
      const message = await channel.get(n.queue, { noAck: false });
      if (message === false) break;
      channel.nack(message, false, true);
    }
    let parked = 0;
    for (let wait = 0; wait < 50 && parked === 0; wait++) {
      parked = (await channel.checkQueue(n.deadLetterQueue)).messageCount;
      if (parked === 0) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(parked).toBe(1);
    expect((await channel.checkQueue(n.queue)).messageCount).toBe(0);
    const dead = await channel.get(n.deadLetterQueue, { noAck: true });
    expect(dead !== false && JSON.stringify(dead.properties.headers?.['x-death'])).toContain('delivery_limit');
    await channel.close();
  });

  it('uses a dead-letter queue declared with the span queue arguments as it is, with a warning', async () => {
    const n = names();
    // What collectors before this fix declared.
    const inherited = { ...SPAN_QUEUE_ARGUMENTS, 'x-queue-type': 'classic' };
    const setup = await connection.createChannel();
    await setup.assertQueue(n.deadLetterQueue, { durable: true, arguments: inherited });
    await setup.close();
    const { logger, lines } = capture();
    // Twice: the second run finds the span queue too, as a restarted replica does.
    await setUpQueues(connection, options(n, logger));
    await setUpQueues(connection, options(n, logger));
    expect(await hasArguments(n.deadLetterQueue, inherited)).toBe(true);
    const warnings = lines.filter((line) => line.level === 40);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]!.msg).toMatch(/dead-letter queue exists with other arguments; using it as is/);
    expect(warnings[0]!.broker).toMatch(/PRECONDITION_FAILED - inequivalent arg 'x-(message-ttl|max-length|overflow)'/);
    // The connection survived the refused redeclare, and the queue is bound.
    const channel = await connection.createConfirmChannel();
    channel.publish(n.deadLetterExchange, n.queue, Buffer.from('[]'));
    await channel.waitForConfirms();
    expect((await channel.checkQueue(n.deadLetterQueue)).messageCount).toBe(1);
    await channel.close();
  });

  it('says nothing about a dead-letter queue that already has the expected arguments', async () => {
    const n = names();
    await setUpQueues(connection, options(n, pino({ level: 'silent' })));
    const { logger, lines } = capture();
    await setUpQueues(connection, options(n, logger));
    expect(lines.filter((line) => line.level >= 40)).toEqual([]);
  });
});
