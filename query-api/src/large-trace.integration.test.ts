// A trace of tens of thousands of spans, read from the ClickHouse server: the answer is the
// same JSON as for a small trace, and reading and writing it gives the event loop back between
// slices, so that the API keeps answering other requests meanwhile (one block of seconds before).
import { randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import type { Span } from '@tracehouse/model';
import { ClickHouseStore } from '@tracehouse/storage';
import { generateSpans, openWrappedReader, SlowEngine } from '@tracehouse/storage/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, type QueryApp } from './app.js';
import { STREAM_MIN_SPANS } from './json-stream.js';
import { mergeTrace } from './trace-merge.js';

const url = process.env['TRACEHOUSE_CLICKHOUSE_URL'] ?? 'http://127.0.0.1:8123';
const DAY_MS = 86_400_000;
const HUGE_SPANS = 50_000;

describe('a trace of tens of thousands of spans, on the ClickHouse server', () => {
  const database = `qa_large_${randomBytes(5).toString('hex')}`;
  const nowMs = Date.now();
  let store: ClickHouseStore;
  let app: QueryApp;
  let engine: SlowEngine | undefined;
  let closeReader: () => Promise<void> = () => Promise.resolve();
  let huge: Span[];
  let small: Span[];

  beforeAll(async () => {
    store = await ClickHouseStore.open({ url, database, retentionDays: 30 });
    const startMicros = (nowMs - 3_600_000) * 1000;
    [huge, small] = [HUGE_SPANS, 20].map((spansPerTrace, seed) => generateSpans({ traces: 1, spansPerTrace, startMicros, seed: seed + 1 })) as [Span[], Span[]];
    for (let i = 0; i < huge.length; i += 10_000) await store.writer.write(huge.slice(i, i + 10_000));
    await store.writer.write(small);
    const wrapped = await openWrappedReader({ url, database, queryTimeoutMs: 60_000, wrap: (real) => (engine = new SlowEngine(real, 0)) });
    closeReader = wrapped.close;
    app = await buildApp({
      reader: wrapped.reader,
      config: {
        defaultLimit: 10,
        maxLimit: 100,
        defaultLookbackMs: DAY_MS,
        maxLookbackMs: 7 * DAY_MS,
        queryTimeoutMs: 60_000,
        corsOrigins: '*',
        bearerToken: undefined,
      },
      now: () => nowMs,
      logger: pino({ level: 'warn' }),
    });
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    await closeReader();
    await store?.dropDatabase();
    await store?.close();
  });

  /** The merged trace as the reader returns it: what the answer must hold, whichever way it is written. */
  async function expected(traceId: string): Promise<Span[]> {
    return mergeTrace(await store.reader.getTrace(traceId));
  }

  it('answers /trace/{id} with every span, the same JSON as the schema would write, and gives the event loop turns', async () => {
    const traceId = huge[0]!.traceId;
    const ticks: number[] = [];
    const ticker = setInterval(() => ticks.push(Date.now()), 1);
    const answeredBefore = engine!.answered.length;
    const response = await app.inject({ url: `/api/v2/trace/${traceId}` });
    const done = Date.now();
    clearInterval(ticker);
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
    const body = response.json<Span[]>();
    expect(body).toHaveLength(HUGE_SPANS);
    expect(body).toEqual(await expected(traceId));

    // From the moment ClickHouse's answer reached the reader until the response ended, timers
    // kept running: the splitting, parsing and writing of 20 MB of spans came in slices.
    const spansRead = engine!.answered.at(-1)!;
    expect(engine!.answered.length).toBeGreaterThan(answeredBefore);
    expect(ticks.filter((tick) => tick > spansRead && tick <= done).length).toBeGreaterThanOrEqual(5);
  });

  it('compresses the streamed answer for a client that accepts gzip', async () => {
    const traceId = huge[0]!.traceId;
    const response = await app.inject({ url: `/api/v2/trace/${traceId}`, headers: { 'accept-encoding': 'gzip' } });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-encoding']).toBe('gzip');
    expect(JSON.parse(gunzipSync(response.rawPayload).toString('utf8'))).toEqual(await expected(traceId));
  });

  it('answers /traceMany and /traces holding the large trace with the same JSON as for small ones', async () => {
    const [hugeId, smallId] = [huge[0]!.traceId, small[0]!.traceId];
    const many = await app.inject({ url: `/api/v2/traceMany?traceIds=${hugeId},${smallId}` });
    expect(many.statusCode).toBe(200);
    const traces = many.json<Span[][]>();
    expect(traces.map((trace) => trace.length).sort((a, b) => a - b)).toEqual([small.length, HUGE_SPANS]);
    for (const trace of traces) expect(trace).toEqual(await expected(trace[0]!.traceId));

    const service = huge[0]!.localEndpoint!.serviceName!;
    const search = await app.inject({ url: `/api/v2/traces?serviceName=${service}&limit=100` });
    expect(search.statusCode).toBe(200);
    const found = search.json<Span[][]>().find((trace) => trace[0]!.traceId === hugeId);
    expect(found).toEqual(await expected(hugeId));
  });

  it('keeps the schema serializer below the streaming threshold', async () => {
    expect(small.length).toBeLessThan(STREAM_MIN_SPANS);
    const response = await app.inject({ url: `/api/v2/trace/${small[0]!.traceId}` });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-length']).toBe(String(response.rawPayload.length));
    expect(response.json()).toEqual(await expected(small[0]!.traceId));
  });
});
