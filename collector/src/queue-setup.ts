/**
 * Makes sure the span queue, the dead-letter exchange and the dead-letter
 * queue exist. Existing ones are used as they are, whatever arguments they
 * were declared with (a Zipkin installation's queue, a quorum queue set up by
 * an operator): each is checked passively first, and declared only when the
 * broker says it is missing. Passive checks that fail close their channel, so
 * every probe gets a throwaway channel.
 *
 * TRACEHOUSE_QUEUE_ARGUMENTS are for the span queue only: on the dead-letter
 * queue, a TTL, a max-length with drop-head or a dead-letter exchange would
 * silently lose the messages it exists to keep.
 */
import type { Channel, ChannelModel } from 'amqplib';
import type { Logger } from 'pino';
import type { QueueType } from './config.js';
import { withTimeout } from './with-timeout.js';

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

/**
 * How long closing a probe channel may take. amqplib never settles a
 * channel's close once its connection has closed (a broker restart mid-setup):
 * unbounded, that would hold up the connect attempt, and every reconnect, for good.
 */
const CHANNEL_CLOSE_TIMEOUT_MS = 5_000;

/** Runs `op` on a fresh channel and closes it, whatever happens. */
async function withChannel<R>(connection: ChannelModel, op: (channel: Channel) => Promise<R>): Promise<R> {
  const channel = await connection.createChannel();
  // A failed passive check closes the channel with an error event; the
  // rejected promise already carries it.
  channel.on('error', () => undefined);
  try {
    return await op(channel);
  } finally {
    await withTimeout(channel.close(), CHANNEL_CLOSE_TIMEOUT_MS).catch(() => undefined);
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

/**
 * The broker refuses to declare a queue with the arguments it was given (an unknown
 * x-queue-type, a value of the wrong type): retrying the same declaration never succeeds.
 */
export class QueueRefusedError extends Error {
  constructor(message: string, options?: { cause: unknown }) {
    super(message, options);
    this.name = 'QueueRefusedError';
  }
}

/**
 * Whether an existing queue is a stream, asked by declaring it as one on a throwaway channel: the
 * broker accepts that only for a stream (it refuses other types as not equivalent, 406), and the
 * queue was just found, so the declaration creates nothing. A stream only looks like a queue: a
 * consumer without an offset starts at its next message and acks remove nothing, so its backlog
 * would never be read and nothing it holds would ever leave it.
 */
async function isStream(connection: ChannelModel, queue: string): Promise<boolean> {
  try {
    await withChannel(connection, (channel) => channel.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'stream' } }));
    return true;
  } catch {
    // 406: another type (or not durable); 403: no configure permission, and then nothing tells.
    return false;
  }
}

function amqpMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Declares `queue` with `args` unless it exists; true when it was there already (or another replica declared it meanwhile with other arguments). */
async function ensureQueue(connection: ChannelModel, queue: string, args: Record<string, unknown>, logger: Logger): Promise<boolean> {
  const found = (): Promise<boolean> => exists(connection, (channel) => channel.checkQueue(queue));
  if (await found()) {
    logger.info({ queue }, 'using existing queue');
    return true;
  }
  try {
    await withChannel(connection, (channel) => channel.assertQueue(queue, { durable: true, arguments: args }));
    logger.info({ queue, arguments: args }, 'declared queue');
    return false;
  } catch (error) {
    if (amqpCode(error) !== 406) throw error;
    // Another replica may have declared it a moment ago with other arguments; else ours are refused.
    if (await found()) return true;
    throw new QueueRefusedError(
      `RabbitMQ refuses to declare queue "${queue}" with arguments ${JSON.stringify(args)} (${amqpMessage(error)}): ` +
        'check TRACEHOUSE_QUEUE_ARGUMENTS and TRACEHOUSE_QUEUE_TYPE',
      { cause: error },
    );
  }
}

/**
 * The dead-letter queue gets the queue type only. One that exists is used as
 * it is (collectors before this one gave it the span queue's arguments too);
 * a redeclare on a throwaway channel tells whether its arguments differ, and
 * only that is reported.
 */
async function ensureDeadLetterQueue(connection: ChannelModel, o: QueueSetupOptions): Promise<void> {
  const queue = o.deadLetterQueue;
  const args = { 'x-queue-type': o.queueType };
  if (!(await ensureQueue(connection, queue, args, o.logger))) return;
  try {
    await withChannel(connection, (channel) => channel.assertQueue(queue, { durable: true, arguments: args }));
  } catch (error) {
    if (amqpCode(error) === 406) {
      o.logger.warn(
        { queue, expected: args, broker: amqpMessage(error) },
        'the dead-letter queue exists with other arguments; using it as is. If it has a TTL, a max length with drop-head or a dead-letter exchange, dead letters can expire or be dropped: redeclare it without them',
      );
    } else {
      // No configure permission, say: the queue exists and is usable, which is all that matters.
      o.logger.debug({ queue, err: error }, 'could not compare the dead-letter queue\'s arguments');
    }
  }
}

/**
 * The span queue's arguments. A quorum queue redelivers a message only so
 * many times (RabbitMQ 4 sets a limit of 20 by default, and a collector
 * returns what it holds on every reconnect and shutdown during a ClickHouse
 * outage), then dead-letters it, or drops it when it has no dead-letter
 * exchange: so a quorum span queue dead-letters into ours, where the message
 * is kept (with the broker's `x-death` header saying why). Arguments given in
 * TRACEHOUSE_QUEUE_ARGUMENTS win.
 */
function spanQueueArguments(o: QueueSetupOptions): Record<string, unknown> {
  const deadLettering =
    o.queueType === 'quorum' ? { 'x-dead-letter-exchange': o.deadLetterExchange, 'x-dead-letter-routing-key': o.queue } : {};
  return { ...deadLettering, ...o.queueArguments, 'x-queue-type': o.queueType };
}

export async function setUpQueues(connection: ChannelModel, o: QueueSetupOptions): Promise<void> {
  if ((await ensureQueue(connection, o.queue, spanQueueArguments(o), o.logger)) && (await isStream(connection, o.queue))) {
    throw new QueueRefusedError(
      `queue "${o.queue}" is a stream: its backlog would never be read (a stream consumer starts at the next message) ` +
        'and acks would remove nothing; publish spans to a classic or quorum queue (TRACEHOUSE_QUEUE_TYPE)',
    );
  }
  await ensureDeadLetterQueue(connection, o);
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
