import type { Span } from '@tracehouse/model';
import type { EncodedSpans } from './span-row.js';

/**
 * Writes spans. Each call is one INSERT (`write` splits very large arrays)
 * and resolves only when ClickHouse has committed every row of it; it
 * rejects with a `StorageError` (check `retryable`). Writing the same spans
 * again (a replayed message) is harmless: readers never show a span twice.
 */
export interface SpanWriter {
  write(spans: readonly Span[]): Promise<void>;
  /**
   * Writes spans encoded beforehand with `encodeSpans`: a caller that holds
   * spans for a while (the collector's batch) keeps compact bytes instead of
   * span objects.
   */
  writeEncoded(parts: readonly EncodedSpans[]): Promise<void>;
}
