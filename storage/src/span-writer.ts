import type { Span } from '@tracehouse/model';

/**
 * Writes spans. `write` resolves only when ClickHouse has committed every row
 * of the call; it rejects with a `StorageError` (check `retryable`). Writing
 * the same spans again (a replayed message) is harmless: readers never show a
 * span twice.
 */
export interface SpanWriter {
  write(spans: readonly Span[]): Promise<void>;
}
