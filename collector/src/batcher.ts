/**
 * Groups decoded messages into batches for one insert. A batch closes when it
 * holds `maxSpans` spans or `maxMessages` messages, or when its first message
 * has waited `maxAgeMs`. The batcher knows nothing about AMQP: each message is
 * an opaque token handed back with the batch so the caller can ack it.
 */
import type { Span } from '@tracehouse/model';

export interface Batch<T> {
  readonly tokens: T[];
  readonly spans: Span[];
  /** Why the batch closed. */
  reason: 'spans' | 'messages' | 'age' | 'forced';
}

export interface BatcherOptions<T> {
  maxSpans: number;
  maxMessages: number;
  maxAgeMs: number;
  onBatch: (batch: Batch<T>) => void;
}

export class Batcher<T> {
  private current: Batch<T> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly o: BatcherOptions<T>) {}

  /** Messages waiting in the open batch. */
  get pendingMessages(): number {
    return this.current?.tokens.length ?? 0;
  }

  get pendingSpans(): number {
    return this.current?.spans.length ?? 0;
  }

  /** Adds one message's spans (possibly none: it is still acked with the batch). */
  add(token: T, spans: readonly Span[]): void {
    if (this.current === undefined) {
      this.current = { tokens: [], spans: [], reason: 'age' };
      this.timer = setTimeout(() => this.close('age'), this.o.maxAgeMs);
      this.timer.unref();
    }
    const batch = this.current;
    batch.tokens.push(token);
    // push(...spans) overflows the stack for very large messages.
    for (const span of spans) batch.spans.push(span);
    if (batch.spans.length >= this.o.maxSpans) this.close('spans');
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

  private close(reason: Batch<T>['reason']): void {
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
