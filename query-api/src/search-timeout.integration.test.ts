// A /traces search that outlasts the query timeout, or whose client goes away, against the
// ClickHouse server: the reader runs on the real engine, slowed down and counted by a wrapper,
// and must start no query once nobody waits for its answer.
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { ClickHouseStore } from '@tracehouse/storage';
import { openWrappedReader, SlowEngine } from '@tracehouse/storage/testing';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, type AppConfig, type QueryApp } from './app.js';

const url = process.env['TRACEHOUSE_CLICKHOUSE_URL'] ?? 'http://127.0.0.1:8123';
const DAY_MS = 86_400_000;
/** Each query is answered this long after it ran. */
const DELAY_MS = 100;
/**
 * One trace three days old, searched over 7 days: the reader steps through 1 h, 4 h, 16 h,
 * 64 h and the whole window (5 queries), then reads the trace (2 queries).
 */
const QUERIES = 7;

const config: AppConfig = {
  defaultLimit: 10,
  maxLimit: 100,
  defaultLookbackMs: DAY_MS,
  maxLookbackMs: 7 * DAY_MS,
  queryTimeoutMs: 250,
  corsOrigins: '*',
  bearerToken: undefined,
};

describe('a read nobody waits for any more, on the ClickHouse server', () => {
  const database = `qa_timeout_${randomBytes(5).toString('hex')}`;
  const nowMs = Date.now();
  const searchUrl = `/api/v2/traces?serviceName=lone&lookback=${7 * DAY_MS}`;
  let store: ClickHouseStore;
  let app: QueryApp | undefined;
  const closers: Array<() => Promise<void>> = [];

  /** An app whose reader's queries each take DELAY_MS more; the reader's own timeout is long, so only the route can stop it. */
  async function slowApp(
    overrides: Partial<AppConfig> = {},
  ): Promise<{ app: QueryApp; started: number[]; logs: Array<{ level: number; msg?: string }> }> {
    let slow: SlowEngine | undefined;
    const { reader, close } = await openWrappedReader({
      url,
      database,
      queryTimeoutMs: 30_000,
      wrap: (engine) => (slow = new SlowEngine(engine, DELAY_MS)),
    });
    closers.push(close);
    const logs: Array<{ level: number; msg?: string }> = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line) as { level: number; msg?: string }) });
    app = await buildApp({ reader, config: { ...config, ...overrides }, now: () => nowMs, logger });
    return { app, started: (slow as SlowEngine).started, logs };
  }

  beforeAll(async () => {
    store = await ClickHouseStore.open({ url, database, retentionDays: 30 });
    const timestamp = (nowMs - 3 * DAY_MS) * 1000;
    await store.writer.write([
      { traceId: 'a1a1a1a1a1a1a1a1', id: 'b1b1b1b1b1b1b1b1', name: 'old', timestamp, duration: 5, localEndpoint: { serviceName: 'lone' } },
    ]);
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });
  afterAll(async () => {
    for (const close of closers) await close();
    await store?.dropDatabase();
    await store?.close();
  });

  it(`takes ${QUERIES} queries when it has the time`, async () => {
    const { app, started } = await slowApp({ queryTimeoutMs: 30_000 });
    const response = await app.inject({ url: searchUrl });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toHaveLength(1);
    expect(started).toHaveLength(QUERIES);
  });

  it('answers 504 QUERY_TIMEOUT and starts no query after the timeout', async () => {
    const { app, started } = await slowApp();
    const response = await app.inject({ url: searchUrl });
    const answeredAt = Date.now();
    expect(response.statusCode).toBe(504);
    expect(response.json()).toMatchObject({ code: 'QUERY_TIMEOUT' });
    const startedThen = started.length;
    await sleep(QUERIES * DELAY_MS + 200);
    expect(started).toHaveLength(startedThen);
    expect(startedThen).toBeLessThan(QUERIES);
    expect(Math.max(...started)).toBeLessThanOrEqual(answeredAt);
  });

  it.each([
    // The id lookup, then the trace's spans.
    ['/trace/{id}', () => '/api/v2/trace/a1a1a1a1a1a1a1a1', 50],
    ['/traceMany', () => '/api/v2/traceMany?traceIds=a1a1a1a1a1a1a1a1,c1c1c1c1c1c1c1c1', 50],
    // The window's count, the server's memory limit, then the pass.
    ['/dependencies', () => `/api/v2/dependencies?endTs=${nowMs}&lookback=${7 * DAY_MS}`, 150],
  ])('a %s read answers 504 and starts no query after it', async (_route, path, queryTimeoutMs) => {
    const { app, started } = await slowApp({ queryTimeoutMs });
    const response = await app.inject({ url: path() });
    const answeredAt = Date.now();
    expect(response.statusCode).toBe(504);
    await sleep(5 * DELAY_MS + 200);
    expect(started.length).toBeGreaterThan(0);
    expect(Math.max(...started)).toBeLessThanOrEqual(answeredAt);
  });

  it('starts no query after the client closed the connection, and logs no error', async () => {
    const { app, started, logs } = await slowApp({ queryTimeoutMs: 30_000 });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as AddressInfo;
    const socket = connect(port, '127.0.0.1');
    socket.write(`GET ${searchUrl} HTTP/1.1\r\nHost: x\r\n\r\n`);
    await sleep(2.5 * DELAY_MS);
    socket.destroy();
    const closedAt = Date.now();
    await sleep(QUERIES * DELAY_MS + 200);
    expect(started.length).toBeLessThan(QUERIES);
    expect(Math.max(...started)).toBeLessThanOrEqual(closedAt);
    expect(logs.map((entry) => entry.msg)).toContain('client closed the connection; its read was stopped');
    expect(logs.filter((entry) => entry.level >= 50)).toEqual([]);
  });
});
