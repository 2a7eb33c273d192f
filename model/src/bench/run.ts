// `npm run bench -w model`: decode+validate throughput for realistic spans
// (10 tags, 2 annotations). Several timed rounds, the median is reported.
import { gzipSync } from 'node:zlib';
import { decodeSpans, encodeJsonV2, encodeProto3 } from '../index.js';
import { decodeSpansWith } from '../decode-spans.js';
import { realisticSpans } from './realistic-spans.js';

const SPANS_PER_MESSAGE = 500;
const ROUNDS = 9;
const ROUND_MS = 400;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

interface Case {
  label: string;
  fn: () => void;
  cpuRates: number[];
  wallRates: number[];
}

/** One timed round of `c`: runs it for ROUND_MS and records its rates. */
function round(c: Case): void {
  let calls = 0;
  const start = process.hrtime.bigint();
  const cpuStart = process.cpuUsage();
  let elapsed: number;
  do {
    c.fn();
    calls++;
    elapsed = Number(process.hrtime.bigint() - start) / 1e6;
  } while (elapsed < ROUND_MS);
  const cpu = process.cpuUsage(cpuStart);
  c.cpuRates.push((calls * SPANS_PER_MESSAGE) / ((cpu.user + cpu.system) / 1e6));
  c.wallRates.push((calls * SPANS_PER_MESSAGE) / (elapsed / 1000));
}

/**
 * Runs every case for ROUNDS rounds, interleaved (round 1 of each case, then
 * round 2 of each, ...) so that load from other processes on the shared
 * machine falls on all cases alike, and prints the median rates. The rate is
 * per CPU-second of this process (user+system, from process.cpuUsage), which
 * is what "on one core" means; wall-clock rates are printed too.
 */
function measureAll(cases: Case[]): void {
  for (const c of cases) for (let i = 0; i < 20; i++) c.fn(); // warm-up
  for (let r = 0; r < ROUNDS; r++) for (const c of cases) round(c);
  const fmt = (n: number) => Math.round(n).toLocaleString('en');
  for (const c of cases) {
    console.log(
      `${c.label.padEnd(44)} ${fmt(median(c.cpuRates)).padStart(10)} spans/CPU-s  (median of ${ROUNDS}, min ${fmt(Math.min(...c.cpuRates))}, max ${fmt(Math.max(...c.cpuRates))}; wall-clock median ${fmt(median(c.wallRates))} spans/s)`,
    );
  }
}

const bench = (label: string, fn: () => void): Case => ({ label, fn, cpuRates: [], wallRates: [] });

function check(body: Uint8Array, options: { contentEncoding?: string } = {}): void {
  const r = decodeSpans(body, options);
  if (!r.ok || r.spans.length !== SPANS_PER_MESSAGE || r.dropped.length !== 0) {
    throw new Error(`benchmark body did not decode cleanly: ${JSON.stringify(r).slice(0, 300)}`);
  }
}

const spans = realisticSpans(SPANS_PER_MESSAGE);
const json = encodeJsonV2(spans);
const proto = encodeProto3(spans);
const gzJson = gzipSync(json);
check(json);
check(proto);
check(gzJson, { contentEncoding: 'gzip' });

console.log(`node ${process.version}, ${SPANS_PER_MESSAGE} spans per message (10 tags, 2 annotations, 2 endpoints)`);
console.log(`JSON v2 ${json.length} bytes (${Math.round(json.length / SPANS_PER_MESSAGE)} B/span), proto3 ${proto.length} bytes, gzipped JSON ${gzJson.length} bytes`);
const parseOnly = bench('JSON.parse alone (baseline)', () => {
  JSON.parse(json.toString('utf8'));
});
const jsonDecode = bench('JSON v2 decode+validate', () => {
  decodeSpans(json);
});
const jsonGeneral = bench('JSON v2 decode+validate, general path only', () => {
  decodeSpansWith(json, {}, false);
});
measureAll([
  parseOnly,
  jsonDecode,
  jsonGeneral,
  bench('proto3 decode+validate', () => {
    decodeSpans(proto);
  }),
  bench('gzipped JSON v2 decode+validate', () => {
    decodeSpans(gzJson, { contentEncoding: 'gzip' });
  }),
  bench('JSON v2 encode', () => {
    encodeJsonV2(spans);
  }),
  bench('proto3 encode', () => {
    encodeProto3(spans);
  }),
]);
const jsonRate = median(jsonDecode.cpuRates);
const jsonParseOnly = median(parseOnly.cpuRates);
const mbPerS = (jsonRate * json.length) / SPANS_PER_MESSAGE / 1e6;
console.log(`JSON v2 decode+validate runs at ${(jsonRate / jsonParseOnly).toFixed(2)}x the speed of JSON.parse alone (same run), ${mbPerS.toFixed(0)} MB of JSON per CPU-second`);
console.log(`JSON v2 fast path: ${(jsonRate / median(jsonGeneral.cpuRates)).toFixed(2)}x the speed of the general path alone (JSON.parse + normalizeSpan, ${(median(jsonGeneral.cpuRates) / jsonParseOnly).toFixed(2)}x JSON.parse)`);
console.log(`goal >= 300,000 spans/s on one core for JSON v2 decode+validate: ${jsonRate >= 300_000 ? 'met' : 'NOT met'} (${Math.round(jsonRate).toLocaleString('en')})`);
