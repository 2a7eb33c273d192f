import { describe, expect, it } from 'vitest';
import { AckTracker } from './ack-tracker.js';

function tracker(tags: number[]): AckTracker {
  const t = new AckTracker();
  for (const tag of tags) t.delivered(tag);
  return t;
}

describe('AckTracker', () => {
  it('acks a whole batch with one multiple-ack when nothing older is unsettled', () => {
    const t = tracker([1, 2, 3, 4, 5, 6]);
    expect(t.settle([1, 2, 3, 4])).toEqual({ upTo: 4, singles: [] });
    expect(t.size).toBe(2);
    expect(t.settle([5, 6])).toEqual({ upTo: 6, singles: [] });
    expect(t.size).toBe(0);
  });

  it('never lets a multiple-ack cover an older message that is still being written', () => {
    const t = tracker([1, 2, 3, 4, 5, 6]);
    // 1 is still unsettled (e.g. in a slower insert): 4..6 must be acked one by one.
    expect(t.settle([4, 5, 6, 2])).toEqual({ singles: [2, 4, 5, 6] });
    expect(t.settle([1])).toEqual({ singles: [1] });
    expect(t.settle([3])).toEqual({ singles: [3] });
  });

  it('uses a multiple-ack for the leading run and single acks after a gap', () => {
    const t = tracker([10, 11, 12, 13, 14]);
    expect(t.settle([10, 11, 13])).toEqual({ upTo: 11, singles: [13] });
    expect(t.settle([12, 14])).toEqual({ upTo: 14, singles: [] });
  });

  it('ignores tags it never saw or already settled (a previous channel)', () => {
    const t = tracker([1, 2]);
    expect(t.settle([7])).toEqual({ singles: [] });
    expect(t.settle([1])).toEqual({ singles: [1] });
    expect(t.settle([1])).toEqual({ singles: [] });
    t.reset();
    expect(t.settle([2])).toEqual({ singles: [] });
    expect(t.size).toBe(0);
  });
});
