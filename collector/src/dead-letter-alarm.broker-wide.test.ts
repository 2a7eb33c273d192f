/**
 * A dead letter published during a RabbitMQ resource alarm must not stall
 * consumption. During an alarm the broker stops reading every connection that
 * publishes (consume-only connections are left alone): a dead letter published
 * on the connection that consumes would leave the replica's acks unread, its
 * prefetch window shut, and the replica idle for as long as the alarm lasts.
 * Here a poison message comes first, then good ones, and the disk alarm is on:
 * every good message must be stored and acked meanwhile, the poison message
 * must stay unacked, and it is parked once the alarm ends. Real RabbitMQ and
 * ClickHouse.
 *
 * BROKER-WIDE: the disk alarm blocks every publisher on the broker, so this
 * file runs in its own vitest project (`broker-wide`), alone, after the others.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { promisify } from 'node:util';
import { connect, type ChannelModel } from 'amqplib';
import { encodeJsonV2, type Span } from '@tracehouse/model';
import { ClickHouseStore } from '@tracehouse/storage';
import { dropDatabase } from '@tracehouse/storage/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Collector } from './collector.js';
import { collectorFromEnv, counterTotal, deleteQueueSet, queueOutcome, waitFor } from './dead-letters.test.helpers.js';

const RABBITMQ_URL = process.env.TRACEHOUSE_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const CLICKHOUSE_URL = process.env.TRACEHOUSE_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123';
const RABBITMQCTL = process.env.TRACEHOUSE_RABBITMQCTL ?? (existsSync('/usr/sbin/rabbitmqctl') ? '/usr/sbin/rabbitmqctl' : 'rabbitmqctl');

const GOOD_MESSAGES = 300;
const SPANS_PER_MESSAGE = 2;
const PREFETCH = 20;

async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(RABBITMQCTL, args, { timeout: 60_000 });
  return stdout;
}

/** The limit the disk monitor enforces now, in bytes (`environment` shows the configured one, not a runtime change), and the alarms. */
async function diskStatus(): Promise<{ limit: number; alarms: Array<{ resource?: string }> }> {
  const status = JSON.parse(await rabbitmqctl('status', '--formatter', 'json')) as { disk_free_limit?: unknown; alarms?: Array<{ resource?: string }> };
  if (typeof status.disk_free_limit !== 'number' || !Number.isSafeInteger(status.disk_free_limit)) {
    throw new Error(`rabbitmqctl status: no integer disk_free_limit: ${JSON.stringify(status.disk_free_limit)}`);
  }
  return { limit: status.disk_free_limit, alarms: status.alarms ?? [] };
}

async function diskAlarmOn(): Promise<boolean> {
  return (await diskStatus()).alarms.some((alarm) => alarm.resource === 'disk');
}

/** Unacked messages of `queue`: amqplib's checkQueue counts ready messages only. */
async function unackedOf(queue: string): Promise<number> {
  const out = await rabbitmqctl('list_queues', '--quiet', '--no-table-headers', 'name', 'messages_unacknowledged');
  for (const line of out.split('\n')) {
    const [name, count] = line.trim().split(/\s+/);
    if (name === queue) return Number(count);
  }
  throw new Error(`queue ${queue} not listed by rabbitmqctl: ${out}`);
}

/** State (`running`, `blocking`, `blocked`, …) of this process's collector connections, by connection name. */
async function collectorConnections(): Promise<Map<string, string>> {
  const prefix = `tracehouse-collector ${hostname()}:${process.pid}`;
  const rows = JSON.parse(await rabbitmqctl('list_connections', '--formatter', 'json', 'client_properties', 'state')) as Array<{
    client_properties: Array<[string, string, unknown]>;
    state: string;
  }>;
  const states = new Map<string, string>();
  for (const row of rows) {
    const name = row.client_properties.find(([key]) => key === 'connection_name')?.[2];
    if (typeof name === 'string' && name.startsWith(prefix)) states.set(name.slice(prefix.length), row.state);
  }
  return states;
}

function spans(count: number): Span[] {
  const traceId = randomBytes(16).toString('hex');
  return Array.from({ length: count }, () => ({
    traceId,
    id: randomBytes(8).toString('hex'),
    name: 'during-alarm',
    timestamp: Date.now() * 1000,
    duration: 10,
    localEndpoint: { serviceName: 'alarm-test' },
  }));
}

describe('a dead letter published during a disk alarm', () => {
  const lines: Array<{ level: number; msg: string }> = [];
  const recent = (): string => JSON.stringify(lines.filter((line) => line.level >= 40).slice(-5));
  let limitBefore: number | undefined;
  let connection: ChannelModel;
  /** Undone in afterAll, whatever failed: a collector, a database, queues. */
  const cleanups: Array<() => Promise<unknown>> = [];
  /** Set once afterAll begins: a test body vitest timed out keeps running, and must not raise the alarm again. */
  let over = false;
  let raising: Promise<unknown> = Promise.resolve();

  async function raiseAlarm(): Promise<void> {
    if (over) throw new Error('the suite is over: no more alarms');
    raising = rabbitmqctl('set_disk_free_limit', '10000GB');
    await raising;
    await waitFor(() => diskAlarmOn(), () => 'the disk alarm', 30_000);
  }

  /** Puts the broker's limit back exactly as it was; idempotent. */
  async function endAlarm(): Promise<void> {
    if (limitBefore === undefined) return;
    await raising.catch(() => undefined);
    await rabbitmqctl('set_disk_free_limit', String(limitBefore));
    await waitFor(async () => !(await diskAlarmOn()), () => 'the disk alarm to clear', 30_000);
  }

  beforeAll(async () => {
    const before = await diskStatus();
    // Another alarm would make the outcome meaningless.
    expect(before.alarms, 'alarms before the test').toEqual([]);
    limitBefore = before.limit;
    connection = await connect(RABBITMQ_URL);
    connection.on('error', () => undefined);
  });

  afterAll(async () => {
    // First: whatever failed, the broker must not stay in alarm.
    over = true;
    try {
      await endAlarm();
    } finally {
      for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
      await connection?.close();
    }
  });

  /**
   * A span queue holding a poison message followed by `goodMessages` good
   * ones, published before the alarm (which would block this publisher too),
   * then the alarm, then a collector on the queue.
   */
  async function alarmBed(goodMessages: number, shutdownTimeoutMs: number): Promise<{ queue: string; store: ClickHouseStore; collector: Collector }> {
    const suffix = randomBytes(4).toString('hex');
    const queue = `th_dl_alarm_${suffix}`;
    const database = `th_dl_alarm_${suffix}`;
    cleanups.push(() => deleteQueueSet(connection, queue));
    cleanups.push(() => dropDatabase({ url: CLICKHOUSE_URL, database }));
    const store = await ClickHouseStore.open({ url: CLICKHOUSE_URL, database, logger: pino({ level: 'silent' }) });
    cleanups.push(() => store.close());

    // An alarm left on would block this publisher for good.
    expect(await diskAlarmOn(), 'an alarm already on').toBe(false);
    const publisher = await connection.createConfirmChannel();
    await publisher.assertQueue(queue, { durable: true });
    publisher.sendToQueue(queue, Buffer.from('{oops'), { persistent: true });
    for (let i = 0; i < goodMessages; i++) publisher.sendToQueue(queue, encodeJsonV2(spans(SPANS_PER_MESSAGE)), { persistent: true });
    await publisher.waitForConfirms();
    await publisher.close();

    await raiseAlarm();
    let collector: Collector | undefined;
    try {
      lines.length = 0;
      const c = collectorFromEnv({
        env: {
          TRACEHOUSE_RABBITMQ_URL: RABBITMQ_URL,
          TRACEHOUSE_CLICKHOUSE_URL: CLICKHOUSE_URL,
          TRACEHOUSE_CLICKHOUSE_DATABASE: database,
          TRACEHOUSE_QUEUE: queue,
          TRACEHOUSE_COLLECTOR_PREFETCH: String(PREFETCH),
          TRACEHOUSE_COLLECTOR_BATCH_AGE_MS: '20',
          TRACEHOUSE_COLLECTOR_RECONNECT_INITIAL_MS: '50',
          TRACEHOUSE_COLLECTOR_RECONNECT_MAX_MS: '500',
          TRACEHOUSE_COLLECTOR_SHUTDOWN_TIMEOUT_MS: String(shutdownTimeoutMs),
        },
        level: 'info',
        lines,
      });
      collector = c;
      cleanups.push(() => c.stop());
      await c.start();

      // Far more messages than the prefetch window: they only all arrive if acks keep being read.
      await waitFor(
        async () => (await counterTotal(c.metrics.messagesAcked)) >= goodMessages,
        async () =>
          `${goodMessages} good messages acked during the alarm; acked ${await counterTotal(c.metrics.messagesAcked)}, ` +
          `consumed ${await counterTotal(c.metrics.messagesConsumed)}: ${recent()}`,
        30_000,
      );
      expect(await diskAlarmOn(), 'the alarm lasted the whole phase').toBe(true);
      expect(await store.countSpans()).toEqual({ rows: goodMessages * SPANS_PER_MESSAGE, distinct: goodMessages * SPANS_PER_MESSAGE });
      expect(await counterTotal(c.metrics.messagesAcked)).toBe(goodMessages);
      expect(await counterTotal(c.metrics.messagesDeadLettered)).toBe(0);
      // The dead letter waits on its own connection, which the broker blocked; the consuming one is not.
      expect(lines.some((line) => line.level === 40 && /blocked the dead-letter connection/.test(line.msg)), recent()).toBe(true);
      const states = await collectorConnections();
      expect(states.get('-dead-letters'), JSON.stringify([...states])).toBe('blocked');
      expect(states.size, JSON.stringify([...states])).toBe(2);
      expect(states.get(''), JSON.stringify([...states])).not.toBe('blocked');
      // The poison message is held, unacked: neither lost nor parked yet.
      const during = await queueOutcome(connection, queue);
      expect({ left: during.left, parked: during.parked }).toEqual({ left: 0, parked: 0 });
      expect(await unackedOf(queue)).toBe(1);
      expect(c.readiness().ready).toBe(true);
      return { queue, store, collector: c };
    } catch (error) {
      // Not left for afterAll: the next test publishes, which an alarm would block.
      await endAlarm();
      await collector?.stop();
      throw error;
    }
  }

  it('stores and acks every good message while the alarm lasts, and parks the poison message after it', async () => {
    let bed: Awaited<ReturnType<typeof alarmBed>>;
    try {
      bed = await alarmBed(GOOD_MESSAGES, 5_000);
    } finally {
      // Each test ends its own alarm: the next one publishes before raising it.
      await endAlarm();
    }
    const { queue, store, collector } = bed;
    await waitFor(
      async () => (await counterTotal(collector.metrics.messagesAcked)) >= GOOD_MESSAGES + 1,
      () => `the poison message acked after the alarm: ${recent()}`,
      30_000,
    );
    const after = await queueOutcome(connection, queue);
    expect({ left: after.left, parked: after.parked }).toEqual({ left: 0, parked: 1 });
    expect(after.letter?.content.toString()).toBe('{oops');
    expect(after.letter?.properties.headers?.['x-tracehouse-reason']).toBe('malformed_json');
    expect(await unackedOf(queue)).toBe(0);
    expect((await collector.metrics.messagesDeadLettered.get()).values).toMatchObject([{ labels: { reason: 'malformed_json' }, value: 1 }]);
    expect(await counterTotal(collector.metrics.reconnects)).toBe(0);
    expect(await store.countSpans()).toEqual({ rows: GOOD_MESSAGES * SPANS_PER_MESSAGE, distinct: GOOD_MESSAGES * SPANS_PER_MESSAGE });
    await collector.stop();
    await waitFor(async () => (await collectorConnections()).size === 0, async () => `no connections left: ${JSON.stringify([...(await collectorConnections())])}`, 10_000);
  });

  it('stops within its shutdown timeout while the dead-letter connection is blocked, leaving the poison message to the broker', async () => {
    const shutdownTimeoutMs = 2_000;
    try {
      const { queue, collector } = await alarmBed(50, shutdownTimeoutMs);
      const started = Date.now();
      await collector.stop();
      // Within its bound, closing the blocked connection included (the bin's backstop would exit
      // shutdownTimeoutMs + 5 s after the signal); a little over it for the store's and admin server's close.
      expect(Date.now() - started).toBeLessThan(shutdownTimeoutMs + 700);
      expect(await counterTotal(collector.metrics.messagesAcked)).toBe(50);
      // Its dead letter never confirmed, the poison message went back to the queue.
      await waitFor(async () => (await queueOutcome(connection, queue)).left === 1, () => 'the poison message back in the queue', 10_000);
      expect(await unackedOf(queue)).toBe(0);
      // The consuming connection is gone; the client gave up on the blocked one.
      expect([...(await collectorConnections()).keys()].filter((name) => name === '')).toEqual([]);
    } finally {
      await endAlarm();
    }
    // Once it reads again, the broker sees that one closed too.
    await waitFor(async () => (await collectorConnections()).size === 0, async () => `no connections left: ${JSON.stringify([...(await collectorConnections())])}`, 10_000);
  });
});
