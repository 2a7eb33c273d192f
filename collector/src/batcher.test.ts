import type { Span } from '@tracehouse/model';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Batcher, type Batch } from './batcher.js';

function spans(n: number, prefix = 'a'): Span[] {
  return Array.from({ length: n }, (_, i) => ({ traceId: `${prefix}`.padEnd(16, '0'), id: i.toString(16).padStart(16, '0') }));
}

describe('Batcher', () => {
  let batches: Batch<number>[];
  let batcher: Batcher<number>;
  beforeEach(() => {
    vi.useFakeTimers();
    batches = [];
    batcher = new Batcher<number>({ maxSpans: 100, maxMessages: 5, maxAgeMs: 1_000, onBatch: (b) => batches.push(b) });
  });
  afterEach(() => vi.useRealTimers());

  it('closes a batch when it reaches the span count', () => {
    batcher.add(1, spans(60));
    expect(batches).toHaveLength(0);
    batcher.add(2, spans(50));
    expect(batches).toHaveLength(1);
    expect(batches[0]!.tokens).toEqual([1, 2]);
    expect(batches[0]!.spans).toHaveLength(110);
    expect(batches[0]!.reason).toBe('spans');
    expect(batcher.pendingMessages).toBe(0);
  });

  it('closes a batch when it reaches the message count', () => {
    for (let i = 1; i <= 5; i++) batcher.add(i, spans(1));
    expect(batches).toHaveLength(1);
    expect(batches[0]!.reason).toBe('messages');
    expect(batches[0]!.tokens).toEqual([1, 2, 3, 4, 5]);
  });

  it('closes a batch when its first message is maxAgeMs old, not later messages', () => {
    batcher.add(1, spans(1));
    vi.advanceTimersByTime(600);
    batcher.add(2, spans(1));
    vi.advanceTimersByTime(399);
    expect(batches).toHaveLength(0);
    vi.advanceTimersByTime(1);
    expect(batches).toHaveLength(1);
    expect(batches[0]!.reason).toBe('age');
    expect(batches[0]!.tokens).toEqual([1, 2]);
    // The next message opens a fresh batch with its own clock.
    batcher.add(3, spans(1));
    vi.advanceTimersByTime(999);
    expect(batches).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(batches[1]!.tokens).toEqual([3]);
  });

  it('keeps message order and span order across batches', () => {
    for (let i = 0; i < 12; i++) batcher.add(i, spans(10, i.toString(16)));
    batcher.flush();
    expect(batches.map((b) => b.tokens)).toEqual([[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11]]);
    expect(batches[2]!.reason).toBe('forced');
    expect(batches.flatMap((b) => b.spans).map((s) => s.traceId[0])).toEqual(
      Array.from({ length: 12 }, (_, i) => Array<string>(10).fill(i.toString(16))).flat(),
    );
  });

  it('carries messages without spans so they are acked with the batch', () => {
    batcher.add(1, []);
    batcher.flush();
    expect(batches[0]!.tokens).toEqual([1]);
    expect(batches[0]!.spans).toEqual([]);
  });

  it('takes a message far larger than the batch in one piece', () => {
    batcher.add(1, spans(200_000));
    expect(batches).toHaveLength(1);
    expect(batches[0]!.spans).toHaveLength(200_000);
  });

  it('flush with nothing pending hands on nothing; discard forgets the open batch and its timer', () => {
    batcher.flush();
    expect(batches).toHaveLength(0);
    batcher.add(1, spans(3));
    batcher.add(2, spans(3));
    expect(batcher.pendingSpans).toBe(6);
    expect(batcher.discard()).toEqual([1, 2]);
    vi.advanceTimersByTime(5_000);
    expect(batches).toHaveLength(0);
  });
});
