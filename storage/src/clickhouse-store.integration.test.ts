import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeSpans, type Span } from '@tracehouse/model';
import { ClickHouseStore, DEFAULT_MAX_RESULT_BYTES } from './clickhouse-store.js';
import { StorageError } from './storage-error.js';
import { ChdbEngine } from './chdb-engine.js';
import { HttpEngine } from './http-engine.js';
import type { Engine } from './engine.js';
import { ClickHouseTraceReader } from './clickhouse-trace-reader.js';
import { generateSpans } from './span-generator.js';
import { ENGINES, fixtureTraces, sortSpans, uniqueDatabase } from './test-support/fixtures.js';
import { INJECTION_STRINGS } from './test-support/injection-strings.js';
import { DependencyLinker, type LinkSpan } from './dependency-linker.js';
import { silentLogger, type Logger } from './logger.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

describe.each(ENGINES)('ClickHouseStore on the $name', ({ url }) => {
  const database = uniqueDatabase('th_store');
  let store: ClickHouseStore;
  const now = Date.now();
  const base = now - HOUR_MS;
  const { traceA, traceB, traceAId, traceBId } = fixtureTraces(base);

  beforeAll(async () => {
    store = await ClickHouseStore.open({ url, database });
    await store.writer.write([...traceA, ...traceB]);
  });

  afterAll(async () => {
    await store?.dropDatabase();
    await store?.close();
  });

  it('reports the engine version and the features it chose', () => {
    expect(store.serverVersion).toMatch(/^\d+\.\d+/);
    const modern = !store.serverVersion.startsWith('18.');
    expect(store.features.serverParams).toBe(modern);
    expect(store.features.ttl).toBe(modern);
  });

  it('answers ping', async () => {
    expect(await store.ping()).toBe(true);
  });

  it('reads a trace back by id, exactly as written', async () => {
    expect(sortSpans(await store.reader.getTrace(traceAId))).toEqual(sortSpans(traceA));
    expect(await store.reader.getTrace(traceBId)).toEqual(traceB);
    expect(await store.reader.getTrace(traceAId.toUpperCase())).toHaveLength(traceA.length);
  });

  it('returns [] for unknown or malformed trace ids', async () => {
    expect(await store.reader.getTrace('ffffffffffffffff')).toEqual([]);
    expect(await store.reader.getTrace('not-a-trace-id')).toEqual([]);
    expect(await store.reader.getTrace('')).toEqual([]);
  });

  it('reads several traces, leaving unknown ids out', async () => {
    const traces = await store.reader.getTraceMany([traceBId, 'ffffffffffffffff', traceAId]);
    expect(traces.map((t) => t[0]?.traceId)).toEqual([traceBId, traceAId]);
    expect(await store.reader.getTraceMany([])).toEqual([]);
  });

  it('lists services, span names and remote services', async () => {
    expect(await store.reader.getServiceNames()).toEqual(['frontend', 'inventory', 'payment']);
    expect(await store.reader.getSpanNames('frontend')).toEqual(['get /checkout', 'post /pay']);
    expect(await store.reader.getSpanNames('payment')).toEqual(['post /pay', 'query']);
    expect(await store.reader.getSpanNames('nobody')).toEqual([]);
    expect(await store.reader.getRemoteServiceNames('frontend')).toEqual(['payment']);
    expect(await store.reader.getRemoteServiceNames('payment')).toEqual(['mysql']);
    expect(await store.reader.getRemoteServiceNames('inventory')).toEqual([]);
  });

  it('offers tag keys and values for autocompletion', async () => {
    expect(await store.reader.getAutocompleteKeys()).toEqual([
      'db.statement',
      'error',
      'http.method',
      'http.path',
      'region',
    ]);
    expect(await store.reader.getAutocompleteValues('http.method')).toEqual(['GET', 'POST']);
    expect(await store.reader.getAutocompleteValues('nope')).toEqual([]);
  });

  const window = { endTs: now, lookback: 2 * HOUR_MS, limit: 10 };
  const ids = (traces: Span[][]): string[] => traces.map((t) => t[0]?.traceId ?? '?');

  it('searches by time window, newest first', async () => {
    expect(ids(await store.reader.getTraces(window))).toEqual([traceBId, traceAId]);
    expect(ids(await store.reader.getTraces({ ...window, limit: 1 }))).toEqual([traceBId]);
    expect(await store.reader.getTraces({ ...window, endTs: base - HOUR_MS, lookback: HOUR_MS })).toEqual([]);
  });

  it('searches by service, span name and remote service', async () => {
    expect(ids(await store.reader.getTraces({ ...window, serviceName: 'payment' }))).toEqual([traceAId]);
    expect(ids(await store.reader.getTraces({ ...window, serviceName: 'PAYMENT' }))).toEqual([traceAId]);
    expect(ids(await store.reader.getTraces({ ...window, serviceName: 'frontend', spanName: 'post /pay' }))).toEqual([
      traceAId,
    ]);
    expect(await store.reader.getTraces({ ...window, serviceName: 'inventory', spanName: 'post /pay' })).toEqual([]);
    expect(ids(await store.reader.getTraces({ ...window, serviceName: 'payment', remoteServiceName: 'mysql' }))).toEqual([
      traceAId,
    ]);
    expect(await store.reader.getTraces({ ...window, serviceName: 'frontend', remoteServiceName: 'mysql' })).toEqual([]);
    // A whole trace comes back, not only the matching spans.
    const [trace] = await store.reader.getTraces({ ...window, serviceName: 'payment' });
    expect(trace).toHaveLength(traceA.length);
  });

  it('searches by duration', async () => {
    expect(ids(await store.reader.getTraces({ ...window, minDuration: 1_000_000 }))).toEqual([traceBId]);
    expect(ids(await store.reader.getTraces({ ...window, minDuration: 95_000, maxDuration: 120_000 }))).toEqual([
      traceAId,
    ]);
    expect(ids(await store.reader.getTraces({ ...window, serviceName: 'payment', maxDuration: 25_000 }))).toEqual([
      traceAId,
    ]);
    expect(await store.reader.getTraces({ ...window, serviceName: 'payment', minDuration: 1_000_000 })).toEqual([]);
  });

  it('searches by tags and annotations with Zipkin annotationQuery semantics', async () => {
    const q = (annotationQuery: Array<{ key: string; value?: string }>, serviceName?: string) =>
      store.reader
        .getTraces({ ...window, annotationQuery, ...(serviceName ? { serviceName } : {}) })
        .then(ids);
    expect(await q([{ key: 'error' }])).toEqual([traceAId]); // tag key alone
    expect(await q([{ key: 'retry' }])).toEqual([traceAId]); // annotation value
    expect(await q([{ key: 'region', value: 'eu' }])).toEqual([traceBId]);
    expect(await q([{ key: 'region', value: 'us' }])).toEqual([]);
    expect(await q([{ key: 'http.method', value: 'POST' }, { key: 'error' }])).toEqual([traceAId]);
    // Every term must match some span of the service.
    expect(await q([{ key: 'http.method', value: 'GET' }, { key: 'error' }], 'payment')).toEqual([]);
    expect(await q([{ key: 'http.method', value: 'GET' }, { key: 'error' }])).toEqual([traceAId]);
    expect(await q([{ key: 'db.statement', value: "SELECT * FROM cards WHERE id = 'x'" }])).toEqual([traceAId]);
  });

  it('computes dependency links with call and error counts', async () => {
    expect(await store.reader.getDependencies({ endTs: now, lookback: 2 * HOUR_MS })).toEqual([
      { parent: 'frontend', child: 'payment', callCount: 1, errorCount: 1 },
      { parent: 'payment', child: 'mysql', callCount: 1 },
    ]);
    expect(await store.reader.getDependencies({ endTs: base - HOUR_MS, lookback: HOUR_MS })).toEqual([]);
  });

  it('computes the links the linker computes from the spans written, over many traces split across inserts', async () => {
    const depsDatabase = uniqueDatabase('th_deps');
    const deps = await ClickHouseStore.open({ url, database: depsDatabase });
    try {
      // 3 000 span rows: several chunks of the HTTP stream.
      const spans = generateSpans({ traces: 500, spansPerTrace: 6, startMicros: (now - HOUR_MS) * 1000, seed: 7 });
      // Each trace's spans go to three inserts (three parts), one of them twice (a replay).
      const batches = [0, 1, 2].map((k) => spans.filter((_, i) => i % 3 === k));
      for (const batch of [...batches, batches[0]!]) await deps.writer.write(batch);

      const linkOf = (s: Span): LinkSpan => ({
        traceId: s.traceId,
        id: s.id,
        parentId: s.parentId ?? '',
        kind: s.kind ?? '',
        service: s.localEndpoint?.serviceName?.toLowerCase() ?? '',
        remoteService: s.remoteEndpoint?.serviceName?.toLowerCase() ?? '',
        error: s.tags?.error !== undefined,
      });
      const linked = (groups: Span[][]) => {
        const linker = new DependencyLinker();
        for (const group of groups) {
          const byTrace = new Map<string, LinkSpan[]>();
          for (const s of group) byTrace.set(s.traceId, [...(byTrace.get(s.traceId) ?? []), linkOf(s)]);
          for (const trace of byTrace.values()) linker.putTrace(trace);
        }
        return linker.links();
      };
      const expected = linked([spans]);
      expect(expected.reduce((calls, link) => calls + link.callCount, 0)).toBeGreaterThan(1000);
      expect(expected.some((link) => (link.errorCount ?? 0) > 0)).toBe(true);
      // Linking part of a trace at a time gives other counts: the reader must hand over whole traces.
      expect(linked(batches)).not.toEqual(expected);

      expect(await deps.reader.getDependencies({ endTs: now, lookback: 2 * HOUR_MS })).toEqual(expected);
    } finally {
      await deps.dropDatabase();
      await deps.close();
    }
  });

  it('keeps SQL injection attempts inert in every string parameter', async () => {
    const before = await store.countSpans();
    for (const evil of INJECTION_STRINGS) {
      expect(await store.reader.getSpanNames(evil)).toEqual([]);
      expect(await store.reader.getRemoteServiceNames(evil)).toEqual([]);
      expect(await store.reader.getAutocompleteValues(evil)).toEqual([]);
      expect(await store.reader.getTrace(evil)).toEqual([]);
      expect(
        await store.reader.getTraces({
          ...window,
          serviceName: evil === '' ? 'x' : evil,
          spanName: evil,
          remoteServiceName: evil,
          annotationQuery: [{ key: evil === '' ? 'x' : evil, value: evil }],
        }),
      ).toEqual([]);
    }
    expect(await store.countSpans()).toEqual(before);
    expect(await store.reader.getServiceNames()).toEqual(['frontend', 'inventory', 'payment']);
  });

  it('stores hostile strings and reads them back unchanged', async () => {
    const hostile: Span[] = INJECTION_STRINGS.map((s, i) => ({
      traceId: 'e'.repeat(16),
      id: (i + 1).toString(16).padStart(16, '0'),
      name: s === '' ? 'empty' : s,
      timestamp: base * 1000 + i,
      duration: 1,
      localEndpoint: { serviceName: 'hostile' },
      tags: { [`k${i}`]: s, [s === '' ? 'blank' : s]: 'v' },
      annotations: [{ timestamp: base * 1000 + i, value: s === '' ? 'blank' : s }],
    }));
    await store.writer.write(hostile);
    expect(sortSpans(await store.reader.getTrace('e'.repeat(16)))).toEqual(sortSpans(hostile));
    const names = await store.reader.getSpanNames('hostile');
    expect(names).toHaveLength(new Set(hostile.map((s) => s.name?.toLowerCase())).size);
    expect(await store.reader.getAutocompleteValues('k1')).toEqual([INJECTION_STRINGS[1]]);
    const tagged = await store.reader.getTraces({
      ...window,
      annotationQuery: [{ key: 'k0', value: INJECTION_STRINGS[0] }],
    });
    expect(ids(tagged)).toEqual(['e'.repeat(16)]);
  });

  it('rejects bad search input with a non-retryable StorageError', async () => {
    for (const bad of [
      { ...window, limit: 0 },
      { ...window, endTs: -1 },
      { ...window, lookback: 1.5 },
      { ...window, minDuration: -1 },
    ]) {
      await expect(store.reader.getTraces(bad)).rejects.toMatchObject({ code: 'bad_input', retryable: false });
    }
  });
});

describe.each(ENGINES)('deduplication on the $name', ({ url }) => {
  const database = uniqueDatabase('th_dedup');
  let store: ClickHouseStore;

  beforeAll(async () => {
    store = await ClickHouseStore.open({ url, database });
  });
  afterAll(async () => {
    await store?.dropDatabase();
    await store?.close();
  });

  it('never shows a replayed span twice', async () => {
    const now = Date.now();
    const spans = generateSpans({ traces: 50, spansPerTrace: 6, startMicros: (now - HOUR_MS) * 1000, seed: 42 });
    await store.writer.write(spans);
    // A replay: the same spans again, in other batches and another order.
    await store.writer.write(spans.slice(100).reverse());
    await store.writer.write(spans.slice(0, 100));
    const counted = await store.countSpans();
    expect(counted.distinct).toBe(spans.length);
    expect(counted.rows).toBeGreaterThanOrEqual(spans.length);

    const traceIds = [...new Set(spans.map((s) => s.traceId))];
    const traces = await store.reader.getTraceMany(traceIds);
    expect(traces).toHaveLength(traceIds.length);
    expect(traces.flat()).toHaveLength(spans.length);

    const found = await store.reader.getTraces({ endTs: now, lookback: 2 * HOUR_MS, limit: 1000 });
    expect(found).toHaveLength(traceIds.length);
    expect(found.flat()).toHaveLength(spans.length);
    for (const trace of found) {
      const keys = trace.map((s) => `${s.id}/${s.kind}/${s.localEndpoint?.serviceName}`);
      expect(new Set(keys).size).toBe(keys.length);
    }

    // Merging removes the physical copies too.
    await store.optimize();
    expect(await store.countSpans()).toEqual({ rows: spans.length, distinct: spans.length });
  });

  it('keeps two different reports of the same span id (client and server halves)', async () => {
    const base = Date.now() - HOUR_MS;
    const { traceA, traceAId } = fixtureTraces(base);
    await store.writer.write(traceA);
    await store.writer.write(traceA);
    const trace = await store.reader.getTrace(traceAId);
    expect(trace).toHaveLength(traceA.length);
    expect(trace.filter((s) => s.id === '1000000000000002')).toHaveLength(2);
  });
});

describe.each(ENGINES)('the bound on what one read returns, on the $name', ({ url }) => {
  const database = uniqueDatabase('th_bounded');
  const maxResultBytes = 2_000_000;
  const now = Date.now();
  // About 3.4 MB of stored spans, written in five inserts: more than one part to read from.
  const big = generateSpans({ traces: 1, spansPerTrace: 5000, startMicros: (now - 2 * HOUR_MS) * 1000, seed: 7 });
  const small = generateSpans({ traces: 2, spansPerTrace: 5, startMicros: (now - HOUR_MS) * 1000, seed: 8 });
  const bigId = big[0]?.traceId ?? '';
  const smallIds = [...new Set(small.map((s) => s.traceId))];
  let store: ClickHouseStore;

  beforeAll(async () => {
    store = await ClickHouseStore.open({ url, database, maxResultBytes });
    for (let start = 0; start < big.length; start += 1000) await store.writer.write(big.slice(start, start + 1000));
    await store.writer.write(small);
  }, 60_000);
  afterAll(async () => {
    await store?.dropDatabase();
    await store?.close();
  });

  it('refuses a read larger than maxResultBytes with a too_large error, and serves the smaller ones around it', async () => {
    const refused = { name: 'StorageError', code: 'too_large', retryable: false };
    await expect(store.reader.getTrace(bigId)).rejects.toMatchObject({
      ...refused,
      message: 'the trace holds more than 2000000 bytes of spans, the most one read returns',
    });
    expect(await store.reader.getTrace(smallIds[0] ?? '')).toHaveLength(5);
    await expect(store.reader.getTraceMany([...smallIds, bigId])).rejects.toMatchObject({
      ...refused,
      message: 'the 3 traces hold more than 2000000 bytes of spans, the most one read returns',
    });
    expect((await store.reader.getTraceMany(smallIds)).flat()).toHaveLength(10);
    // Newest first: the two small traces fit, the search reaching the big one does not.
    const window = { endTs: now, lookback: 3 * HOUR_MS };
    expect(await store.reader.getTraces({ ...window, limit: 2 })).toHaveLength(2);
    await expect(store.reader.getTraces({ ...window, limit: 10 })).rejects.toMatchObject(refused);
    // Nothing of the refused reads leaks into the next one.
    expect(sortSpans((await store.reader.getTraceMany(smallIds)).flat())).toEqual(sortSpans(small));
  });

  it('reads the same trace whole under the default bound', async () => {
    const unbounded = await ClickHouseStore.open({ url, database });
    try {
      expect(await unbounded.reader.getTrace(bigId)).toHaveLength(big.length);
    } finally {
      await unbounded.close();
    }
  });
});

describe.each(ENGINES)('trace id lengths on the $name', ({ url }) => {
  const database = uniqueDatabase('th_ids');
  let strict: ClickHouseStore;
  let lenient: ClickHouseStore;
  const high = '463ac35c9f6413ad';
  const low = '48485a3953bb6124';
  const now = Date.now();

  beforeAll(async () => {
    strict = await ClickHouseStore.open({ url, database });
    lenient = await ClickHouseStore.open({ url, database, strictTraceId: false });
    const t = (now - HOUR_MS) * 1000;
    await strict.writer.write([
      { traceId: high + low, id: 'a000000000000001', name: 'long', timestamp: t, localEndpoint: { serviceName: 's' } },
      // The same low 64 bits reported by an old 64-bit tracer.
      { traceId: low, id: 'a000000000000002', name: 'short', timestamp: t + 1, localEndpoint: { serviceName: 's' } },
      { traceId: 'c0ffee00c0ffee00', id: 'a000000000000003', timestamp: t + 2, localEndpoint: { serviceName: 's' } },
    ]);
  });
  afterAll(async () => {
    await strict?.dropDatabase();
    await lenient?.close();
    await strict?.close();
  });

  it('strictTraceId (default): each id finds only its own trace', async () => {
    expect((await strict.reader.getTrace(high + low)).map((s) => s.name)).toEqual(['long']);
    expect((await strict.reader.getTrace(low)).map((s) => s.name)).toEqual(['short']);
  });

  it('a 32-character id with zero high bits is the 16-character id', async () => {
    expect(await strict.reader.getTrace(`0000000000000000c0ffee00c0ffee00`)).toHaveLength(1);
    expect(await strict.reader.getTrace('C0FFEE00C0FFEE00')).toHaveLength(1);
  });

  it('a 17-character id with zero high bits is found by the id its span carries and by the id as sent', async () => {
    // As the collector stores it: decoded (normalised) from a message body.
    const t = (now - HOUR_MS) * 1000 + 3;
    const decoded = decodeSpans(Buffer.from(JSON.stringify([{ traceId: '0463ac35c9f6413ad', id: 'a000000000000004', name: 'odd', timestamp: t }])));
    if (!decoded.ok) throw new Error(decoded.message);
    const [span] = decoded.spans;
    await strict.writer.write(decoded.spans);
    const stored = await strict.reader.getTrace(span?.traceId ?? '');
    expect(stored).toEqual([span]);
    expect(await strict.reader.getTrace(stored[0]?.traceId ?? '')).toEqual([span]);
    expect(await strict.reader.getTrace('0463ac35c9f6413ad')).toEqual([span]);
    expect(await strict.reader.getTrace('0000000000000000463ac35c9f6413ad')).toEqual([span]);
  });

  it('strictTraceId false: ids match on the low 64 bits, one trace for both', async () => {
    expect((await lenient.reader.getTrace(low)).map((s) => s.name).sort()).toEqual(['long', 'short']);
    expect((await lenient.reader.getTrace(high + low)).map((s) => s.name).sort()).toEqual(['long', 'short']);
    expect(await lenient.reader.getTraceMany([low, high + low])).toHaveLength(1);
  });

  it('strictTraceId false: a search finds the spans of both widths as one trace', async () => {
    const found = await lenient.reader.getTraces({ serviceName: 's', endTs: now, lookback: 2 * HOUR_MS, limit: 10 });
    const withLow = found.filter((trace) => trace.some((span) => span.traceId.endsWith(low)));
    expect(withLow.map((trace) => trace.map((span) => span.name).sort())).toEqual([['long', 'short']]);
    // The strict search keeps them apart, as getTrace does.
    const apart = await strict.reader.getTraces({ serviceName: 's', endTs: now, lookback: 2 * HOUR_MS, limit: 10 });
    expect(apart.filter((trace) => trace.some((span) => span.traceId.endsWith(low)))).toHaveLength(2);
  });

  it('strictTraceId false: a search finds a 128-bit trace whose low 64 bits are zero', async () => {
    const zeroLow = '0000000000000001' + '0000000000000000';
    await strict.writer.write([{ traceId: zeroLow, id: 'c000000000000001', name: 'zero-low', timestamp: (now - HOUR_MS) * 1000 + 20, localEndpoint: { serviceName: 'zl' } }]);
    const found = await lenient.reader.getTraces({ serviceName: 'zl', endTs: now, lookback: 2 * HOUR_MS, limit: 10 });
    expect(found.map((trace) => trace.map((span) => span.traceId))).toEqual([[zeroLow]]);
  });

  it('dependency links join a client span under a 128-bit id to its server span under the 64-bit one, counted once', async () => {
    // As Zipkin links them: by the low 64 bits, or one trace would count as two.
    const t = (now - HOUR_MS) * 1000 + 10;
    const traceLow = 'd0d0d0d0d0d0d0d0';
    await strict.writer.write([
      { traceId: high + traceLow, id: 'b000000000000001', name: 'root', timestamp: t, duration: 10, localEndpoint: { serviceName: 'web' } },
      { traceId: high + traceLow, id: 'b000000000000002', parentId: 'b000000000000001', kind: 'CLIENT', name: 'call', timestamp: t + 1, duration: 5, localEndpoint: { serviceName: 'web' } },
      { traceId: traceLow, id: 'b000000000000003', parentId: 'b000000000000002', kind: 'SERVER', name: 'call', timestamp: t + 2, duration: 3, localEndpoint: { serviceName: 'db-api' } },
    ]);
    for (const store of [strict, lenient]) {
      const links = await store.reader.getDependencies({ endTs: now, lookback: 2 * HOUR_MS });
      expect(links.filter((link) => link.child === 'db-api')).toEqual([{ parent: 'web', child: 'db-api', callCount: 1 }]);
    }
  });
});

describe.each(ENGINES)('retention on the $name', ({ url }) => {
  const database = uniqueDatabase('th_retention');
  let store: ClickHouseStore;

  beforeAll(async () => {
    store = await ClickHouseStore.open({ url, database, retentionDays: 7 });
  });
  afterAll(async () => {
    await store?.dropDatabase();
    await store?.close();
  });

  it('drops whole day partitions older than the retention, in every table', async () => {
    const now = Date.now();
    const old = generateSpans({ traces: 5, spansPerTrace: 3, startMicros: (now - 3 * DAY_MS) * 1000, seed: 1 });
    const fresh = generateSpans({ traces: 5, spansPerTrace: 3, startMicros: (now - HOUR_MS) * 1000, seed: 2 });
    await store.writer.write([...old, ...fresh]);
    expect(await store.reader.getTrace(old[0]!.traceId)).toHaveLength(3);

    // Nothing is old enough yet.
    expect((await store.enforceRetention(new Date(now))).dropped).toEqual([]);

    // Six days later, the spans written "3 days ago" are 9 days old.
    const result = await store.enforceRetention(new Date(now + 6 * DAY_MS));
    const oldDay = String(Math.floor(((now - 3 * DAY_MS) * 1000) / 86_400_000_000));
    expect(result.dropped.filter((d) => d.partition === oldDay).map((d) => d.table).sort()).toEqual([
      'span_index',
      'span_names',
      'spans',
      'tag_values',
      'trace_index',
    ]);
    expect(await store.reader.getTrace(old[0]!.traceId)).toEqual([]);
    expect(await store.reader.getTrace(fresh[0]!.traceId)).toHaveLength(3);
    expect((await store.countSpans()).distinct).toBe(fresh.length);
    const found = await store.reader.getTraces({ endTs: now, lookback: 5 * DAY_MS, limit: 100 });
    expect(found).toHaveLength(5);
  });

  it('keeps a trace readable when its first spans fall in a dropped day and the rest in a kept one', async () => {
    // One insert: a server span just before midnight, its client span just after (two days ago).
    const midnightMs = Math.floor(Date.now() / DAY_MS) * DAY_MS - 2 * DAY_MS;
    const traceId = 'a1b2c3d4e5f60718a1b2c3d4e5f60718';
    const server: Span = {
      traceId,
      id: '0000000000000001',
      kind: 'SERVER',
      name: 'get /',
      timestamp: (midnightMs - 100) * 1000,
      duration: 300_000,
      localEndpoint: { serviceName: 'front' },
    };
    const client: Span = { ...server, id: '0000000000000002', parentId: '0000000000000001', kind: 'CLIENT', timestamp: (midnightMs + 100) * 1000, duration: 50_000 };
    await store.writer.write([server, client]);
    expect(await store.reader.getTrace(traceId)).toHaveLength(2);

    // Seven days after the day before midnight: that day goes, the day after midnight stays.
    const result = await store.enforceRetention(new Date(midnightMs + 7 * DAY_MS + 12 * HOUR_MS));
    const dayBefore = String(midnightMs / DAY_MS - 1);
    expect(result.dropped.filter((d) => d.partition === dayBefore).map((d) => d.table)).toContain('spans');
    expect(await store.reader.getTrace(traceId)).toEqual([client]);
    const window = { endTs: midnightMs + HOUR_MS, lookback: 2 * HOUR_MS, limit: 10 };
    expect(await store.reader.getTraces({ ...window, serviceName: 'front' })).toEqual([[client]]);

    // Once the kept day is old enough too, the trace's index (filed under the day before) goes with it.
    const later = await store.enforceRetention(new Date(midnightMs + 8 * DAY_MS + 12 * HOUR_MS));
    expect(later.dropped.filter((d) => d.table === 'trace_index').map((d) => d.partition)).toEqual([dayBefore]);
    expect(await store.reader.getTrace(traceId)).toEqual([]);
  });
});

describe('retention under an operator\'s TTL on the embedded current engine', () => {
  const url = 'chdb:';
  const database = uniqueDatabase('th_operator_ttl');
  const warnings: Array<{ obj: object; msg: string | undefined }> = [];
  const logger: Logger = {
    ...silentLogger,
    warn: (obj, msg) => warnings.push({ obj, msg }),
    child: () => logger,
  };
  let owner: ClickHouseStore;
  let reader: ClickHouseStore;

  beforeAll(async () => {
    owner = await ClickHouseStore.open({ url, database, retentionDays: 7 });
    reader = await ClickHouseStore.open({ url, database, logger });
  });
  afterAll(async () => {
    await reader?.close();
    await owner?.dropDatabase();
    await owner?.close();
  });

  it('drops nothing when a table\'s TTL is in months or removed, and warns; follows a day TTL again once restored', async () => {
    expect(reader.features.ttl).toBe(true);
    const now = Date.now();
    const old = generateSpans({ traces: 3, spansPerTrace: 3, startMicros: (now - 3 * DAY_MS) * 1000, seed: 21 });
    await owner.writer.write(old);
    // Six days later the spans are 9 days old: past the 7-day TTL of the other tables.
    const later = new Date(now + 6 * DAY_MS);

    await alter(database, 'spans', 'MODIFY TTL toDateTime(intDiv(ts, 1000000)) + toIntervalMonth(3) SETTINGS materialize_ttl_after_modify = 0');
    expect(await reader.enforceRetention(later)).toEqual({ retentionDays: undefined, dropped: [] });
    expect(warnings.at(-1)?.obj).toMatchObject({ tables: ['spans'] });

    await alter(database, 'span_index', 'REMOVE TTL');
    expect(await reader.enforceRetention(later)).toEqual({ retentionDays: undefined, dropped: [] });
    expect(warnings.at(-1)?.obj).toMatchObject({ tables: ['spans', 'span_index'] });
    expect(await reader.reader.getTrace(old[0]!.traceId)).toHaveLength(3);
    expect((await reader.countSpans()).distinct).toBe(old.length);

    // The owner's next start sets its day TTL again; retention applies again.
    await (await ClickHouseStore.open({ url, database, retentionDays: 7 })).close();
    const warned = warnings.length;
    const result = await reader.enforceRetention(later);
    expect(result.retentionDays).toBe(7);
    expect(new Set(result.dropped.map((d) => d.table)).size).toBe(5);
    expect(warnings).toHaveLength(warned);
    expect(await reader.reader.getTrace(old[0]!.traceId)).toEqual([]);
  });
});

/** Runs `ALTER TABLE database.table <change>` with an engine of its own, as an operator would. */
async function alter(database: string, table: string, change: string): Promise<void> {
  const engine = await ChdbEngine.open({ queryTimeoutMs: 30_000 });
  try {
    await engine.execute({ sql: `ALTER TABLE ${database}.${table} ${change}`, params: {} });
  } finally {
    await engine.close();
  }
}

describe.each(ENGINES)('migrations on the $name', ({ url }) => {
  const database = uniqueDatabase('th_migrate');

  afterAll(async () => {
    const store = await ClickHouseStore.open({ url, database });
    await store.dropDatabase();
    await store.close();
  });

  it('lets several processes start at once, then again, on the same database', async () => {
    const stores = await Promise.all([1, 2, 3, 4].map(() => ClickHouseStore.open({ url, database })));
    const spans = generateSpans({ traces: 2, spansPerTrace: 2, seed: 9 });
    await stores[0]!.writer.write(spans);
    for (const store of stores) expect(await store.reader.getTrace(spans[0]!.traceId)).toHaveLength(2);
    // Keep one open: the chdb: temporary directory lives as long as a store uses it.
    await Promise.all(stores.slice(1).map((s) => s.close()));

    const again = await ClickHouseStore.open({ url, database });
    expect(await again.reader.getTrace(spans[0]!.traceId)).toHaveLength(2);
    expect(await again.schemaVersion()).toBe(1);
    await again.close();
    await stores[0]!.close();
  });

  it('changes the TTL to a new retention on servers with TTL', async () => {
    const store = await ClickHouseStore.open({ url, database, retentionDays: 9 });
    try {
      const rows = await tableDefinitions(url, database);
      expect(rows).toHaveLength(5);
      for (const row of rows) {
        if (store.features.ttl) expect(row.engine_full, row.name).toMatch(/toIntervalDay\(9\)/);
        else expect(row.engine_full, row.name).not.toMatch(/TTL/);
      }
    } finally {
      await store.close();
    }
  });

  it('keeps the TTL when a store opens without retentionDays, as the query API does', async () => {
    const collector = await ClickHouseStore.open({ url, database, retentionDays: 30 });
    const queryApi = await ClickHouseStore.open({ url, database });
    try {
      const rows = await tableDefinitions(url, database);
      expect(rows).toHaveLength(5);
      for (const row of rows) {
        if (queryApi.features.ttl) expect(row.engine_full, row.name).toMatch(/toIntervalDay\(30\)/);
        else expect(row.engine_full, row.name).not.toMatch(/TTL/);
      }
      expect(queryApi.retentionDays).toBeUndefined();

      // Without its own retention, enforceRetention follows the tables' TTL
      // (7 days on servers without TTL): 20-day-old spans stay under a 30-day TTL.
      const old = generateSpans({ traces: 2, spansPerTrace: 2, startMicros: (Date.now() - 20 * DAY_MS) * 1000, seed: 11 });
      await collector.writer.write(old);
      const result = await queryApi.enforceRetention();
      expect(result.retentionDays).toBe(queryApi.features.ttl ? 30 : 7);
      expect(await queryApi.reader.getTrace(old[0]!.traceId)).toHaveLength(queryApi.features.ttl ? 2 : 0);
    } finally {
      await queryApi.close();
      await collector.close();
    }
  });
});

/** name and engine_full of the data tables, read with an engine of its own. */
async function tableDefinitions(url: string, database: string): Promise<Array<{ name: string; engine_full: string }>> {
  const engine = url.startsWith('chdb:') ? await ChdbEngine.open({ queryTimeoutMs: 30_000 }) : new HttpEngine({ url, queryTimeoutMs: 30_000 });
  try {
    return await engine.query<{ name: string; engine_full: string }>({
      sql: `SELECT name, engine_full FROM system.tables WHERE database = '${database}' AND name IN ('spans', 'span_index', 'trace_index', 'span_names', 'tag_values')`,
      params: {},
    });
  } finally {
    await engine.close();
  }
}

describe.each(ENGINES)('a closed store on the $name', ({ url }) => {
  it('refuses work with a retryable "closed" error and answers ping with false', async () => {
    const database = uniqueDatabase('th_closed');
    const store = await ClickHouseStore.open({ url, database });
    // Another store keeps a chdb: directory alive to drop the database after.
    const keeper = await ClickHouseStore.open({ url, database });
    await store.close();
    await store.close(); // idempotent
    expect(await store.ping()).toBe(false);
    await expect(store.writer.write(generateSpans({ traces: 1, spansPerTrace: 1 }))).rejects.toMatchObject({
      code: 'closed',
      retryable: true,
    });
    await expect(store.reader.getServiceNames()).rejects.toMatchObject({ code: 'closed' });
    await keeper.dropDatabase();
    await keeper.close();
  });
});

describe('an INSERT slower than the query timeout, on the ClickHouse server', () => {
  const database = uniqueDatabase('th_slow_insert');
  let store: ClickHouseStore;

  beforeAll(async () => {
    // Reads must answer within 150 ms; 50 000 spans take the server longer than that to store.
    store = await ClickHouseStore.open({ url: ENGINES[0].url, database, queryTimeoutMs: 150 });
  });
  afterAll(async () => {
    await store?.dropDatabase();
    await store?.close();
  });

  it('is waited for, not given up on while the server goes on storing it (then stored again by a retry)', async () => {
    const spans = generateSpans({ traces: 5000, spansPerTrace: 10, startMicros: (Date.now() - HOUR_MS) * 1000, seed: 11 });
    const started = Date.now();
    await store.writer.write(spans);
    // Not a speed check: the write must have outlasted the query timeout for the test to mean anything.
    expect(Date.now() - started).toBeGreaterThan(150);
    // Counted through a store with the default timeout: on a loaded machine the count itself can take over 150 ms.
    const counter = await ClickHouseStore.open({ url: ENGINES[0].url, database });
    try {
      expect(await counter.countSpans()).toEqual({ rows: spans.length, distinct: spans.length });
    } finally {
      await counter.close();
    }
  });
});

describe('opening a store', () => {
  it('fails with a retryable connection error when the server is unreachable', async () => {
    const error: unknown = await ClickHouseStore.open({ url: 'http://127.0.0.1:1', database: 'x' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ code: 'connection', retryable: true });
  });

  it('refuses a database name that is not an identifier', async () => {
    await expect(ClickHouseStore.open({ url: ENGINES[0].url, database: 'x; DROP TABLE y' })).rejects.toMatchObject({
      code: 'bad_input',
    });
  });

  it('refuses a URL it cannot use', async () => {
    await expect(ClickHouseStore.open({ url: 'ftp://example', database: 'x' })).rejects.toMatchObject({
      code: 'bad_input',
    });
  });
});

describe.each(ENGINES)('searching a long window on the $name', ({ url }) => {
  const database = uniqueDatabase('th_window');
  let store: ClickHouseStore;
  const now = Date.now();
  // One trace 10 minutes old, one 3 hours old, one 20 hours old, one 3 days old.
  const ages = [10 * 60_000, 3 * HOUR_MS, 20 * HOUR_MS, 3 * DAY_MS];
  const traces = ages.map((age, i) =>
    generateSpans({ traces: 1, spansPerTrace: 3, startMicros: (now - age) * 1000, seed: 100 + i, services: ['solo'] }),
  );
  const idOf = (i: number): string => traces[i]![0]!.traceId;

  beforeAll(async () => {
    store = await ClickHouseStore.open({ url, database });
    await store.writer.write(traces.flat());
  });
  afterAll(async () => {
    await store?.dropDatabase();
    await store?.close();
  });

  it('finds traces newest first across the whole window, however far back', async () => {
    const search = (limit: number, lookback = 7 * DAY_MS) =>
      store.reader
        .getTraces({ serviceName: 'solo', endTs: now, lookback, limit })
        .then((found) => found.map((t) => t[0]?.traceId));
    expect(await search(1)).toEqual([idOf(0)]);
    expect(await search(2)).toEqual([idOf(0), idOf(1)]);
    expect(await search(3)).toEqual([idOf(0), idOf(1), idOf(2)]);
    expect(await search(10)).toEqual([idOf(0), idOf(1), idOf(2), idOf(3)]);
    expect(await search(10, DAY_MS)).toEqual([idOf(0), idOf(1), idOf(2)]);
    const tagged = await store.reader.getTraces({
      endTs: now,
      lookback: 7 * DAY_MS,
      limit: 10,
      annotationQuery: [{ key: 'net.host.name', value: 'solo.internal' }],
    });
    expect(tagged.map((t) => t[0]?.traceId)).toEqual([idOf(0), idOf(1), idOf(2), idOf(3)]);
  });
});

describe.each(ENGINES)('dependencies over a window larger than one query may hold in memory, on the $name', ({ url }) => {
  const database = uniqueDatabase('th_deps_memory');
  // 300 000 span rows: holding them all in one query needs more memory than this (checked below).
  const memoryLimit = 30_000_000;
  const now = Date.now();
  const window = { endTs: now, lookback: 2 * HOUR_MS };
  let store: ClickHouseStore;

  /** An engine whose queries run under `memoryLimit`; `release` lifts the limit and closes it. */
  async function underLimit(): Promise<{ engine: Engine; release: () => Promise<void> }> {
    if (url.startsWith('chdb:')) {
      // Every chdb: engine of the process shares one session: the SET applies to all of them until lifted.
      const engine = await ChdbEngine.open({ queryTimeoutMs: 60_000 });
      await engine.execute({ sql: `SET max_memory_usage = ${memoryLimit}`, params: {} });
      const release = async (): Promise<void> => {
        await engine.execute({ sql: 'SET max_memory_usage = 0', params: {} });
        await engine.close();
      };
      return { engine, release };
    }
    const parsed = new URL(url);
    parsed.searchParams.set('ch_max_memory_usage', String(memoryLimit));
    const engine = new HttpEngine({ url: parsed.toString(), queryTimeoutMs: 60_000 });
    return { engine, release: () => engine.close() };
  }

  /** The reader a store builds, on `engine`. */
  const readerOn = (engine: Engine, queryTimeoutMs: number): ClickHouseTraceReader =>
    new ClickHouseTraceReader({
      engine,
      database,
      bindMode: store.features.serverParams ? 'server' : 'literal',
      strictTraceId: true,
      autocompleteKeys: undefined,
      queryTimeoutMs,
      maxResultBytes: DEFAULT_MAX_RESULT_BYTES,
      logger: silentLogger,
    });

  beforeAll(async () => {
    store = await ClickHouseStore.open({ url, database });
    for (let seed = 1; seed <= 10; seed++) {
      await store.writer.write(generateSpans({ traces: 3000, spansPerTrace: 10, startMicros: (now - HOUR_MS) * 1000, seed }));
    }
  }, 120_000);
  afterAll(async () => {
    await store?.dropDatabase();
    await store?.close();
  });

  it('links every trace of the window under a per-query memory limit the whole window outgrows', async () => {
    const expected = await store.reader.getDependencies(window);
    expect(expected.reduce((calls, link) => calls + link.callCount, 0)).toBeGreaterThan(150_000);

    const { engine, release } = await underLimit();
    try {
      const [setting] = await engine.query<{ value: string }>({
        sql: `SELECT value FROM system.settings WHERE name = 'max_memory_usage'`,
        params: {},
      });
      expect(Number(setting?.value)).toBe(memoryLimit);
      // The limit binds: the window's rows at once (as one pass reads them) fail under it.
      const oneQuery = {
        sql: `SELECT DISTINCT trace_id, span_id, parent_id, kind, service, remote_service, error
FROM ${database}.span_index ORDER BY trace_id`,
        params: {},
      };
      await expect(engine.queryEach(oneQuery, () => undefined)).rejects.toMatchObject({ code: 'overloaded' });

      expect(await readerOn(engine, 60_000).getDependencies(window)).toEqual(expected);
    } finally {
      await release();
    }
  }, 120_000);

  it('starts no pass once the query timeout has passed for the read as a whole', async () => {
    const { engine, release } = await underLimit();
    try {
      // 20 passes under the limit, each well within the engine's own 60 s timeout; all of them take longer than 50 ms.
      const failure = await readerOn(engine, 50).getDependencies(window).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(failure).toBeInstanceOf(StorageError);
      expect(failure).toMatchObject({ code: 'timeout' });
      expect((failure as StorageError).message).toMatch(/^dependency links: \d+ of 20 passes over the window done in 50 ms$/);
    } finally {
      await release();
    }
  }, 60_000);
});

describe('a ClickHouse server that stops answering', () => {
  const target = new URL(ENGINES[0].url);
  let forwarder: Server;
  let port = 0;
  /** While true, the forwarder takes connections and bytes but passes nothing on: a server hung mid-work. */
  let hung = false;
  const sockets = new Set<Socket>();

  beforeAll(async () => {
    forwarder = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
      if (hung) return; // accepted, never answered
      const upstream = connect(Number(target.port || 8123), target.hostname);
      upstream.on('error', () => socket.destroy());
      socket.pipe(upstream).pipe(socket);
    });
    await new Promise<void>((resolve) => forwarder.listen(0, '127.0.0.1', resolve));
    port = (forwarder.address() as AddressInfo).port;
  });

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => forwarder.close(resolve));
  });

  it('answers ping with false within seconds, not after the query timeout', async () => {
    // The default query timeout (30 s) applies; a health check must not wait that long.
    const store = await ClickHouseStore.open({ url: `http://127.0.0.1:${port}`, database: uniqueDatabase('ping_hang') });
    try {
      expect(await store.ping()).toBe(true);
      hung = true;
      // Its kept-alive connections drop; the next request opens one that is never answered.
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => setTimeout(resolve, 200));
      const started = Date.now();
      expect(await store.ping()).toBe(false);
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      hung = false;
      await store.dropDatabase().catch(() => undefined);
      await store.close();
    }
  }, 40_000);
});
