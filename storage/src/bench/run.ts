/**
 * Insert benchmark: loads N generated spans through the SpanWriter and reports
 * the rate. Also reports the JS-only cost of building the rows, and (with
 * --compare-json) the rate of the same rows sent as JSONEachRow objects
 * through @clickhouse/client, the format the writer does not use.
 *
 *   npm run bench -w storage -- [--spans 500000] [--batch 10000] [--url http://127.0.0.1:8123] [--chdb] [--compare-json]
 *                               [--server-pid N] [--view-costs [--rounds 5]] [--js-only]
 *
 * --js-only: only the JavaScript figures (row building, JSON v2 body to
 * rows), no ClickHouse.
 *
 * --view-costs: the server CPU per span of the writer's inserts with each
 * materialized view removed in turn (one database per variant, rounds
 * interleaved so load on the machine falls on all alike; median per variant).
 * Needs the server's CPU time: a local server, best a private one (its
 * --server-pid), since other clients' queries count too.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { createClient } from '@clickhouse/client';
import { decodeSpans, encodeJsonV2, type Span } from '@tracehouse/model';
import { ClickHouseStore } from '../clickhouse-store.js';
import { generateSpans } from '../span-generator.js';
import { transcodeSpans } from '../json-v2-transcoder.js';
import { canonicalJson, encodeSpans, spanTime } from '../span-row.js';
import { INGEST_COLUMNS } from '../schema.js';

const { values } = parseArgs({
  options: {
    spans: { type: 'string', default: '500000' },
    batch: { type: 'string', default: '10000' },
    url: { type: 'string', default: process.env.TRACEHOUSE_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123' },
    chdb: { type: 'boolean', default: false },
    'compare-json': { type: 'boolean', default: false },
    /** pid of the clickhouse-server behind --url, for its CPU time (found when only one runs). */
    'server-pid': { type: 'string' },
    'view-costs': { type: 'boolean', default: false },
    rounds: { type: 'string', default: '5' },
    'js-only': { type: 'boolean', default: false },
  },
});

const total = Number(values.spans);
const batch = Number(values.batch);
if (!Number.isInteger(total) || total <= 0 || !Number.isInteger(batch) || batch <= 0) {
  console.error('--spans and --batch must be positive integers');
  process.exit(2);
}

const spans = generateSpans({ traces: Math.ceil(total / 10), spansPerTrace: 10, seed: 7 }).slice(0, total);
const rate = (n: number, ms: number): string => `${Math.round((n / ms) * 1000).toLocaleString('en-US')} spans/s`;

// JS cost alone: building the TabSeparated rows exactly as the writer does,
// 200 spans at a time as the collector encodes each message.
{
  const now = Date.now() * 1000;
  for (let round = 0; round < 3; round++) {
    const cpu = process.cpuUsage();
    const started = performance.now();
    let bytes = 0;
    for (let i = 0; i < spans.length; i += 200) bytes += encodeSpans(spans.slice(i, i + 200), now).rows.length;
    const ms = performance.now() - started;
    const used = process.cpuUsage(cpu);
    if (round === 2) {
      console.log(
        `row building (JS only): ${rate(spans.length, ms)} wall, ${rate(spans.length, (used.user + used.system) / 1000)} per CPU-second, ${(bytes / spans.length).toFixed(0)} bytes/span`,
      );
    }
  }
}

// JS cost alone of what the collector does with a JSON v2 message of 200
// spans: decodeSpans then encodeSpans (Span objects in between), against
// transcodeSpans (rows from the body's bytes). Rounds of each interleaved,
// so load from other processes falls on both alike; median CPU µs per span.
{
  const now = Date.now() * 1000;
  const bodies: Buffer[] = [];
  for (let i = 0; i < Math.min(spans.length, 100_000); i += 200) bodies.push(encodeJsonV2(spans.slice(i, i + 200)));
  const count = bodies.length * 200;
  const cases = [
    { label: 'decodeSpans + encodeSpans', run: (body: Buffer) => encodeSpans((decodeSpans(body) as { spans: Span[] }).spans, now).rows.length, micros: [] as number[] },
    { label: 'transcodeSpans', run: (body: Buffer) => (transcodeSpans(body, {}, now) as { encoded: { rows: Buffer } }).encoded.rows.length, micros: [] as number[] },
  ];
  const bytes = cases.map((c) => bodies.reduce((n, body) => n + c.run(body), 0));
  if (bytes[0] !== bytes[1]) throw new Error(`the two ways made rows of ${bytes[0]} and ${bytes[1]} bytes`);
  for (let round = 0; round < 7; round++) {
    for (const c of cases) {
      const cpu = process.cpuUsage();
      for (const body of bodies) c.run(body);
      const used = process.cpuUsage(cpu);
      c.micros.push((used.user + used.system) / count);
    }
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  console.log(`JSON v2 body -> rows (JS only, ${bodies.length} bodies of 200 spans, ${Math.round(bodies.reduce((n, b) => n + b.length, 0) / count)} B/span; median of 7 interleaved rounds):`);
  for (const c of cases) console.log(`  ${c.label.padEnd(28)} ${median(c.micros).toFixed(2)} µs CPU per span   (${c.micros.map((m) => m.toFixed(2)).join(' ')})`);
  console.log(`  transcodeSpans / decode+encode: ${(median(cases[1]!.micros) / median(cases[0]!.micros)).toFixed(2)}`);
}
if (values['js-only']) process.exit(0);

/**
 * CPU time used so far by a local clickhouse-server (from /proc), in ms, when
 * one runs on this machine: a rate per server CPU-second is steadier than wall
 * time on a shared machine (though the server may be serving others too).
 */
function serverCpuMs(): number | undefined {
  try {
    let pids: string[];
    if (values['server-pid'] !== undefined) pids = [values['server-pid']];
    else {
      pids = readdirSync('/proc').filter((pid) => {
        if (!/^\d+$/.test(pid)) return false;
        try {
          return readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('clickhouse-serv');
        } catch {
          return false;
        }
      });
      // Several servers: which one is ours is not known; say nothing.
      if (pids.length !== 1) return undefined;
    }
    const fields = readFileSync(`/proc/${pids[0]}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    // utime and stime, in clock ticks (100 per second on Linux).
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

async function writerRun(url: string): Promise<void> {
  const database = `th_bench_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const store = await ClickHouseStore.open({ url, database });
  try {
    // Warm up the connection and the tables.
    await store.writer.write(spans.slice(0, Math.min(batch, 1000)));
    const http = !url.startsWith('chdb:');
    const serverBefore = http ? serverCpuMs() : undefined;
    const cpu = process.cpuUsage();
    const started = performance.now();
    for (let i = 0; i < spans.length; i += batch) await store.writer.write(spans.slice(i, i + batch));
    const ms = performance.now() - started;
    const used = process.cpuUsage(cpu);
    const serverAfter = http ? serverCpuMs() : undefined;
    const counted = await store.countSpans();
    console.log(
      `writer → ${store.serverVersion} (${http ? 'http' : 'chdb'}): ${spans.length.toLocaleString('en-US')} spans in ${(ms / 1000).toFixed(2)} s = ${rate(spans.length, ms)} (batch ${batch}; ${counted.distinct} distinct stored)`,
    );
    const serverCpu = serverBefore !== undefined && serverAfter !== undefined ? serverAfter - serverBefore : undefined;
    console.log(
      `  CPU: writer process ${rate(spans.length, (used.user + used.system) / 1000)} per CPU-second` +
        (serverCpu !== undefined && serverCpu > 0 ? `; local clickhouse-server ${rate(spans.length, serverCpu)} per CPU-second` : ''),
    );
  } finally {
    await store.dropDatabase();
    await store.close();
  }
}

/** The same rows as JSONEachRow objects through @clickhouse/client, for comparison. */
async function jsonRun(url: string): Promise<void> {
  const database = `th_bench_json_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const store = await ClickHouseStore.open({ url, database });
  const client = createClient({ url, compression: { request: false, response: false } });
  try {
    const now = Date.now() * 1000;
    const started = performance.now();
    for (let i = 0; i < spans.length; i += batch) {
      const rows = spans.slice(i, i + batch).map((s) => {
        const tags = s.tags ?? {};
        return {
          trace_id: s.traceId,
          span_id: s.id,
          parent_id: s.parentId ?? '',
          kind: s.kind ?? '',
          name: s.name ?? '',
          service: s.localEndpoint?.serviceName ?? '',
          remote_service: s.remoteEndpoint?.serviceName ?? '',
          ts: spanTime(s, now),
          duration: s.duration ?? 0,
          tag_keys: Object.keys(tags),
          tag_values: Object.values(tags),
          annotation_values: (s.annotations ?? []).map((a) => a.value),
          payload: canonicalJson(s),
        };
      });
      await client.insert({ table: `${database}.span_ingest`, values: rows, format: 'JSONEachRow', columns: [...INGEST_COLUMNS] });
    }
    const ms = performance.now() - started;
    console.log(`JSONEachRow objects via @clickhouse/client (comparison): ${rate(spans.length, ms)}`);
  } finally {
    await client.close();
    await store.dropDatabase();
    await store.close();
  }
}

/** Server CPU per span of inserting 50 000 spans, per schema variant (see --view-costs). */
async function viewCosts(url: string): Promise<void> {
  if (url.startsWith('chdb:') || serverCpuMs() === undefined) {
    console.log('--view-costs needs a local clickhouse-server over http (pass --server-pid when several run)');
    return;
  }
  const views = ['spans_mv', 'span_index_mv', 'trace_index_mv', 'span_names_mv', 'tag_values_mv'];
  const variants: Array<{ label: string; drop: string[] }> = [
    { label: 'all views (the schema)', drop: [] },
    { label: 'without spans_mv', drop: ['spans_mv'] },
    { label: 'without span_index_mv', drop: ['span_index_mv'] },
    { label: 'without tag_values_mv', drop: ['tag_values_mv'] },
    { label: 'without trace_index/span_names/tag_values views', drop: ['trace_index_mv', 'span_names_mv', 'tag_values_mv'] },
    { label: 'span_ingest alone (parsing only)', drop: views },
  ];
  const sample = spans.slice(0, Math.min(spans.length, 50_000));
  const client = createClient({ url, compression: { request: false, response: false } });
  const opened: Array<{ label: string; store: ClickHouseStore; cpu: number[] }> = [];
  try {
    for (const variant of variants) {
      const database = `th_bench_views_${process.pid}_${opened.length}_${Math.random().toString(36).slice(2, 8)}`;
      const store = await ClickHouseStore.open({ url, database });
      opened.push({ label: variant.label, store, cpu: [] });
      for (const view of variant.drop) await client.command({ query: `DROP TABLE ${database}.${view}` });
      await store.writer.write(sample.slice(0, 1000));
    }
    for (let round = 0; round < Number(values.rounds); round++) {
      for (const entry of opened) {
        const before = serverCpuMs() ?? 0;
        for (let i = 0; i < sample.length; i += batch) await entry.store.writer.write(sample.slice(i, i + batch));
        entry.cpu.push((((serverCpuMs() ?? 0) - before) * 1000) / sample.length);
      }
    }
    console.log(`server CPU per span by schema variant (${sample.length} spans per round, batch ${batch}; median, then every round):`);
    for (const entry of opened) {
      const sorted = [...entry.cpu].sort((a, b) => a - b);
      const median = sorted[sorted.length >> 1] ?? 0;
      console.log(`  ${entry.label.padEnd(50)} ${median.toFixed(1).padStart(5)} µs   (${entry.cpu.map((c) => c.toFixed(1)).join(' ')})`);
    }
  } finally {
    for (const entry of opened) {
      await entry.store.dropDatabase();
      await entry.store.close();
    }
    await client.close();
  }
}

console.log(`load average before: ${loadavg().map((l) => l.toFixed(1)).join(' ')} (other work on the machine slows these figures)`);
await writerRun(values.url);
if (values['compare-json']) await jsonRun(values.url);
if (values.chdb) await writerRun('chdb:');
if (values['view-costs']) await viewCosts(values.url);
