/**
 * Makes sure the span queue, the dead-letter exchange and the dead-letter
 * queue exist. Existing ones are used as they are, whatever arguments they
 * were declared with (a Zipkin installation's queue, a quorum queue set up by
 * an operator): each is checked passively first, and declared only when the
 * broker says it is missing. Passive checks that fail close their channel, so
 * every probe gets a throwaway channel.
 */
import type { Channel, ChannelModel } from 'amqplib';
import type { Logger } from 'pino';
import type { QueueType } from './config.js';

export interface QueueSetupOptions {
  queue: string;
  queueType: QueueType;
  queueArguments: Readonly<Record<string, unknown>>;
  deadLetterExchange: string;
  deadLetterQueue: string;
  logger: Logger;
}

function amqpCode(error: unknown): unknown {
  return error !== null && typeof error === 'object' && 'code' in error ? (error).code : undefined;
}

/** Runs `op` on a fresh channel and closes it, whatever happens. */
async function withChannel<R>(connection: ChannelModel, op: (channel: Channel) => Promise<R>): Promise<R> {
  const channel = await connection.createChannel();
  // A failed passive check closes the channel with an error event; the
  // rejected promise already carries it.
  channel.on('error', () => undefined);
  try {
    return await op(channel);
  } finally {
    await channel.close().catch(() => undefined);
  }
}

/** Whether a passive check (checkQueue, checkExchange) finds what it looks for; the broker answers 404 when not. */
async function exists(connection: ChannelModel, check: (channel: Channel) => Promise<unknown>): Promise<boolean> {
  try {
    await withChannel(connection, check);
    return true;
  } catch (error) {
    if (amqpCode(error) === 404) return false;
    throw error;
  }
}

async function ensureQueue(connection: ChannelModel, queue: string, o: QueueSetupOptions): Promise<void> {
  const found = (): Promise<boolean> => exists(connection, (channel) => channel.checkQueue(queue));
  if (await found()) {
    o.logger.info({ queue }, 'using existing queue');
    return;
  }
  const args = { ...o.queueArguments, 'x-queue-type': o.queueType };
  try {
    await withChannel(connection, (channel) => channel.assertQueue(queue, { durable: true, arguments: args }));
    o.logger.info({ queue, arguments: args }, 'declared queue');
  } catch (error) {
    // Another replica may have declared it a moment ago with other arguments.
    if (amqpCode(error) === 406 && (await found())) return;
    throw error;
  }
}

export async function setUpQueues(connection: ChannelModel, o: QueueSetupOptions): Promise<void> {
  await ensureQueue(connection, o.queue, o);
  await ensureQueue(connection, o.deadLetterQueue, o);
  const exchangeFound = (): Promise<boolean> => exists(connection, (channel) => channel.checkExchange(o.deadLetterExchange));
  if (!(await exchangeFound())) {
    try {
      await withChannel(connection, (channel) => channel.assertExchange(o.deadLetterExchange, 'direct', { durable: true }));
      o.logger.info({ exchange: o.deadLetterExchange }, 'declared dead-letter exchange');
    } catch (error) {
      if (!(amqpCode(error) === 406 && (await exchangeFound()))) throw error;
    }
  }
  // Binding is idempotent. Poison messages are published with the span
  // queue's name as routing key; a fanout exchange ignores it.
  await withChannel(connection, (channel) => channel.bindQueue(o.deadLetterQueue, o.deadLetterExchange, o.queue));
}
