/**
 * Writes closed batches to the span store: at most `concurrency` inserts at a
 * time, retried with exponential backoff while the store fails with a
 * retryable error. A batch is reported committed only once the writer
 * resolved for every span in it. Batches waiting for a slot stay queued; the
 * broker's prefetch bounds how many can exist, so memory stays bounded while
 * ClickHouse is away.
 *
 * When ClickHouse falls behind, closed batches queue up behind the running
 * inserts; the next free slot then writes all of them that fit in
 * `maxSpansPerInsert` as one INSERT (group commit). Inserts grow exactly when
 * the server is the bottleneck, and bigger inserts cost it much less CPU per
 * span (fewer parts to write and merge: measured ~35 µs per span with 10,000-
 * span inserts against ~20 µs with 50,000 on the 18.16 server), while at low
 * load each batch is still written as soon as it closes.
 *
 * An error the store marks as not retryable (ClickHouse refused the rows
 * themselves) is narrowed down by writing the batch's messages one by one;
 * a message that is refused on its own is handed to onRejected (dead letter).
 */
import type { Logger } from 'pino';
import { backoffDelay, sleep, type BackoffOptions } from './backoff.js';
import type { Batch } from './batcher.js';
import type { CollectorMetrics } from './metrics.js';

/** Where batches go: one call per batch (or per message when narrowing a refusal down). */
export interface SpanSink<P> {
  write(parts: readonly P[]): Promise<void>;
}

export interface CountedToken {
  /** How many spans of the batch belong to this message, in order. */
  readonly spanCount: number;
}

export interface InsertPipelineOptions<T extends CountedToken, P> {
  sink: SpanSink<P>;
  concurrency: number;
  /** Queued batches are merged into one insert up to this many spans. */
  maxSpansPerInsert: number;
  retry: BackoffOptions;
  logger: Logger;
  metrics: CollectorMetrics;
  /** Every span of these messages is committed. */
  onCommitted: (tokens: T[]) => void;
  /** ClickHouse refused this message's spans for good. */
  onRejected: (token: T, part: P, error: unknown) => void;
  /** Called with false on a failed insert, true on a successful one. */
  onHealth: (ok: boolean) => void;
  /**
   * True for messages that will come again anyway (their channel is gone):
   * a failed insert of nothing else is not retried, and its rows are let go.
   */
  isStale?: (tokens: readonly T[]) => boolean;
}

export function isRetryable(error: unknown): boolean {
  if (error !== null && typeof error === 'object' && 'retryable' in error) {
    // A schema problem (database dropped, migration missing) concerns every
    // message alike: wait for an operator rather than dead-letter the stream.
    if ('code' in error && error.code === 'schema') return true;
    return error.retryable !== false;
  }
  // Anything unknown is retried: losing spans is worse than waiting.
  return true;
}

export class InsertPipeline<T extends CountedToken, P> {
  private readonly queue: Batch<T, P>[] = [];
  private active = 0;
  private readonly aborter = new AbortController();
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly o: InsertPipelineOptions<T, P>) {}

  /** Batches queued or being written. */
  get pending(): number {
    return this.queue.length + this.active;
  }

  submit(batch: Batch<T, P>): void {
    if (this.aborter.signal.aborted) return;
    this.queue.push(batch);
    this.pump();
  }

  /** Resolves once every submitted batch is committed (or the pipeline was aborted). */
  drain(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Forgets queued (not yet running) batches: used when their channel is gone,
   * since the broker redelivers those messages anyway. Running ones finish.
   */
  discardQueued(): number {
    const discarded = this.queue.length;
    this.queue.length = 0;
    this.o.metrics.pendingBatches.set(this.pending);
    this.settleIdle();
    return discarded;
  }

  /** Stops retrying and forgets queued batches; their messages stay unacked. */
  abort(): void {
    this.aborter.abort();
    this.queue.length = 0;
    this.o.metrics.pendingBatches.set(this.pending);
    this.settleIdle();
  }

  private pump(): void {
    while (this.active < this.o.concurrency && this.queue.length > 0) {
      const batch = this.takeQueued();
      this.active++;
      void this.run(batch)
        // Unhandled, this rejection would kill an embedding process.
        .catch((error: unknown) => this.o.logger.error({ err: error, spans: batch.spanCount }, 'insert pipeline failed handling a batch'))
        .finally(() => {
          this.active--;
          this.pump();
          this.settleIdle();
        });
    }
    // Here, not per batch: taking queued batches may have merged several into one insert.
    this.o.metrics.pendingBatches.set(this.pending);
  }

  /** The first queued batch, merged with the ones after it that still fit. */
  private takeQueued(): Batch<T, P> {
    const first = this.queue.shift()!;
    let next = this.queue[0];
    if (next === undefined || first.spanCount + next.spanCount > this.o.maxSpansPerInsert) return first;
    const merged: Batch<T, P> = { tokens: [...first.tokens], parts: [...first.parts], spanCount: first.spanCount, reason: first.reason };
    while (next !== undefined && merged.spanCount + next.spanCount <= this.o.maxSpansPerInsert) {
      this.queue.shift();
      for (const token of next.tokens) merged.tokens.push(token);
      for (const part of next.parts) merged.parts.push(part);
      merged.spanCount += next.spanCount;
      next = this.queue[0];
    }
    return merged;
  }

  /**
   * Runs an owner's callback. One that throws is logged and does not stop the
   * batch: the other messages still get committed or rejected, and a throwing
   * onHealth is not mistaken for a failed insert (which would write it again).
   */
  private notify(callback: 'onCommitted' | 'onRejected' | 'onHealth' | 'spansStored', call: () => void): void {
    try {
      call();
    } catch (error) {
      this.o.logger.error({ err: error, callback }, 'insert pipeline callback threw');
    }
  }

  private settleIdle(): void {
    if (this.pending !== 0 && !this.aborter.signal.aborted) return;
    if (this.active !== 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private async run(batch: Batch<T, P>): Promise<void> {
    this.o.metrics.batchSpans.observe(batch.spanCount);
    this.o.metrics.batchMessages.observe(batch.tokens.length);
    const outcome = await this.writeWithRetry(batch.tokens, batch.parts, batch.spanCount);
    if (outcome === 'aborted') return;
    if (outcome === 'ok') {
      // Acks first: whatever happens after, a stored message must not hold its prefetch slot.
      this.notify('onCommitted', () => this.o.onCommitted(batch.tokens));
      this.o.metrics.spansStored.inc(batch.spanCount);
      return;
    }
    // Refused for good: find the message(s) responsible.
    for (let i = 0; i < batch.tokens.length; i++) {
      const token = batch.tokens[i] as T;
      const part = batch.parts[i] as P;
      const single = batch.tokens.length === 1 ? outcome : await this.writeWithRetry([token], [part], token.spanCount);
      if (single === 'aborted') return;
      if (single === 'ok') {
        this.notify('onCommitted', () => this.o.onCommitted([token]));
        // Guarded: a failure here must not leave the rest of the batch neither acked nor rejected.
        this.notify('spansStored', () => this.o.metrics.spansStored.inc(token.spanCount));
      } else {
        this.notify('onRejected', () => this.o.onRejected(token, part, single.error));
      }
    }
  }

  private async writeWithRetry(tokens: readonly T[], parts: readonly P[], spans: number): Promise<'ok' | 'aborted' | { error: unknown }> {
    if (spans === 0) return 'ok';
    const signal = this.aborter.signal;
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted) return 'aborted';
      const started = performance.now();
      try {
        await this.o.sink.write(parts);
        this.o.metrics.insertSeconds.observe({ outcome: 'ok' }, (performance.now() - started) / 1000);
        this.notify('onHealth', () => this.o.onHealth(true));
        return 'ok';
      } catch (error) {
        this.o.metrics.insertSeconds.observe({ outcome: 'error' }, (performance.now() - started) / 1000);
        // Stopping closes the store under a running insert; that is no verdict on the spans.
        if (signal.aborted) return 'aborted';
        if (!isRetryable(error)) {
          this.o.logger.error({ err: error, spans }, 'ClickHouse refused the spans; not retrying them');
          return { error };
        }
        this.notify('onHealth', () => this.o.onHealth(false));
        if (this.o.isStale?.(tokens) === true) {
          this.o.logger.info({ spans }, 'insert failed for messages the broker will deliver again; not retrying it');
          return 'aborted';
        }
        const delay = backoffDelay(attempt, this.o.retry);
        this.o.logger.warn({ err: error, attempt, retryInMs: delay, spans }, 'insert failed; retrying');
        this.o.metrics.insertRetries.inc();
        await sleep(delay, signal);
      }
    }
  }
}
