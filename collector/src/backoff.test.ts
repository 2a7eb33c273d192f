import { describe, expect, it } from 'vitest';
import { backoffDelay, sleep } from './backoff.js';

describe('backoffDelay', () => {
  it('doubles from the initial delay up to the maximum', () => {
    const noJitter = { initialMs: 100, maxMs: 1_000, jitter: 0 };
    expect([1, 2, 3, 4, 5, 10].map((a) => backoffDelay(a, noJitter))).toEqual([100, 200, 400, 800, 1_000, 1_000]);
  });

  it('jitters downwards only, so the maximum holds', () => {
    const o = { initialMs: 100, maxMs: 1_000, jitter: 0.5 };
    expect(backoffDelay(10, o, () => 0)).toBe(1_000);
    expect(backoffDelay(10, o, () => 0.999_999)).toBe(500);
    expect(backoffDelay(1, o, () => 1)).toBe(50);
  });
});

describe('sleep', () => {
  it('ends early when its signal aborts', async () => {
    const controller = new AbortController();
    const started = Date.now();
    const done = sleep(10_000, controller.signal);
    setTimeout(() => controller.abort(), 20);
    await done;
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});
