// For collector tests that run a collector in process: one made from
// environment variables, and what they check after a run (how many messages
// are left on the span queue and parked on its dead-letter queue, and the
// first dead letter).
import type { ChannelModel, GetMessage } from 'amqplib';
import { pino, type Level } from 'pino';
import { Collector } from './collector.js';
import { parseConfig } from './config.js';

/** A collector configured by `env` (admin server on an ephemeral local port), logging at `level` into `lines`. */
export function collectorFromEnv(options: {
  env: Record<string, string>;
  level: Level;
  lines: Array<{ level: number; msg: string }>;
}): Collector {
  return new Collector({
    config: Object.freeze({ ...parseConfig(options.env), adminPort: 0, adminHost: '127.0.0.1' }),
    logger: pino({ level: options.level }, { write: (line: string) => options.lines.push(JSON.parse(line) as { level: number; msg: string }) }),
  });
}

export async function queueOutcome(
  connection: ChannelModel,
  queue: string,
): Promise<{ left: number; parked: number; letter: GetMessage | undefined }> {
  const channel = await connection.createChannel();
  try {
    const left = await channel.checkQueue(queue);
    const parked = await channel.checkQueue(`${queue}.dlq`);
    const letter = await channel.get(`${queue}.dlq`, { noAck: true });
    return { left: left.messageCount, parked: parked.messageCount, letter: letter === false ? undefined : letter };
  } finally {
    await channel.close();
  }
}

/** Polls `check` until it holds; past `timeoutMs`, fails saying what it waited for. */
export async function waitFor(check: () => Promise<boolean>, what: () => string | Promise<string>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${await what()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A prom-client counter's value summed over its labels. */
export async function counterTotal(counter: { get(): Promise<{ values: Array<{ value: number }> }> }): Promise<number> {
  return (await counter.get()).values.reduce((sum, v) => sum + v.value, 0);
}

/** Deletes a span queue with its dead-letter queue and exchange, whichever exist. */
export async function deleteQueueSet(connection: ChannelModel, queue: string): Promise<void> {
  const channel = await connection.createChannel();
  for (const q of [queue, `${queue}.dlq`]) await channel.deleteQueue(q).catch(() => undefined);
  await channel.deleteExchange(`${queue}.dlx`).catch(() => undefined);
  await channel.close();
}
