// The trace reader's searches beyond the small data sets of clickhouse-store.integration.test.ts:
// more traces than one read by id takes, and searches that run out of time.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Span } from '@tracehouse/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClickHouseStore } from './clickhouse-store.js';
import { transcodeSpans } from './json-v2-transcoder.js';
import { silentLogger } from './logger.js';
import { StorageError } from './storage-error.js';
import type { TraceQuery } from './trace-reader.js';
import { openWrappedReader, SlowEngine } from './testing.js';
import { ENGINES, uniqueDatabase } from './test-support/fixtures.js';

const HOUR_MS = 3_600_000;

/** `count` one-span traces of service `bulk`, one a millisecond, the newest `newestMs`; compact, to keep writing fast. */
function oneSpanTraces(count: number, newestMs: number): Span[] {
  return Array.from({ length: count }, (_, i) => ({
    traceId: (0x1000_0000_0000 + i).toString(16).padStart(16, '0'),
    id: (0x2000_0000_0000 + i).toString(16).padStart(16, '0'),
    name: 'op',
    timestamp: (newestMs - i) * 1000,
    duration: 1,
    localEndpoint: { serviceName: 'bulk' },
  }));
}

describe.each(ENGINES)('a search for more traces than one read by id takes, on the $name', ({ url }) => {
  const database = uniqueDatabase('th_reader_bulk');
  const now = Date.now();
  // More than the 10 000 ids one read by id takes.
  const spans = oneSpanTraces(10_050, now - 60_000);
  const newestFirst = spans.map((span) => span.traceId);
  let store: ClickHouseStore;

  beforeAll(async () => {
    store = await ClickHouseStore.open({ url, database });
    await store.writer.write(spans);
  });
  afterAll(async () => {
    await store?.dropDatabase();
    await store?.close();
  });

  it('returns every trace a search with a limit over 10 000 finds, newest first', async () => {
    const search = (limit: number) =>
      store.reader
        .getTraces({ serviceName: 'bulk', endTs: now, lookback: HOUR_MS, limit })
        .then((found) => found.map((trace) => (trace.length === 1 ? trace[0]?.traceId : `${trace.length} spans`)));
    expect(await search(100_000)).toEqual(newestFirst);
    expect(await search(10_001)).toEqual(newestFirst.slice(0, 10_001));
  });

  it('still refuses more than 10 000 ids asked for at once', async () => {
    await expect(store.reader.getTraceMany(newestFirst)).rejects.toMatchObject({ code: 'bad_input', retryable: false });
    expect(await store.reader.getTraceMany(newestFirst.slice(0, 10_000))).toHaveLength(10_000);
  });
});

describe.each(ENGINES)('name lists of a service that puts ids into its names, on the $name', ({ url }) => {
  const database = uniqueDatabase('th_reader_names');
  const now = Date.now();
  const COUNT = 10_005;
  /** Zero-padded, so that byte order is numeric order. */
  const numbered = (prefix: string): string[] => Array.from({ length: COUNT }, (_, i) => `${prefix}-${String(i).padStart(5, '0')}`);
  const spans: Span[] = oneSpanTraces(COUNT, now - 60_000).map((span, i) => ({
    ...span,
    name: `op-${String(i).padStart(5, '0')}`,
    localEndpoint: { serviceName: i === 0 ? 'bulk' : `svc-${String(i).padStart(5, '0')}` },
    remoteEndpoint: { serviceName: `remote-${String(i).padStart(5, '0')}` },
    tags: { [`key-${String(i).padStart(5, '0')}`]: 'v', 'request.id': `value-${String(i).padStart(5, '0')}` },
  }));
  let store: ClickHouseStore;

  beforeAll(async () => {
    store = await ClickHouseStore.open({ url, database });
    // Every span under one service for the span and remote names.
    await store.writer.write(spans.map((span) => ({ ...span, localEndpoint: { serviceName: 'bulk' } })));
    await store.writer.write(spans);
  });
  afterAll(async () => {
    await store?.dropDatabase();
    await store?.close();
  });

  it('returns the first 10 000 of each list in byte order', async () => {
    const first = (names: string[]): string[] => names.slice(0, 10_000);
    expect(await store.reader.getServiceNames()).toEqual(first(['bulk', ...numbered('svc').slice(1)]));
    expect(await store.reader.getSpanNames('bulk')).toEqual(first(numbered('op')));
    expect(await store.reader.getRemoteServiceNames('bulk')).toEqual(first(numbered('remote')));
    expect(await store.reader.getAutocompleteKeys()).toEqual(first([...numbered('key'), 'request.id']));
    expect(await store.reader.getAutocompleteValues('request.id')).toEqual(first(numbered('value')));
  });
});

describe.each(ENGINES)('a span whose stored JSON is cut short, on the $name', ({ url }) => {
  const database = uniqueDatabase('th_reader_cut');
  const now = Date.now();
  const spans = oneSpanTraces(3, now - 60_000).map((span, i) => ({ ...span, traceId: 'c0ffee0000000001', parentId: i === 0 ? undefined : '2000000000000000' }));
  let store: ClickHouseStore;
  const warnings: string[] = [];

  beforeAll(async () => {
    const logger = { ...silentLogger, warn: (_: object, msg?: string) => void warnings.push(msg ?? ''), child: () => logger };
    store = await ClickHouseStore.open({ url, database, logger });
    await store.writer.write(spans);
    // What ClickHouse 18.16 keeps of an insert whose body was cut mid-row (a collector killed
    // mid-insert): the last row, its payload truncated.
    const cut = transcodeSpans(Buffer.from(JSON.stringify([{ ...spans[2]!, id: '3000000000000000', name: 'cut-short' }])), {});
    if (!cut.ok) throw new Error(cut.message);
    const row = cut.encoded.rows;
    await store.writer.writeEncoded([{ rows: row.subarray(0, row.lastIndexOf('"timestamp"')), count: 1 }]);
  });
  afterAll(async () => {
    await store?.dropDatabase();
    await store?.close();
  });

  it('reads the trace without it, and says so', async () => {
    const trace = await store.reader.getTrace('c0ffee0000000001');
    expect(trace.map((span) => span.id).sort()).toEqual(spans.map((span) => span.id).sort());
    expect(await store.reader.getTraceMany(['c0ffee0000000001', spans[0]!.traceId])).toHaveLength(1);
    expect(warnings).toContain('left out stored spans whose JSON is cut short');
  });
});

describe.each(ENGINES)('a search that runs out of time, on the $name', ({ url }) => {
  const database = uniqueDatabase('th_reader_slow');
  const now = Date.now();
  // One trace three days old: a search over 7 days steps through 1 h, 4 h, 16 h, 64 h and the
  // whole window (5 queries), then reads the trace (2 queries).
  const [old] = oneSpanTraces(1, now - 3 * 24 * HOUR_MS);
  const search: TraceQuery = { serviceName: 'bulk', endTs: now, lookback: 7 * 24 * HOUR_MS, limit: 10 };
  const QUERIES = 7;
  let store: ClickHouseStore;
  const closers: Array<() => Promise<void>> = [];

  /** The store's reader, on an engine whose reads each take `delayMs` more. */
  async function slowReader(delayMs: number, queryTimeoutMs: number) {
    let slow: SlowEngine | undefined;
    const { reader, close } = await openWrappedReader({
      url,
      database,
      queryTimeoutMs,
      wrap: (engine) => (slow = new SlowEngine(engine, delayMs)),
    });
    closers.push(close);
    return { reader, started: (slow as SlowEngine).started };
  }

  beforeAll(async () => {
    store = await ClickHouseStore.open({ url, database });
    await store.writer.write([old as Span]);
  });
  afterAll(async () => {
    for (const close of closers) await close();
    await store?.dropDatabase();
    await store?.close();
  });

  it(`takes ${QUERIES} queries when nothing stops it`, async () => {
    const { reader, started } = await slowReader(0, 30_000);
    expect(await reader.getTraces(search)).toEqual([[old]]);
    expect(started).toHaveLength(QUERIES);
  });

  it("starts no query once its signal has aborted, and rejects with the signal's reason", async () => {
    const { reader, started } = await slowReader(100, 30_000);
    const controller = new AbortController();
    const reason = new Error('the caller gave up');
    let abortedAt = Infinity;
    setTimeout(() => {
      abortedAt = Date.now();
      controller.abort(reason);
    }, 250);
    await expect(reader.getTraces(search, { signal: controller.signal })).rejects.toBe(reason);
    const startedThen = started.length;
    await sleep(QUERIES * 100 + 200);
    expect(started).toHaveLength(startedThen);
    expect(startedThen).toBeLessThan(QUERIES);
    expect(Math.max(...started)).toBeLessThanOrEqual(abortedAt);

    const aborted = AbortSignal.abort(reason);
    await expect(reader.getTraces(search, { signal: aborted })).rejects.toBe(reason);
    expect(started).toHaveLength(startedThen);
  });

  it('starts no query once the query timeout has passed for the search as a whole', async () => {
    // Each query (and its delay) is well within the engine's own timeout; the search is not.
    const { reader, started } = await slowReader(100, 250);
    const failure = await reader.getTraces(search).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(StorageError);
    expect(failure).toMatchObject({ code: 'timeout' });
    expect((failure as StorageError).message).toMatch(/^trace search: \d steps over the window done in 250 ms$/);
    const startedThen = started.length;
    await sleep(QUERIES * 100 + 200);
    expect(started).toHaveLength(startedThen);
    expect(startedThen).toBeLessThan(QUERIES);
  });
});

describe.each(ENGINES)('a search with several criteria over a window the reader steps through, on the $name', ({ url }) => {
  const database = uniqueDatabase('th_reader_criteria');
  const now = Date.now();
  const span = (traceId: string, id: string, agoMs: number, extra: Partial<Span>): Span => ({
    traceId,
    id,
    timestamp: (now - agoMs) * 1000,
    duration: 1_000,
    localEndpoint: { serviceName: 'shop' },
    ...extra,
  });
  // `straddling` meets the span name only with a span two hours old and the tag only with one
  // half an hour old: the newest hour alone holds half of what it matches. `recent` meets both
  // within the newest hour, but its newest match is older than `straddling`'s.
  const straddling = [
    span('00000000000000a1', '00000000000000a1', 2 * HOUR_MS, { name: 'checkout' }),
    span('00000000000000a1', '00000000000000a2', HOUR_MS / 2, { parentId: '00000000000000a1', name: 'charge', tags: { 'http.status_code': '500' } }),
  ];
  const recent = [
    span('00000000000000b1', '00000000000000b1', (50 * HOUR_MS) / 60, { name: 'checkout', tags: { 'http.status_code': '500' } }),
  ];
  // The newest of all, but its tag is on a span of another service.
  const split = [
    span('00000000000000c1', '00000000000000c1', HOUR_MS / 4, { name: 'checkout' }),
    span('00000000000000c1', '00000000000000c2', HOUR_MS / 4, {
      parentId: '00000000000000c1',
      name: 'charge',
      tags: { 'http.status_code': '500' },
      localEndpoint: { serviceName: 'billing' },
    }),
  ];
  const query = (limit: number): TraceQuery => ({
    serviceName: 'shop',
    spanName: 'checkout',
    annotationQuery: [{ key: 'http.status_code', value: '500' }],
    endTs: now,
    lookback: 24 * HOUR_MS,
    limit,
  });
  let store: ClickHouseStore;

  beforeAll(async () => {
    store = await ClickHouseStore.open({ url, database });
    await store.writer.write([...straddling, ...recent, ...split]);
  });
  afterAll(async () => {
    await store?.dropDatabase();
    await store?.close();
  });

  const ids = (traces: Span[][]) => traces.map((trace) => trace[0]?.traceId);

  it('finds what a search of the whole window finds, newest match first, though the newest hour already holds enough', async () => {
    expect(ids(await store.reader.getTraces(query(1)))).toEqual(['00000000000000a1']);
    expect(ids(await store.reader.getTraces(query(2)))).toEqual(['00000000000000a1', '00000000000000b1']);
    expect(ids(await store.reader.getTraces(query(10)))).toEqual(['00000000000000a1', '00000000000000b1']);
  });

  it('counts only the spans of the service asked for, and every service when none is', async () => {
    expect(ids(await store.reader.getTraces({ ...query(10), serviceName: 'billing' }))).toEqual([]);
    const { serviceName: _all, ...anyService } = query(10);
    expect(ids(await store.reader.getTraces(anyService))).toEqual(['00000000000000c1', '00000000000000a1', '00000000000000b1']);
  });
});
