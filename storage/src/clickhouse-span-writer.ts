import type { Span } from '@tracehouse/model';
import type { Engine } from './engine.js';
import type { SpanWriter } from './span-writer.js';
import { INGEST_COLUMNS } from './schema.js';
import { encodeRows } from './span-row.js';

/** Spans per INSERT: bounds the size of one request body. */
const MAX_SPANS_PER_INSERT = 50_000;

/**
 * Writes spans as TabSeparated rows into span_ingest; the materialized views
 * fill the tables. One INSERT per call (per 50 000 spans): ClickHouse wants
 * few large inserts, and the collector already batches.
 */
export class ClickHouseSpanWriter implements SpanWriter {
  readonly #engine: Engine;
  readonly #table: string;
  /** Request buffers no write is using, kept to be filled again. */
  readonly #spare: Buffer[] = [];

  constructor(options: { engine: Engine; database: string }) {
    this.#engine = options.engine;
    this.#table = `${options.database}.span_ingest`;
  }

  async write(spans: readonly Span[]): Promise<void> {
    const now = Date.now() * 1000;
    for (let start = 0; start < spans.length; start += MAX_SPANS_PER_INSERT) {
      const end = Math.min(spans.length, start + MAX_SPANS_PER_INSERT);
      const { body, buffer } = encodeRows(spans, start, end, now, this.#spare.pop());
      await this.#engine.insertTabSeparated(this.#table, INGEST_COLUMNS, body);
      // Kept for a next write only after a success: a failed or timed-out
      // request might still be reading it. At most two (as many as writes
      // usually in flight), none beyond 128 MiB.
      if (this.#spare.length < 2 && buffer.length <= 128 * 1024 * 1024) this.#spare.push(buffer);
    }
  }
}
