/**
 * Query benchmark: loads generated spans (default 5 million: 8 services, 10
 * tags and 2 annotations per span, spread over the last 7 days) into a
 * dedicated database through the storage writer, then measures the Zipkin
 * API over real HTTP (the app listening on a local port, requests sent one at
 * a time with keep-alive) and prints p50/p99 per query against the goals,
 * with the reader's share of the same requests (time inside TraceReader calls).
 *
 *   npm run bench -w query-api -- [--spans 5000000] [--samples 200] [--url http://127.0.0.1:8123]
 *                                 [--database tracehouse_bench_query] [--reload]
 *
 * The load is reused across runs: what was loaded is recorded in
 * .tracehouse/query-api-bench-<database>.json (repo root) and checked against the stored
 * row count; an interrupted load resumes (re-written chunks are deduplicated
 * by the store).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ClickHouseStore } from '@tracehouse/storage';
import { DEFAULT_SERVICES, generateSpans } from '@tracehouse/storage/testing';
import { buildApp } from '../app.js';

const { values } = parseArgs({
  options: {
    spans: { type: 'string', default: '5000000' },
    samples: { type: 'string', default: '200' },
    url: { type: 'string', default: process.env['TRACEHOUSE_CLICKHOUSE_URL'] ?? 'http://127.0.0.1:8123' },
    database: { type: 'string', default: 'tracehouse_bench_query' },
    reload: { type: 'boolean', default: false },
  },
});

const SPANS_PER_TRACE = 10;
const TRACES_PER_CHUNK = 2000; // 20 000 spans per write
const DAY_MS = 86_400_000;
const SPAN_DAYS = 7;
const totalSpans = Number(values.spans);
const samples = Number(values.samples);
if (!Number.isSafeInteger(totalSpans) || totalSpans < SPANS_PER_TRACE || !Number.isSafeInteger(samples) || samples < 10) {
  console.error('--spans must be an integer ≥ 10 and --samples an integer ≥ 10');
  process.exit(2);
}
const totalTraces = Math.ceil(totalSpans / SPANS_PER_TRACE);
const chunks = Math.ceil(totalTraces / TRACES_PER_CHUNK);

interface LoadState {
  url: string;
  database: string;
  spans: number;
  startMicros: number;
  spacingMicros: number;
  chunksLoaded: number;
}
const statePath = fileURLToPath(new URL(`../../../.tracehouse/query-api-bench-${values.database}.json`, import.meta.url));

function readState(): LoadState | undefined {
  try {
    return JSON.parse(readFileSync(statePath, 'utf8')) as LoadState;
  } catch {
    return undefined;
  }
}
function writeState(state: LoadState): void {
  mkdirSync(dirname(statePath), { recursive: true });
  writeFileSync(statePath, JSON.stringify(state, null, 2));
}

function chunkSpans(state: LoadState, chunk: number) {
  const traces = Math.min(TRACES_PER_CHUNK, totalTraces - chunk * TRACES_PER_CHUNK);
  return generateSpans({
    traces,
    spansPerTrace: SPANS_PER_TRACE,
    startMicros: state.startMicros + chunk * TRACES_PER_CHUNK * state.spacingMicros,
    traceSpacingMicros: state.spacingMicros,
    seed: 1000 + chunk,
  });
}

const store = await ClickHouseStore.open({ url: values.url, database: values.database, retentionDays: 30, queryTimeoutMs: 60_000 });
console.log(`engine ${store.serverVersion} at ${values.url}, database ${values.database}`);

// ---- load (or reuse) ----
let state = readState();
const nowMs = Date.now();
const reusable =
  !values.reload &&
  state !== undefined &&
  state.url === values.url &&
  state.database === values.database &&
  state.spans === totalSpans &&
  state.startMicros / 1000 > nowMs - 20 * DAY_MS;
if (!reusable) {
  if (state !== undefined || values.reload) await store.dropDatabase().catch(() => undefined);
  await store.close();
  state = {
    url: values.url,
    database: values.database,
    spans: totalSpans,
    // Spread evenly over the 7 days before now.
    startMicros: (nowMs - SPAN_DAYS * DAY_MS) * 1000,
    spacingMicros: Math.floor((SPAN_DAYS * DAY_MS * 1000) / totalTraces),
    chunksLoaded: 0,
  };
  writeState(state);
}
const bench = reusable ? store : await ClickHouseStore.open({ url: values.url, database: values.database, retentionDays: 30, queryTimeoutMs: 60_000 });
const loadState = state as LoadState;

if (loadState.chunksLoaded < chunks) {
  console.log(`loading ${totalSpans.toLocaleString('en-US')} spans: chunks ${loadState.chunksLoaded}..${chunks - 1} of ${chunks}`);
  const started = performance.now();
  let written = 0;
  // Two writes in flight: one being generated while the other is inserted.
  let pending: Promise<void> = Promise.resolve();
  for (let chunk = loadState.chunksLoaded; chunk < chunks; chunk++) {
    const spans = chunkSpans(loadState, chunk);
    await pending;
    loadState.chunksLoaded = chunk; // everything before this chunk is committed
    writeState(loadState);
    pending = bench.writer.write(spans);
    written += spans.length;
    if (chunk % 25 === 0) {
      const s = (performance.now() - started) / 1000;
      console.log(`  ${written.toLocaleString('en-US')} spans in ${s.toFixed(0)} s (${Math.round(written / s).toLocaleString('en-US')} spans/s)`);
    }
  }
  await pending;
  loadState.chunksLoaded = chunks;
  writeState(loadState);
  const s = (performance.now() - started) / 1000;
  console.log(`loaded ${written.toLocaleString('en-US')} spans in ${s.toFixed(0)} s (${Math.round(written / s).toLocaleString('en-US')} spans/s)`);
} else {
  console.log('reusing the loaded data (pass --reload to load again)');
}
const counted = await bench.countSpans();
console.log(`stored: ${counted.rows.toLocaleString('en-US')} rows, ${counted.distinct.toLocaleString('en-US')} distinct spans`);

// ---- measure over HTTP ----
// Times every reader call, so each request's storage share is known (same requests, same run).
let storageMs = 0;
const timedReader = new Proxy(bench.reader, {
  get(target, property, receiver) {
    const value: unknown = Reflect.get(target, property, receiver);
    if (typeof value !== 'function') return value;
    const method = value as (...a: unknown[]) => Promise<unknown>;
    return async (...args: unknown[]): Promise<unknown> => {
      const started = performance.now();
      try {
        return await method.apply(target, args);
      } finally {
        storageMs += performance.now() - started;
      }
    };
  },
});
const app = await buildApp({
  reader: timedReader,
  config: {
    defaultLimit: 10,
    maxLimit: 1000,
    defaultLookbackMs: DAY_MS,
    maxLookbackMs: SPAN_DAYS * DAY_MS,
    queryTimeoutMs: 60_000,
    corsOrigins: 'off',
    bearerToken: undefined,
  },
});
const base = await app.listen({ host: '127.0.0.1', port: 0 });

let seed = 42;
const random = (): number => {
  seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
  return seed / 2_147_483_648;
};
const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
const dataStartMs = loadState.startMicros / 1000;
const dataEndMs = dataStartMs + SPAN_DAYS * DAY_MS;
/** A random endTs with at least `lookbackMs` of data before it. */
const randomEnd = (lookbackMs: number): number => Math.floor(dataStartMs + lookbackMs + random() * (dataEndMs - dataStartMs - lookbackMs));

// Known trace ids: regenerate a few random chunks.
const knownIds: string[] = [];
while (knownIds.length < samples) {
  const spans = chunkSpans(loadState, Math.floor(random() * chunks));
  for (let i = 0; i < 5 && knownIds.length < samples; i++) knownIds.push((pick(spans) as { traceId: string }).traceId);
}

interface Result {
  name: string;
  p50: number;
  p99: number;
  max: number;
  goalMs?: number;
  meanResults: number;
  /** The reader's share (ClickHouse round trips and decoding) of the same requests. */
  storageP50: number;
  storageP99: number;
}
const results: Result[] = [];

async function measure(name: string, url: () => string, goalMs?: number, check?: (body: unknown) => number): Promise<void> {
  const times: number[] = [];
  const storageTimes: number[] = [];
  let found = 0;
  for (let i = 0; i < samples + 5; i++) {
    const target = `${base}${url()}`;
    storageMs = 0;
    const started = performance.now();
    const response = await fetch(target);
    const body: unknown = await response.json();
    const ms = performance.now() - started;
    if (response.status !== 200) throw new Error(`${target} → ${response.status} ${JSON.stringify(body)}`);
    if (i >= 5) {
      times.push(ms); // the first 5 are warm-up
      storageTimes.push(storageMs);
      found += check?.(body) ?? (Array.isArray(body) ? body.length : 1);
    }
  }
  times.sort((a, b) => a - b);
  storageTimes.sort((a, b) => a - b);
  const quantile = (list: number[], q: number) => list[Math.min(list.length - 1, Math.ceil(q * list.length) - 1)] as number;
  const at = (q: number) => quantile(times, q);
  const result: Result = {
    name,
    p50: at(0.5),
    p99: at(0.99),
    max: times[times.length - 1] as number,
    meanResults: found / samples,
    storageP50: quantile(storageTimes, 0.5),
    storageP99: quantile(storageTimes, 0.99),
  };
  if (goalMs !== undefined) result.goalMs = goalMs;
  results.push(result);
  console.log(
    `${name.padEnd(48)} p50 ${result.p50.toFixed(1).padStart(7)} ms  p99 ${result.p99.toFixed(1).padStart(7)} ms  max ${result.max.toFixed(1).padStart(7)} ms  ` +
      `| reader p50 ${result.storageP50.toFixed(1).padStart(6)} p99 ${result.storageP99.toFixed(1).padStart(6)} ms ` +
      `(${result.meanResults.toFixed(1)} results/query)` +
      (goalMs === undefined ? '' : `  goal p99 ≤ ${goalMs} ms: ${result.p99 <= goalMs ? 'MET' : 'MISSED'}`),
  );
}

const load = (): string => loadavg().map((l) => l.toFixed(1)).join(' ');
console.log(`\n${samples} requests per query (after 5 warm-up), sequential, over HTTP to ${base}; ${cpus().length} cores, load average ${load()}`);
let idIndex = 0;
await measure('trace by id (/trace/{id})', () => `/api/v2/trace/${knownIds[idIndex++ % knownIds.length]}`, 50, (body) => (Array.isArray(body) && body.length > 0 ? 1 : 0));
await measure('search by service, 1 h window (/traces)', () => `/api/v2/traces?serviceName=${pick(DEFAULT_SERVICES)}&endTs=${randomEnd(3_600_000)}&lookback=3600000&limit=10`, 200);
await measure('search by service, 1 day window (/traces)', () => `/api/v2/traces?serviceName=${pick(DEFAULT_SERVICES)}&endTs=${randomEnd(DAY_MS)}&lookback=${DAY_MS}&limit=10`, 200);
await measure(
  'search by service + span name, 1 day (/traces)',
  () => `/api/v2/traces?serviceName=${pick(DEFAULT_SERVICES)}&spanName=${encodeURIComponent(pick(['charge', 'select', 'render']))}&endTs=${randomEnd(DAY_MS)}&lookback=${DAY_MS}&limit=10`,
  200,
);
await measure(
  'search by tag, 1 day (annotationQuery=k=v)',
  () => `/api/v2/traces?annotationQuery=${encodeURIComponent(`user.tier=${pick(['free', 'pro', 'enterprise'])}`)}&endTs=${randomEnd(DAY_MS)}&lookback=${DAY_MS}&limit=10`,
  1000,
);
await measure(
  'search by service + tag, 1 day',
  () => `/api/v2/traces?serviceName=${pick(DEFAULT_SERVICES)}&annotationQuery=${encodeURIComponent(`http.status_code=${pick(['404', '500'])}`)}&endTs=${randomEnd(DAY_MS)}&lookback=${DAY_MS}&limit=10`,
  1000,
);
// Two criteria: each step of the search also checks its candidates' older spans.
await measure(
  'search by service + span name + tag, 1 day',
  () =>
    `/api/v2/traces?serviceName=${pick(DEFAULT_SERVICES)}&spanName=${encodeURIComponent(pick(['charge', 'select', 'render']))}&annotationQuery=${encodeURIComponent(`http.status_code=${pick(['404', '500'])}`)}&endTs=${randomEnd(DAY_MS)}&lookback=${DAY_MS}&limit=10`,
  1000,
);
await measure('search by tag key (annotationQuery=error), 1 day', () => `/api/v2/traces?annotationQuery=error&endTs=${randomEnd(DAY_MS)}&lookback=${DAY_MS}&limit=10`, 1000);
await measure('services list (/services)', () => '/api/v2/services', 200);
await measure('span names (/spans)', () => `/api/v2/spans?serviceName=${pick(DEFAULT_SERVICES)}`, 200);

const missed = results.filter((r) => r.goalMs !== undefined && r.p99 > r.goalMs);
console.log(`\n${counted.distinct.toLocaleString('en-US')} distinct spans in ${values.database} on ${store.serverVersion}`);
console.log(`load average at the end: ${load()} (other work on the machine inflates these figures)`);
console.log(missed.length === 0 ? 'all goals met' : `goals missed: ${missed.map((r) => r.name).join('; ')}`);

await app.close();
await bench.close();
if (bench !== store) await store.close().catch(() => undefined);
