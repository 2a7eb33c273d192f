/**
 * Tracks the unsettled delivery tags of one AMQP channel and turns "these
 * messages are done" into as few acks as possible: one multiple-ack up to the
 * highest tag when no other unsettled message sits below it, single acks for
 * the rest. Tags are assigned by the broker in increasing order per channel.
 */
export interface AckPlan {
  /** Ack with multiple=true up to and including this tag. */
  upTo?: number;
  /** Ack these tags one by one. */
  singles: number[];
}

export class AckTracker {
  // Insertion order is delivery order, so iteration walks tags ascending.
  private readonly unsettled = new Set<number>();

  get size(): number {
    return this.unsettled.size;
  }

  delivered(tag: number): void {
    this.unsettled.add(tag);
  }

  /** Forgets every tag (the channel is gone; the broker will redeliver). */
  reset(): void {
    this.unsettled.clear();
  }

  /** Marks tags settled and says how to ack them. Unknown tags are ignored. */
  settle(tags: readonly number[]): AckPlan {
    const done = new Set<number>();
    for (const tag of tags) if (this.unsettled.has(tag)) done.add(tag);
    if (done.size === 0) return { singles: [] };
    // Walk from the lowest unsettled tag: the longest run that is all ours can
    // be acked with one multiple-ack.
    let upTo: number | undefined;
    let covered = 0;
    for (const tag of this.unsettled) {
      if (!done.has(tag)) break;
      upTo = tag;
      covered++;
      if (covered === done.size) break;
    }
    const singles: number[] = [];
    for (const tag of done) {
      this.unsettled.delete(tag);
      if (upTo === undefined || tag > upTo) singles.push(tag);
    }
    singles.sort((a, b) => a - b);
    // A multiple-ack covering a single message is just an ack.
    if (upTo !== undefined && covered === 1) return { singles: [upTo, ...singles] };
    return upTo === undefined ? { singles } : { upTo, singles };
  }
}
