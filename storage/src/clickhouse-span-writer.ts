import type { Span } from '@tracehouse/model';
import type { Engine } from './engine.js';
import type { SpanWriter } from './span-writer.js';
import { INGEST_COLUMNS } from './schema.js';
import { encodeSpans, type EncodedSpans } from './span-row.js';

/** Spans per INSERT in `write`: bounds the size of one request body. */
const MAX_SPANS_PER_INSERT = 50_000;

/**
 * Writes spans as TabSeparated rows into span_ingest; the materialized views
 * fill the tables. ClickHouse wants few large inserts, and the collector
 * already batches.
 */
export class ClickHouseSpanWriter implements SpanWriter {
  readonly #engine: Engine;
  readonly #table: string;

  constructor(options: { engine: Engine; database: string }) {
    this.#engine = options.engine;
    this.#table = `${options.database}.span_ingest`;
  }

  async write(spans: readonly Span[]): Promise<void> {
    const now = Date.now() * 1000;
    for (let start = 0; start < spans.length; start += MAX_SPANS_PER_INSERT) {
      const end = Math.min(spans.length, start + MAX_SPANS_PER_INSERT);
      await this.writeEncoded([encodeSpans(start === 0 && end === spans.length ? spans : spans.slice(start, end), now)]);
    }
  }

  async writeEncoded(parts: readonly EncodedSpans[]): Promise<void> {
    const bodies: Buffer[] = [];
    for (const part of parts) if (part.count > 0) bodies.push(part.rows);
    if (bodies.length === 0) return;
    await this.#engine.insertTabSeparated(this.#table, INGEST_COLUMNS, bodies);
  }
}
