import { StorageError } from '@tracehouse/storage';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { Batch } from './batcher.js';
import { InsertPipeline, isRetryable, type SpanSink } from './insert-pipeline.js';
import { createMetrics } from './metrics.js';

interface Tok {
  id: number;
  spanCount: number;
}

/** A message's part: the ids of its spans. */
type Part = number[];

function batch(ids: number[], perMessage = 2): Batch<Tok, Part> {
  return {
    tokens: ids.map((id) => ({ id, spanCount: perMessage })),
    parts: ids.map((id) => Array.from({ length: perMessage }, (_, j) => id * 100 + j)),
    spanCount: ids.length * perMessage,
    reason: 'forced',
  };
}

function setup(sink: SpanSink<Part>, concurrency = 2, maxSpansPerInsert = 1_000, isStale?: (tokens: readonly Tok[]) => boolean) {
  const committed: number[][] = [];
  const rejected: number[] = [];
  const health: boolean[] = [];
  const metrics = createMetrics({ defaultMetrics: false });
  const pipeline = new InsertPipeline<Tok, Part>({
    sink,
    concurrency,
    maxSpansPerInsert,
    retry: { initialMs: 5, maxMs: 20 },
    logger: pino({ level: 'silent' }),
    metrics,
    onCommitted: (tokens) => committed.push(tokens.map((t) => t.id)),
    onRejected: (token) => rejected.push(token.id),
    onHealth: (ok) => health.push(ok),
    ...(isStale === undefined ? {} : { isStale }),
  });
  return { pipeline, committed, rejected, health, metrics };
}

describe('InsertPipeline', () => {
  it('reports a batch committed only after the writer resolved', async () => {
    let release!: () => void;
    const { pipeline, committed } = setup({ write: () => new Promise<void>((r) => (release = r)) });
    pipeline.submit(batch([1, 2]));
    await new Promise((r) => setTimeout(r, 10));
    expect(committed).toEqual([]);
    release();
    await pipeline.drain();
    expect(committed).toEqual([[1, 2]]);
  });

  it('stops retrying a batch whose messages will come again, and lets it go without a verdict', async () => {
    let calls = 0;
    const lost = new Set<number>();
    const { pipeline, committed, rejected } = setup(
      {
        write: () => {
          calls++;
          return Promise.reject(new StorageError({ code: 'connection', message: 'down' }));
        },
      },
      2,
      1_000,
      (tokens) => tokens.every((token) => lost.has(token.id)),
    );
    pipeline.submit(batch([1, 2]));
    await new Promise((r) => setTimeout(r, 30));
    expect(calls).toBeGreaterThan(1);
    // The connection of messages 1 and 2 is lost: the broker redelivers them.
    lost.add(1).add(2);
    await pipeline.drain();
    const callsThen = calls;
    await new Promise((r) => setTimeout(r, 50));
    expect(calls).toBe(callsThen);
    expect(committed).toEqual([]);
    expect(rejected).toEqual([]);
    expect(pipeline.pending).toBe(0);
  });

  it('retries a retryable failure with backoff and never reports it committed early', async () => {
    let calls = 0;
    const { pipeline, committed, health, metrics } = setup({
      write: () => {
        calls++;
        return calls <= 3 ? Promise.reject(new StorageError({ code: 'connection', message: 'down' })) : Promise.resolve();
      },
    });
    pipeline.submit(batch([1]));
    await pipeline.drain();
    expect(calls).toBe(4);
    expect(committed).toEqual([[1]]);
    expect(health).toEqual([false, false, false, true]);
    expect((await metrics.insertRetries.get()).values[0]!.value).toBe(3);
    expect((await metrics.spansStored.get()).values[0]!.value).toBe(2);
  });

  it('keeps at most `concurrency` inserts running and queues the rest', async () => {
    let running = 0;
    let peak = 0;
    const { pipeline, committed } = setup(
      {
        write: async () => {
          running++;
          peak = Math.max(peak, running);
          await new Promise((r) => setTimeout(r, 5));
          running--;
        },
      },
      2,
    );
    for (let i = 0; i < 6; i++) pipeline.submit(batch([i]));
    expect(pipeline.pending).toBe(6);
    await pipeline.drain();
    expect(peak).toBe(2);
    expect(committed.flat().sort()).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('writes batches that queued behind a running insert as one insert, up to maxSpansPerInsert spans', async () => {
    const writes: number[][] = [];
    const releases: Array<() => void> = [];
    const { pipeline, committed, metrics } = setup(
      {
        write: (parts) => {
          writes.push(parts.flat());
          return new Promise<void>((r) => releases.push(r));
        },
      },
      1,
      6,
    );
    for (let i = 0; i < 5; i++) pipeline.submit(batch([i]));
    expect(writes).toEqual([[0, 1]]);
    const gauge = async (): Promise<number | undefined> => (await metrics.pendingBatches.get()).values[0]?.value;
    expect(await gauge()).toBe(5);
    releases.shift()!();
    await new Promise((r) => setTimeout(r, 0));
    // Batches 1, 2 and 3 (6 spans) go together; batch 4 would exceed 6 spans.
    expect(writes[1]).toEqual([100, 101, 200, 201, 300, 301]);
    // The gauge counts inserts to come: the merged one running, and batch 4.
    expect({ pending: pipeline.pending, gauge: await gauge() }).toEqual({ pending: 2, gauge: 2 });
    releases.shift()!();
    await new Promise((r) => setTimeout(r, 0));
    expect(writes[2]).toEqual([400, 401]);
    releases.shift()!();
    await pipeline.drain();
    expect(committed).toEqual([[0], [1, 2, 3], [4]]);
    const sizes = (await metrics.batchSpans.get()).values.find((v) => v.metricName?.endsWith('_sum'));
    expect(sizes?.value).toBe(10);
  });

  it('narrows a refused merged insert down to the message ClickHouse refuses', async () => {
    const writes: number[][] = [];
    let release!: () => void;
    const { pipeline, committed, rejected } = setup(
      {
        write: (parts) => {
          writes.push(parts.flat());
          if (writes.length === 1) return new Promise<void>((r) => (release = r));
          return parts.some((part) => part.includes(201))
            ? Promise.reject(new StorageError({ code: 'bad_input', message: 'cannot bind' }))
            : Promise.resolve();
        },
      },
      1,
    );
    for (let i = 0; i < 4; i++) pipeline.submit(batch([i]));
    release();
    await pipeline.drain();
    expect(writes[1]).toEqual([100, 101, 200, 201, 300, 301]);
    expect(rejected).toEqual([2]);
    expect(committed).toEqual([[0], [1], [3]]);
  });

  it('narrows a refused batch down to the message ClickHouse refuses', async () => {
    const poisoned = 300;
    const { pipeline, committed, rejected } = setup({
      write: (parts) =>
        parts.some((part) => part.includes(poisoned))
          ? Promise.reject(new StorageError({ code: 'bad_input', message: 'cannot bind' }))
          : Promise.resolve(),
    });
    pipeline.submit(batch([1, 2, 3, 4]));
    await pipeline.drain();
    expect(rejected).toEqual([3]);
    expect(committed).toEqual([[1], [2], [4]]);
  });

  it('abort stops retrying and leaves the batch uncommitted', async () => {
    const { pipeline, committed } = setup({ write: () => Promise.reject(new StorageError({ code: 'timeout', message: 'slow' })) });
    pipeline.submit(batch([1]));
    pipeline.submit(batch([2]));
    pipeline.submit(batch([3]));
    await new Promise((r) => setTimeout(r, 30));
    const drained = pipeline.drain();
    pipeline.abort();
    await drained;
    expect(committed).toEqual([]);
  });
});

describe('InsertPipeline with callbacks that throw', () => {
  it('logs the error, keeps handling the batch and its accounting, and leaves no unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const logged: Array<{ callback?: string; msg?: string }> = [];
      const committed: number[] = [];
      const rejected: number[] = [];
      let writes = 0;
      const pipeline = new InsertPipeline<Tok, Part>({
        // Message 2 is refused, so the batch is narrowed down message by message.
        sink: {
          write: (parts) => {
            writes++;
            return parts.some((part) => part.includes(200)) ? Promise.reject(new StorageError({ code: 'bad_input', message: 'no' })) : Promise.resolve();
          },
        },
        concurrency: 1,
        maxSpansPerInsert: 1_000,
        retry: { initialMs: 5, maxMs: 20 },
        logger: pino({ level: 'error' }, { write: (line: string) => void logged.push(JSON.parse(line) as { callback?: string; msg?: string }) }),
        metrics: createMetrics({ defaultMetrics: false }),
        onCommitted: (tokens) => {
          committed.push(...tokens.map((t) => t.id));
          if (tokens.some((t) => t.id === 1)) throw new Error('ack failed');
        },
        onRejected: (token) => {
          rejected.push(token.id);
          throw new Error('dead-letter failed');
        },
        onHealth: () => {
          throw new Error('health failed');
        },
      });
      pipeline.submit(batch([1, 2, 3]));
      pipeline.submit(batch([4]));
      await pipeline.drain();
      await new Promise((r) => setTimeout(r, 10));
      // Message 3 is still written and reported after both throws, each insert exactly once.
      expect({ committed, rejected, writes }).toEqual({ committed: [1, 3, 4], rejected: [2], writes: 5 });
      expect(pipeline.pending).toBe(0);
      expect(logged.map((l) => l.callback).filter((c) => c !== undefined && c !== 'onHealth')).toEqual(['onCommitted', 'onRejected']);
      expect(logged.every((l) => l.msg !== undefined)).toBe(true);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('reports anything else that fails while handling a batch, and keeps going', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const logged: Array<{ msg?: string; err?: { message?: string } }> = [];
      const committed: number[] = [];
      const metrics = createMetrics({ defaultMetrics: false });
      let broken = true;
      metrics.spansStored.inc = () => {
        if (!broken) return;
        broken = false;
        throw new Error('metrics broke');
      };
      const pipeline = new InsertPipeline<Tok, Part>({
        sink: { write: () => Promise.resolve() },
        concurrency: 1,
        maxSpansPerInsert: 2,
        retry: { initialMs: 5, maxMs: 20 },
        logger: pino({ level: 'error' }, { write: (line: string) => void logged.push(JSON.parse(line) as (typeof logged)[number]) }),
        metrics,
        onCommitted: (tokens) => void committed.push(...tokens.map((t) => t.id)),
        onRejected: () => undefined,
        onHealth: () => undefined,
      });
      pipeline.submit(batch([1]));
      pipeline.submit(batch([2]));
      await pipeline.drain();
      await new Promise((r) => setTimeout(r, 10));
      // The stored message is still acked: the failure came after.
      expect(committed).toEqual([1, 2]);
      expect(pipeline.pending).toBe(0);
      expect(logged).toMatchObject([{ msg: 'insert pipeline failed handling a batch', err: { message: 'metrics broke' } }]);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

describe('InsertPipeline.discardQueued', () => {
  it('drops waiting batches of a lost channel but lets running ones finish', async () => {
    const releases: Array<() => void> = [];
    const { pipeline, committed } = setup({ write: () => new Promise<void>((r) => releases.push(r)) }, 1);
    pipeline.submit(batch([1]));
    pipeline.submit(batch([2]));
    pipeline.submit(batch([3]));
    expect(pipeline.discardQueued()).toBe(2);
    expect(pipeline.pending).toBe(1);
    releases[0]!();
    await pipeline.drain();
    expect(committed).toEqual([[1]]);
  });
});

describe('isRetryable', () => {
  it('retries what storage marks retryable, schema trouble, and anything unknown; not refused rows', () => {
    expect(isRetryable(new StorageError({ code: 'connection', message: 'x' }))).toBe(true);
    expect(isRetryable(new StorageError({ code: 'overloaded', message: 'x' }))).toBe(true);
    expect(isRetryable(new StorageError({ code: 'schema', message: 'x' }))).toBe(true);
    expect(isRetryable(new Error('socket hang up'))).toBe(true);
    expect(isRetryable(new StorageError({ code: 'bad_input', message: 'x' }))).toBe(false);
    expect(isRetryable(new StorageError({ code: 'server', message: 'Cannot parse input' }))).toBe(false);
  });
});
