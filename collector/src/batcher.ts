/**
 * Groups decoded messages into batches for one insert. A batch closes when it
 * holds `maxSpans` spans or `maxMessages` messages, or when its first message
 * has waited `maxAgeMs`. The batcher knows nothing about AMQP or spans: each
 * message is an opaque token (handed back with the batch so the caller can
 * ack it) and an opaque part holding its spans (the collector's encoded rows).
 */
export interface Batch<T, P> {
  readonly tokens: T[];
  /** The messages' parts, in the order of `tokens`. */
  readonly parts: P[];
  /** Spans in all parts. */
  spanCount: number;
  /** Why the batch closed. */
  reason: 'spans' | 'messages' | 'age' | 'forced';
}

export interface BatcherOptions<T, P> {
  maxSpans: number;
  maxMessages: number;
  maxAgeMs: number;
  onBatch: (batch: Batch<T, P>) => void;
}

export class Batcher<T, P> {
  private current: Batch<T, P> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly o: BatcherOptions<T, P>) {}

  /** Messages waiting in the open batch. */
  get pendingMessages(): number {
    return this.current?.tokens.length ?? 0;
  }

  get pendingSpans(): number {
    return this.current?.spanCount ?? 0;
  }

  /** Adds one message: its part holds `spanCount` spans (possibly none: it is still acked with the batch). */
  add(token: T, part: P, spanCount: number): void {
    if (this.current === undefined) {
      this.current = { tokens: [], parts: [], spanCount: 0, reason: 'age' };
      this.timer = setTimeout(() => this.close('age'), this.o.maxAgeMs);
      this.timer.unref();
    }
    const batch = this.current;
    batch.tokens.push(token);
    batch.parts.push(part);
    batch.spanCount += spanCount;
    if (batch.spanCount >= this.o.maxSpans) this.close('spans');
    else if (batch.tokens.length >= this.o.maxMessages) this.close('messages');
  }

  /** Hands the open batch, if any, to onBatch now. */
  flush(): void {
    this.close('forced');
  }

  /** Forgets the open batch without handing it on (its messages will be redelivered). */
  discard(): T[] {
    const tokens = this.current?.tokens ?? [];
    this.clear();
    return tokens;
  }

  private close(reason: Batch<T, P>['reason']): void {
    const batch = this.current;
    this.clear();
    if (batch === undefined || batch.tokens.length === 0) return;
    batch.reason = reason;
    this.o.onBatch(batch);
  }

  private clear(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.current = undefined;
  }
}
