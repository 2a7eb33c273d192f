// The API tests, run against one storage engine: every endpoint and parameter
// through buildApp().inject() over a real ClickHouseStore seeded with a small
// known data set in a database of its own. Every 200 body is validated against
// shared/reference/zipkin2-api.yaml. api.integration.test.ts runs it on the
// ClickHouse server, api-chdb.integration.test.ts on the embedded engine.
import { randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import type { Span } from '@tracehouse/model';
import { ClickHouseStore } from '@tracehouse/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, type AppConfig, type QueryApp } from './app.js';
import { MAX_END_TS_MS } from './params.js';
import { ZipkinSpec } from './zipkin-spec.test.helpers.js';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

export const TRACE_A = '4e441824ec2b6a44ffdc9bb9a6453df3';
export const TRACE_B = '00000000000000b1'.replace(/^0+/, '').padStart(16, 'a'); // 16 hex, no zero prefix
export const TRACE_C = 'c0ffee00c0ffee01';
export const TRACE_D = 'd00d00d00d00d001';
export const TRACE_E = 'e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5';
const EVIL_SERVICE = "evil'svc";
const EVIL_SPAN = "drop' table";
const EVIL_KEY = "k'ey";
const EVIL_VALUE = "v'al\\";

/** The seed: five traces at known offsets from `nowMs`. */
export function seedSpans(nowMs: number): Span[] {
  const at = (offsetMs: number, plusMicros = 0) => (nowMs - offsetMs) * 1000 + plusMicros;
  const frontend = { serviceName: 'frontend', ipv4: '10.0.0.1', port: 8080 };
  const backend = { serviceName: 'backend', ipv4: '10.0.0.2', port: 9000 };
  const a = at(HOUR_MS);
  const b = at(50 * MINUTE_MS);
  const c = at(3 * DAY_MS);
  return [
    // A: frontend → backend → mysql (uninstrumented), 128-bit id, server half flagged shared.
    { traceId: TRACE_A, id: 'a000000000000001', kind: 'SERVER', name: 'get /', timestamp: a, duration: 300_000, localEndpoint: frontend, tags: { 'http.method': 'GET', 'http.path': '/' } },
    { traceId: TRACE_A, parentId: 'a000000000000001', id: 'a000000000000002', kind: 'CLIENT', name: 'get /api', timestamp: a + 1000, duration: 200_000, localEndpoint: frontend, remoteEndpoint: { serviceName: 'backend' }, tags: { 'http.method': 'GET' } },
    { traceId: TRACE_A, parentId: 'a000000000000001', id: 'a000000000000002', kind: 'SERVER', name: 'get /api', timestamp: a + 2000, duration: 150_000, localEndpoint: backend, shared: true, annotations: [{ timestamp: a + 3000, value: 'wr' }], tags: { 'http.method': 'GET', 'http.path': '/api' } },
    { traceId: TRACE_A, parentId: 'a000000000000002', id: 'a000000000000004', kind: 'CLIENT', name: 'query', timestamp: a + 5000, duration: 100_000, localEndpoint: backend, remoteEndpoint: { serviceName: 'mysql', ipv4: '10.0.0.9', port: 3306 }, tags: { 'sql.table': 'items' } },
    // B: an erroring call whose server half lacks the shared flag and the parent id.
    { traceId: TRACE_B, id: 'b000000000000001', kind: 'SERVER', name: 'post /pay', timestamp: b, duration: 2_500_000, localEndpoint: frontend, annotations: [{ timestamp: b + 10, value: 'retried' }], tags: { 'http.method': 'POST', error: '500' } },
    { traceId: TRACE_B, parentId: 'b000000000000001', id: 'b000000000000002', kind: 'CLIENT', name: 'post /charge', timestamp: b + 100, duration: 2_000_000, localEndpoint: frontend, remoteEndpoint: { serviceName: 'backend' }, tags: { 'http.method': 'POST', error: 'timeout' } },
    { traceId: TRACE_B, id: 'b000000000000002', kind: 'SERVER', name: 'post /charge', timestamp: b + 200, duration: 1_900_000, localEndpoint: backend, tags: { 'http.method': 'POST' } },
    // C: messaging three days ago, outside the default one-day lookback.
    { traceId: TRACE_C, id: 'c000000000000001', kind: 'PRODUCER', name: 'publish', timestamp: c, duration: 1000, localEndpoint: { serviceName: 'batch' }, remoteEndpoint: { serviceName: 'rabbitmq' } },
    { traceId: TRACE_C, parentId: 'c000000000000001', id: 'c000000000000002', kind: 'CONSUMER', name: 'consume', timestamp: c + 5000, duration: 2000, localEndpoint: { serviceName: 'batch-worker' }, remoteEndpoint: { serviceName: 'rabbitmq' } },
    // D: a short health check three hours ago.
    { traceId: TRACE_D, id: 'd000000000000001', kind: 'SERVER', name: 'get /health', timestamp: at(3 * HOUR_MS), duration: 1000, localEndpoint: frontend, tags: { 'http.method': 'GET' } },
    // E: names full of quotes: stored and found exactly, never interpreted.
    { traceId: TRACE_E, id: 'e000000000000001', kind: 'SERVER', name: EVIL_SPAN, timestamp: at(40 * MINUTE_MS), duration: 5000, localEndpoint: { serviceName: EVIL_SERVICE }, tags: { [EVIL_KEY]: EVIL_VALUE } },
  ];
}

const config: AppConfig = {
  defaultLimit: 10,
  maxLimit: 100,
  defaultLookbackMs: DAY_MS,
  maxLookbackMs: 7 * DAY_MS,
  queryTimeoutMs: 30_000,
  corsOrigins: '*',
  bearerToken: undefined,
};

const SQL_INJECTIONS = [
  "' OR '1'='1",
  "frontend' OR 1=1 --",
  "x') OR ('a'='a",
  "\\' OR 1=1 --",
  "'; DROP TABLE spans; --",
  '" OR ""="',
  "%' OR ''='",
  "' UNION ALL SELECT name FROM system.tables --",
  '{service:String}',
  "frontend'||'",
  '\\',
  "x' AND sleep(3) = 0 --",
  'frontend\u0000',
];

export function defineApiSuite(engine: { name: string; url: string }): void {
  describe(`query API on ${engine.name}`, () => {
    const spec = new ZipkinSpec();
    const nowMs = Date.now();
    let store: ClickHouseStore;
    let app: QueryApp;

    beforeAll(async () => {
      store = await ClickHouseStore.open({
        url: engine.url,
        database: `qa_api_${randomBytes(5).toString('hex')}`,
        retentionDays: 30,
      });
      await store.writer.write(seedSpans(nowMs));
      app = await buildApp({ reader: store.reader, config, now: () => nowMs, ping: () => store.ping() });
    });

    afterAll(async () => {
      await app?.close();
      await store?.dropDatabase();
      await store?.close();
    });

    /** GET through the app; a 200 body must match the specification. */
    async function get<T = unknown>(url: string): Promise<{ status: number; body: T }> {
      const response = await app.inject({ method: 'GET', url });
      const body = response.json<T>();
      if (response.statusCode === 200) spec.assertResponse(ZipkinSpec.pathOf(url), 200, body);
      else {
        const error = body as { code?: unknown; message?: unknown };
        expect([typeof error.code, typeof error.message], url).toEqual(['string', 'string']);
      }
      return { status: response.statusCode, body };
    }
    async function ok<T = unknown>(url: string): Promise<T> {
      const { status, body } = await get<T>(url);
      expect(status, `${url} → ${JSON.stringify(body)}`).toBe(200);
      return body;
    }
    async function traceIds(url: string): Promise<string[]> {
      const traces = await ok<Span[][]>(url);
      return traces.map((trace) => trace[0]?.traceId ?? '?');
    }
    const q = encodeURIComponent;

    it('/health reports ClickHouse up', async () => {
      const response = await app.inject({ url: '/health' });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toEqual({ status: 'UP', clickhouse: 'UP' });
    });

    it('/services lists local service names, sorted', async () => {
      expect(await ok('/api/v2/services')).toEqual(['backend', 'batch', 'batch-worker', EVIL_SERVICE, 'frontend']);
    });

    it('/spans lists the span names of a service (case-insensitive service name)', async () => {
      expect(await ok('/api/v2/spans?serviceName=frontend')).toEqual(['get /', 'get /api', 'get /health', 'post /charge', 'post /pay']);
      expect(await ok('/api/v2/spans?serviceName=BACKEND')).toEqual(['get /api', 'post /charge', 'query']);
      expect(await ok(`/api/v2/spans?serviceName=${q(EVIL_SERVICE)}`)).toEqual([EVIL_SPAN]);
      expect(await ok('/api/v2/spans?serviceName=unknown')).toEqual([]);
      expect((await get('/api/v2/spans')).status).toBe(400);
    });

    it('/remoteServices lists the remote services a service calls', async () => {
      expect(await ok('/api/v2/remoteServices?serviceName=frontend')).toEqual(['backend']);
      expect(await ok('/api/v2/remoteServices?serviceName=backend')).toEqual(['mysql']);
      expect(await ok('/api/v2/remoteServices?serviceName=batch')).toEqual(['rabbitmq']);
      expect(await ok('/api/v2/remoteServices?serviceName=nobody')).toEqual([]);
      expect((await get('/api/v2/remoteServices?serviceName=')).status).toBe(400);
    });

    it('/traces defaults to the last day, newest first, limit 10', async () => {
      expect(await traceIds('/api/v2/traces')).toEqual([TRACE_E, TRACE_B, TRACE_A, TRACE_D]);
    });

    it('/traces returns whole traces, client and server halves merged as Zipkin does', async () => {
      const traces = await ok<Span[][]>('/api/v2/traces?serviceName=backend');
      expect(traces.map((trace) => trace[0]?.traceId)).toEqual([TRACE_B, TRACE_A]);
      const [b, a] = traces as [Span[], Span[]];
      expect(a).toHaveLength(4);
      expect(b.map((span) => [span.id, span.kind, span.parentId, span.shared])).toEqual([
        ['b000000000000001', 'SERVER', undefined, undefined],
        ['b000000000000002', 'CLIENT', 'b000000000000001', undefined],
        ['b000000000000002', 'SERVER', 'b000000000000001', true],
      ]);
    });

    it('/traces filters by serviceName, remoteServiceName and spanName', async () => {
      expect(await traceIds('/api/v2/traces?serviceName=Frontend')).toEqual([TRACE_B, TRACE_A, TRACE_D]);
      expect(await traceIds(`/api/v2/traces?serviceName=${q(EVIL_SERVICE)}`)).toEqual([TRACE_E]);
      expect(await traceIds('/api/v2/traces?serviceName=backend&remoteServiceName=mysql')).toEqual([TRACE_A]);
      expect(await traceIds('/api/v2/traces?remoteServiceName=backend')).toEqual([TRACE_B, TRACE_A]);
      expect(await traceIds(`/api/v2/traces?spanName=${q('POST /charge')}`)).toEqual([TRACE_B]);
      expect(await traceIds(`/api/v2/traces?serviceName=frontend&spanName=${q('get /health')}`)).toEqual([TRACE_D]);
      expect(await traceIds('/api/v2/traces?serviceName=frontend&spanName=all')).toEqual([TRACE_B, TRACE_A, TRACE_D]);
      expect(await traceIds('/api/v2/traces?serviceName=nobody')).toEqual([]);
    });

    it('/traces filters by annotationQuery: bare words match annotations and tag keys, key=value matches tags', async () => {
      expect(await traceIds('/api/v2/traces?annotationQuery=error')).toEqual([TRACE_B]);
      expect(await traceIds('/api/v2/traces?annotationQuery=retried')).toEqual([TRACE_B]);
      expect(await traceIds('/api/v2/traces?annotationQuery=wr')).toEqual([TRACE_A]);
      expect(await traceIds(`/api/v2/traces?annotationQuery=${q('http.method=GET')}`)).toEqual([TRACE_A, TRACE_D]);
      expect(await traceIds(`/api/v2/traces?annotationQuery=${q('error and http.method=POST')}`)).toEqual([TRACE_B]);
      expect(await traceIds(`/api/v2/traces?annotationQuery=${q('error=timeout')}`)).toEqual([TRACE_B]);
      expect(await traceIds(`/api/v2/traces?annotationQuery=${q('sql.table=items')}`)).toEqual([TRACE_A]);
      expect(await traceIds(`/api/v2/traces?annotationQuery=${q(`${EVIL_KEY}=${EVIL_VALUE}`)}`)).toEqual([TRACE_E]);
      expect(await traceIds(`/api/v2/traces?annotationQuery=${q('error=nope')}`)).toEqual([]);
      // A bare word does not widen a key=value on the same key, before or after it (Zipkin).
      expect(await traceIds(`/api/v2/traces?annotationQuery=${q('error=nope and error')}`)).toEqual([]);
      expect(await traceIds(`/api/v2/traces?annotationQuery=${q('error and error=timeout')}`)).toEqual([TRACE_B]);
      expect(await traceIds(`/api/v2/traces?serviceName=frontend&annotationQuery=retried`)).toEqual([TRACE_B]);
    });

    it('/traces filters by minDuration and maxDuration (microseconds)', async () => {
      expect(await traceIds('/api/v2/traces?minDuration=1800000')).toEqual([TRACE_B]);
      expect(await traceIds('/api/v2/traces?minDuration=120000&maxDuration=160000')).toEqual([TRACE_A]);
      expect(await traceIds('/api/v2/traces?minDuration=10000000')).toEqual([]);
      expect((await get('/api/v2/traces?maxDuration=5')).body).toMatchObject({ parameter: 'maxDuration' });
      expect((await get('/api/v2/traces?minDuration=10&maxDuration=5')).status).toBe(400);
    });

    it('/traces honours endTs, lookback and limit', async () => {
      const threeDaysAgo = nowMs - 3 * DAY_MS;
      expect(await traceIds(`/api/v2/traces?endTs=${threeDaysAgo + HOUR_MS}&lookback=${2 * HOUR_MS}`)).toEqual([TRACE_C]);
      expect(await traceIds(`/api/v2/traces?lookback=${55 * MINUTE_MS}`)).toEqual([TRACE_E, TRACE_B]);
      expect(await traceIds(`/api/v2/traces?endTs=${nowMs - 45 * MINUTE_MS}`)).toEqual([TRACE_B, TRACE_A, TRACE_D]);
      expect(await traceIds('/api/v2/traces?limit=2')).toEqual([TRACE_E, TRACE_B]);
      // A lookback beyond the configured maximum is clamped to it (7 days), not refused.
      expect(await traceIds(`/api/v2/traces?lookback=${30 * DAY_MS}`)).toEqual([TRACE_E, TRACE_B, TRACE_A, TRACE_D, TRACE_C]);
      expect((await get('/api/v2/traces?limit=101')).body).toMatchObject({ code: 'INVALID_PARAMETER', parameter: 'limit' });
      expect((await get('/api/v2/traces?limit=0')).status).toBe(400);
      expect((await get('/api/v2/traces?endTs=soon')).body).toMatchObject({ parameter: 'endTs' });
      // The largest endTs accepted is one storage can search; one more is a 400 naming endTs.
      expect((await get(`/api/v2/traces?endTs=${MAX_END_TS_MS}&lookback=${HOUR_MS}`)).status).toBe(200);
      expect((await get(`/api/v2/traces?endTs=${MAX_END_TS_MS + 1}`)).body).toMatchObject({ code: 'INVALID_PARAMETER', parameter: 'endTs' });
      expect((await get('/api/v2/traces?lookback=-1')).body).toMatchObject({ parameter: 'lookback' });
    });

    it('/traces gzips an answer of 2 KiB or more for a client that accepts it', async () => {
      const url = `/api/v2/traces?lookback=${30 * DAY_MS}`;
      const plain = await app.inject({ url });
      expect(plain.rawPayload.length).toBeGreaterThanOrEqual(2048);
      expect(plain.headers['content-encoding']).toBeUndefined();
      const compressed = await app.inject({ url, headers: { 'accept-encoding': 'gzip' } });
      expect(compressed.statusCode).toBe(200);
      expect(compressed.headers['content-encoding']).toBe('gzip');
      expect(gunzipSync(compressed.rawPayload).toString('utf8')).toBe(plain.body);
    });

    it('/trace/{traceId} returns the merged trace for 16 and 32 character ids in any case', async () => {
      const a = await ok<Span[]>(`/api/v2/trace/${TRACE_A.toUpperCase()}`);
      expect(a.map((span) => [span.id, span.kind, span.shared])).toEqual([
        ['a000000000000001', 'SERVER', undefined],
        ['a000000000000002', 'CLIENT', undefined],
        ['a000000000000002', 'SERVER', true],
        ['a000000000000004', 'CLIENT', undefined],
      ]);
      expect(a.every((span) => span.traceId === TRACE_A)).toBe(true);
      expect(a[3]).toEqual({
        traceId: TRACE_A,
        parentId: 'a000000000000002',
        id: 'a000000000000004',
        kind: 'CLIENT',
        name: 'query',
        timestamp: (nowMs - HOUR_MS) * 1000 + 5000,
        duration: 100_000,
        localEndpoint: { serviceName: 'backend', ipv4: '10.0.0.2', port: 9000 },
        remoteEndpoint: { serviceName: 'mysql', ipv4: '10.0.0.9', port: 3306 },
        tags: { 'sql.table': 'items' },
      });
      const b = await ok<Span[]>(`/api/v2/trace/${TRACE_B}`);
      expect(b.find((span) => span.kind === 'SERVER' && span.id === 'b000000000000002')).toMatchObject({
        shared: true,
        parentId: 'b000000000000001',
      });
      expect((await ok<Span[]>(`/api/v2/trace/${TRACE_E}`))[0]).toMatchObject({ name: EVIL_SPAN, tags: { [EVIL_KEY]: EVIL_VALUE } });
    });

    it('/trace/{traceId} is 404 for an unknown id (and for the low half of a 128-bit id: strict trace ids) and 400 for a bad one', async () => {
      expect(await get('/api/v2/trace/0123456789abcdef')).toMatchObject({ status: 404, body: { code: 'TRACE_NOT_FOUND' } });
      expect((await get(`/api/v2/trace/${TRACE_A.slice(16)}`)).status).toBe(404);
      expect(await get('/api/v2/trace/not-a-trace-id')).toMatchObject({ status: 400, body: { parameter: 'traceId' } });
      expect((await get(`/api/v2/trace/${'f'.repeat(33)}`)).status).toBe(400);
    });

    it('/traceMany returns the traces found among comma-separated ids', async () => {
      const both = await ok<Span[][]>(`/api/v2/traceMany?traceIds=${TRACE_A},${TRACE_B.toUpperCase()}`);
      expect(both.map((trace) => trace[0]?.traceId).sort()).toEqual([TRACE_A, TRACE_B].sort());
      expect(both.find((trace) => trace[0]?.traceId === TRACE_B)?.find((s) => s.kind === 'SERVER' && s.id === 'b000000000000002')?.shared).toBe(true);
      expect(await traceIds(`/api/v2/traceMany?traceIds=${TRACE_C},0123456789abcdef`)).toEqual([TRACE_C]);
      expect(await ok('/api/v2/traceMany?traceIds=0123456789abcdef,0123456789abcdee')).toEqual([]);
      expect(await get(`/api/v2/traceMany?traceIds=${TRACE_A}`)).toMatchObject({ status: 400, body: { parameter: 'traceIds' } });
      expect((await get(`/api/v2/traceMany?traceIds=${TRACE_A},${TRACE_A}`)).status).toBe(400);
      expect((await get(`/api/v2/traceMany?traceIds=${TRACE_A},xyz`)).status).toBe(400);
      expect(await get(`/api/v2/traceMany?traceIds=${TRACE_A},`)).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER', parameter: 'traceIds' } });
    });

    it('/dependencies links services from parent/child spans in the window', async () => {
      type Link = { parent: string; child: string; callCount: number; errorCount?: number };
      const sorted = (links: Link[]) =>
        links.map((l) => ({ ...l, errorCount: l.errorCount ?? 0 })).sort((x, y) => `${x.parent}>${x.child}`.localeCompare(`${y.parent}>${y.child}`));
      expect(sorted(await ok<Link[]>(`/api/v2/dependencies?endTs=${nowMs}`))).toEqual([
        { parent: 'backend', child: 'mysql', callCount: 1, errorCount: 0 },
        // Trace B's error is on the client half of a shared span: Zipkin's linker does not count it
        // (only a client error on a call whose server is a child span is the link's).
        { parent: 'frontend', child: 'backend', callCount: 2, errorCount: 0 },
      ]);
      expect(await ok(`/api/v2/dependencies?endTs=${nowMs - 10 * DAY_MS}`)).toEqual([]);
      expect(await get('/api/v2/dependencies')).toMatchObject({ status: 400, body: { code: 'MISSING_PARAMETER', parameter: 'endTs' } });
      expect((await get(`/api/v2/dependencies?endTs=${nowMs}&lookback=0`)).status).toBe(400);
      expect(await ok(`/api/v2/dependencies?endTs=${MAX_END_TS_MS}&lookback=${HOUR_MS}`)).toEqual([]);
    });

    it('/dependencies links a producer to its broker and the broker to its consumer, as Zipkin does', async () => {
      // Zipkin's DependencyLinker: PRODUCER links service → broker, CONSUMER links broker → service.
      type Link = { parent: string; child: string; callCount: number; errorCount?: number };
      const threeDaysAgo = nowMs - 3 * DAY_MS;
      const links = await ok<Link[]>(`/api/v2/dependencies?endTs=${threeDaysAgo + HOUR_MS}&lookback=${2 * HOUR_MS}`);
      expect(links.map((l) => `${l.parent}>${l.child}:${l.callCount}/${l.errorCount ?? 0}`).sort()).toEqual([
        'batch>rabbitmq:1/0',
        'rabbitmq>batch-worker:1/0',
      ]);
    });

    it('/autocompleteKeys and /autocompleteValues list tag keys and their values', async () => {
      expect(await ok('/api/v2/autocompleteKeys')).toEqual(['error', 'http.method', 'http.path', EVIL_KEY, 'sql.table']);
      expect(await ok('/api/v2/autocompleteValues?key=http.method')).toEqual(['GET', 'POST']);
      expect(await ok('/api/v2/autocompleteValues?key=error')).toEqual(['500', 'timeout']);
      expect(await ok(`/api/v2/autocompleteValues?key=${q(EVIL_KEY)}`)).toEqual([EVIL_VALUE]);
      expect(await ok('/api/v2/autocompleteValues?key=unknown')).toEqual([]);
      expect(await get('/api/v2/autocompleteValues')).toMatchObject({ status: 400, body: { parameter: 'key' } });
    });

    it('SQL injection in every string parameter gives a 400 or an empty result', async () => {
      const urls = (payload: string): string[] => [
        `/api/v2/spans?serviceName=${q(payload)}`,
        `/api/v2/remoteServices?serviceName=${q(payload)}`,
        `/api/v2/traces?serviceName=${q(payload)}`,
        `/api/v2/traces?remoteServiceName=${q(payload)}`,
        `/api/v2/traces?spanName=${q(payload)}`,
        `/api/v2/traces?annotationQuery=${q(payload)}`,
        `/api/v2/traces?annotationQuery=${q(`http.method=${payload}`)}`,
        `/api/v2/trace/${q(payload)}`,
        `/api/v2/traceMany?traceIds=${q(`${TRACE_A},${payload}`)}`,
        `/api/v2/autocompleteValues?key=${q(payload)}`,
      ];
      const outcomes: string[] = [];
      for (const payload of SQL_INJECTIONS) {
        for (const url of urls(payload)) {
          const { status, body } = await get(url);
          const fine = status === 400 || (status === 200 && Array.isArray(body) && body.length === 0);
          if (!fine) outcomes.push(`${url} → ${status} ${JSON.stringify(body).slice(0, 200)}`);
        }
      }
      expect(outcomes).toEqual([]);
      // The data is still all there.
      expect(await traceIds('/api/v2/traces')).toEqual([TRACE_E, TRACE_B, TRACE_A, TRACE_D]);
    });
  });
}
