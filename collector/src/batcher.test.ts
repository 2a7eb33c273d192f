import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Batcher, type Batch } from './batcher.js';

/** Messages are numbers, their parts strings naming them: what matters is what travels together. */
describe('Batcher', () => {
  let batches: Batch<number, string>[];
  let batcher: Batcher<number, string>;
  beforeEach(() => {
    vi.useFakeTimers();
    batches = [];
    batcher = new Batcher<number, string>({ maxSpans: 100, maxMessages: 5, maxAgeMs: 1_000, onBatch: (b) => batches.push(b) });
  });
  afterEach(() => vi.useRealTimers());

  it('closes a batch when it reaches the span count', () => {
    batcher.add(1, 'one', 60);
    expect(batches).toHaveLength(0);
    batcher.add(2, 'two', 50);
    expect(batches).toHaveLength(1);
    expect(batches[0]!.tokens).toEqual([1, 2]);
    expect(batches[0]!.parts).toEqual(['one', 'two']);
    expect(batches[0]!.spanCount).toBe(110);
    expect(batches[0]!.reason).toBe('spans');
    expect(batcher.pendingMessages).toBe(0);
  });

  it('closes a batch when it reaches the message count', () => {
    for (let i = 1; i <= 5; i++) batcher.add(i, `m${i}`, 1);
    expect(batches).toHaveLength(1);
    expect(batches[0]!.reason).toBe('messages');
    expect(batches[0]!.tokens).toEqual([1, 2, 3, 4, 5]);
  });

  it('closes a batch when its first message is maxAgeMs old, not later messages', () => {
    batcher.add(1, 'm1', 1);
    vi.advanceTimersByTime(600);
    batcher.add(2, 'm2', 1);
    vi.advanceTimersByTime(399);
    expect(batches).toHaveLength(0);
    vi.advanceTimersByTime(1);
    expect(batches).toHaveLength(1);
    expect(batches[0]!.reason).toBe('age');
    expect(batches[0]!.tokens).toEqual([1, 2]);
    // The next message opens a fresh batch with its own clock.
    batcher.add(3, 'm3', 1);
    vi.advanceTimersByTime(999);
    expect(batches).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(batches[1]!.tokens).toEqual([3]);
  });

  it('keeps message order, each message with its own part, across batches', () => {
    for (let i = 0; i < 12; i++) batcher.add(i, `m${i}`, 10);
    batcher.flush();
    expect(batches.map((b) => b.tokens)).toEqual([[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11]]);
    expect(batches[2]!.reason).toBe('forced');
    for (const batch of batches) expect(batch.parts).toEqual(batch.tokens.map((t) => `m${t}`));
    expect(batches.map((b) => b.spanCount)).toEqual([50, 50, 20]);
  });

  it('carries messages without spans so they are acked with the batch', () => {
    batcher.add(1, 'empty', 0);
    batcher.flush();
    expect(batches[0]!.tokens).toEqual([1]);
    expect(batches[0]!.spanCount).toBe(0);
  });

  it('takes a message far larger than the batch in one piece', () => {
    batcher.add(1, 'huge', 200_000);
    expect(batches).toHaveLength(1);
    expect(batches[0]!.parts).toEqual(['huge']);
    expect(batches[0]!.spanCount).toBe(200_000);
  });

  it('flush with nothing pending hands on nothing; discard forgets the open batch and its timer', () => {
    batcher.flush();
    expect(batches).toHaveLength(0);
    batcher.add(1, 'm1', 3);
    batcher.add(2, 'm2', 3);
    expect(batcher.pendingSpans).toBe(6);
    expect(batcher.discard()).toEqual([1, 2]);
    vi.advanceTimersByTime(5_000);
    expect(batches).toHaveLength(0);
  });
});
