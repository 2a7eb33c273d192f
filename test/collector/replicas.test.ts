/**
 * Competing consumers: three collector processes on one queue share the
 * load, every span lands exactly once as the reader sees it, and a replica
 * killed with SIGKILL mid-stream loses nothing and leaves no visible duplicate.
 */
import { encodeJsonV2, encodeProto3, type Span } from '@tracehouse/model';
import { ClickHouseStore } from '@tracehouse/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLICKHOUSE_URL, CollectorProcess, METRIC, Rabbit, checkStored, chunk, makeSpans, sumMetric, uniqueName, waitFor } from './harness.js';

const COLLECTOR_ENV = { TRACEHOUSE_LOG_LEVEL: 'warn', TRACEHOUSE_COLLECTOR_BATCH_AGE_MS: '300' };

function encode(batch: readonly Span[], i: number): Buffer {
  // Both encodings Zipkin senders use travel on the same queue.
  return i % 2 === 0 ? encodeJsonV2(batch) : encodeProto3(batch);
}

describe('collector replicas', () => {
  let rabbit: Rabbit;
  const queues: string[] = [];
  const stores: ClickHouseStore[] = [];
  const collectors: CollectorProcess[] = [];

  async function setup(name: string, replicas: number): Promise<{ queue: string; store: ClickHouseStore; replicas: CollectorProcess[] }> {
    const queue = uniqueName(`th_${name}`);
    const database = uniqueName(`th_${name}`);
    queues.push(queue);
    const store = await ClickHouseStore.open({ url: CLICKHOUSE_URL, database });
    stores.push(store);
    const started = await Promise.all(
      Array.from({ length: replicas }, () => CollectorProcess.spawn({ queue, database, env: COLLECTOR_ENV })),
    );
    collectors.push(...started);
    await Promise.all(started.map((c) => c.waitReady()));
    return { queue, store, replicas: started };
  }

  beforeAll(async () => {
    rabbit = await Rabbit.open();
  });

  afterAll(async () => {
    await Promise.all(collectors.map((c) => c.stop()));
    for (const store of stores) {
      await store.dropDatabase().catch(() => undefined);
      await store.close();
    }
    await rabbit.deleteCollectorTopology(...queues);
    await rabbit.close();
  });

  it('three replicas store 100,000 spans from 500 messages exactly once and share the work', async () => {
    const { queue, store, replicas } = await setup('replicas', 3);
    const spans = makeSpans(100_000, { perTrace: 50 });
    const bodies = chunk(spans, 200).map(encode);
    expect(bodies.length).toBeGreaterThanOrEqual(500);
    await rabbit.publishAll(queue, bodies);

    await waitFor(async () => (await sumMetric(replicas, METRIC.stored)) >= spans.length && (await rabbit.messageCount(queue)) === 0, {
      timeoutMs: 90_000,
      what: 'all spans stored',
      intervalMs: 250,
    });
    await waitFor(async () => (await sumMetric(replicas, METRIC.inflight)) === 0, { timeoutMs: 10_000, what: 'all messages acked' });

    const check = await checkStored(store.reader, spans);
    expect(check).toEqual({ expected: 100_000, missing: 0, duplicates: 0, unexpected: 0 });

    const consumed = await Promise.all(replicas.map(async (c) => (await c.metrics()).value(METRIC.consumed)));
    expect(consumed.reduce((a, b) => a + b, 0)).toBe(bodies.length);
    for (const n of consumed) expect(n).toBeGreaterThan(bodies.length * 0.1);
    for (const c of replicas) expect(c.running).toBe(true);
  });

  it('a replica killed with SIGKILL mid-stream loses nothing and shows no duplicate', async () => {
    const { queue, store, replicas } = await setup('sigkill', 3);
    const victim = replicas[0]!;
    const spans = makeSpans(60_000, { perTrace: 20 });
    const bodies = chunk(spans, 100).map(encode);

    // Publish in waves so the kill lands while messages are flowing.
    const waves = chunk(bodies, 50);
    let killedWithUnacked = -1;
    for (let i = 0; i < waves.length; i++) {
      await rabbit.publishAll(queue, waves[i]!);
      if (i === Math.floor(waves.length / 3)) {
        // Kill while the victim holds unacked messages (received, not yet committed or acked).
        await waitFor(async () => (await victim.metrics()).value(METRIC.inflight) > 0, { timeoutMs: 10_000, what: 'victim holding messages', intervalMs: 20 });
        killedWithUnacked = (await victim.metrics()).value(METRIC.inflight);
        victim.kill('SIGKILL');
        expect((await victim.exited).signal).toBe('SIGKILL');
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(killedWithUnacked).toBeGreaterThan(0);

    const survivors = replicas.slice(1);
    await waitFor(async () => (await rabbit.messageCount(queue)) === 0 && (await sumMetric(survivors, METRIC.inflight)) === 0, {
      timeoutMs: 90_000,
      what: 'queue drained by the survivors',
      intervalMs: 250,
    });
    const check = await checkStored(store.reader, spans);
    expect(check).toEqual({ expected: spans.length, missing: 0, duplicates: 0, unexpected: 0 });
    for (const c of survivors) expect(c.running).toBe(true);
  });
});
