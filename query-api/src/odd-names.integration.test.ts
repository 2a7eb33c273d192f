// Names the API lists must be names it can search: spans may carry long or
// multi-line names (a SQL statement as a span name), and the Zipkin UI sends
// whatever /services, /spans and /autocompleteValues listed straight back.
import { randomBytes } from 'node:crypto';
import type { Span } from '@tracehouse/model';
import { ClickHouseStore } from '@tracehouse/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, type QueryApp } from './app.js';

const ENGINES = [
  { name: 'the ClickHouse server', url: process.env['TRACEHOUSE_CLICKHOUSE_URL'] ?? 'http://127.0.0.1:8123' },
  { name: 'the embedded engine (chdb)', url: 'chdb:' },
];

const SERVICE = 'reports\tbatch';
const LONG_NAME = `select ${'column_name, '.repeat(40)}x from t`; // 500 characters
const MULTI_LINE_NAME = 'select *\nfrom orders\nwhere id = ?';
const TAG_VALUE = 'line one\nline two';

describe.each(ENGINES)('odd names on $name', ({ url }) => {
  const nowMs = Date.now();
  let store: ClickHouseStore;
  let app: QueryApp;
  const traceIds = [randomBytes(8).toString('hex'), randomBytes(8).toString('hex')];

  beforeAll(async () => {
    store = await ClickHouseStore.open({ url, database: `qa_names_${randomBytes(5).toString('hex')}`, retentionDays: 30 });
    const spans: Span[] = [LONG_NAME, MULTI_LINE_NAME].map((name, i) => ({
      traceId: traceIds[i] as string,
      id: randomBytes(8).toString('hex'),
      name,
      timestamp: (nowMs - 60_000) * 1000,
      duration: 1000,
      localEndpoint: { serviceName: SERVICE },
      tags: { 'db.statement': i === 1 ? TAG_VALUE : 'short' },
    }));
    await store.writer.write(spans);
    app = await buildApp({
      reader: store.reader,
      config: {
        defaultLimit: 10,
        maxLimit: 100,
        defaultLookbackMs: 86_400_000,
        maxLookbackMs: 7 * 86_400_000,
        queryTimeoutMs: 30_000,
        corsOrigins: '*',
        bearerToken: undefined,
      },
      now: () => nowMs,
    });
  });

  afterAll(async () => {
    await app?.close();
    await store?.dropDatabase();
    await store?.close();
  });

  async function ok<T>(path: string): Promise<T> {
    const response = await app.inject({ method: 'GET', url: path });
    expect(response.statusCode, `${path} → ${response.body}`).toBe(200);
    return response.json<T>();
  }
  const q = encodeURIComponent;

  it('searches by every service and span name it lists', async () => {
    const services = await ok<string[]>('/api/v2/services');
    expect(services).toEqual([SERVICE]);
    const names = await ok<string[]>(`/api/v2/spans?serviceName=${q(SERVICE)}`);
    expect(names.sort()).toEqual([LONG_NAME, MULTI_LINE_NAME].sort());
    for (const [i, name] of [LONG_NAME, MULTI_LINE_NAME].entries()) {
      const traces = await ok<Span[][]>(`/api/v2/traces?serviceName=${q(SERVICE)}&spanName=${q(name)}`);
      expect(traces.map((trace) => trace[0]?.traceId)).toEqual([traceIds[i]]);
    }
  });

  it('searches by a multi-line tag value it lists', async () => {
    const values = await ok<string[]>('/api/v2/autocompleteValues?key=db.statement');
    expect(values).toContain(TAG_VALUE);
    const traces = await ok<Span[][]>(`/api/v2/traces?annotationQuery=${q(`db.statement=${TAG_VALUE}`)}`);
    expect(traces.map((trace) => trace[0]?.traceId)).toEqual([traceIds[1]]);
  });
});
