import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Span } from '@tracehouse/model';
import { ClickHouseStore } from './clickhouse-store.js';
import { ChdbEngine } from './chdb-engine.js';
import type { Engine } from './engine.js';
import { HttpEngine } from './http-engine.js';
import { StorageError } from './storage-error.js';
import { ENGINES, uniqueDatabase } from './test-support/fixtures.js';

const DAY_MICROS = 86_400_000_000;

/** One span on each of `days` consecutive days up to today, in one trace. */
function spansOverDays(traceId: string, days: number): Span[] {
  const now = Date.now() * 1000;
  return Array.from({ length: days }, (_, i) => ({
    traceId,
    id: (i + 1).toString(16).padStart(16, '0'),
    name: `day-${i}`,
    timestamp: now - i * DAY_MICROS,
    duration: 10,
    localEndpoint: { serviceName: 'partitions' },
  }));
}

/**
 * Tables are partitioned by day, and a modern server refuses an INSERT that
 * touches more than max_partitions_per_insert_block (100) partitions. That
 * refusal depends on the rows only: it must come out not retryable, or the
 * collector retries the batch forever. The 18.16 server has no such limit.
 */
describe.each(ENGINES)('an insert spanning more than 100 days on the $name', ({ url }) => {
  const database = uniqueDatabase('th_parts');
  let store: ClickHouseStore;
  let engine: Engine;
  let limited: boolean;

  beforeAll(async () => {
    store = await ClickHouseStore.open({ url, database, retentionDays: 1_000 });
    engine = url.startsWith('chdb:') ? await ChdbEngine.open({ queryTimeoutMs: 30_000 }) : new HttpEngine({ url, queryTimeoutMs: 30_000 });
    const [row] = await engine.query<{ n: string }>({
      sql: "SELECT count() AS n FROM system.settings WHERE name = 'max_partitions_per_insert_block'",
      params: {},
    });
    limited = row?.n !== '0';
  });

  afterAll(async () => {
    await store?.dropDatabase();
    await engine?.close();
    await store?.close();
  });

  it('has the limit exactly on modern servers', () => {
    expect(limited).toBe(!store.serverVersion.startsWith('18.'));
  });

  it('is refused for good on a modern server (stored as is on 18.16), and leaves nothing behind', async () => {
    const spans = spansOverDays('a'.repeat(16), 150);
    const write = store.writer.write(spans);
    if (!limited) {
      await write;
      expect(await store.reader.getTrace('a'.repeat(16))).toHaveLength(150);
      return;
    }
    const error = await write.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ code: 'too_many_partitions', retryable: false });
    expect((error as StorageError).message).toMatch(/: the spans cover more days than ClickHouse accepts in one INSERT/);
    expect((error as StorageError).message).toContain('max_partitions_per_insert_block');
    expect(await store.reader.getTrace('a'.repeat(16))).toEqual([]);
  });

  it('stores the same rows once each insert stays within 100 days', async () => {
    const spans = spansOverDays('b'.repeat(16), 150);
    await store.writer.write(spans.slice(0, 100));
    await store.writer.write(spans.slice(100));
    expect(await store.reader.getTrace('b'.repeat(16))).toHaveLength(150);
  });
});
