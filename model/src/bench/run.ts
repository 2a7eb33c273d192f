// `npm run bench -w model`: decode+validate throughput for realistic spans
// (10 tags, 2 annotations). Several timed rounds, the median is reported.
import { gzipSync } from 'node:zlib';
import { decodeSpans, encodeJsonV2, encodeProto3 } from '../index.js';
import { realisticSpans } from './realistic-spans.js';

const SPANS_PER_MESSAGE = 500;
const ROUNDS = 7;
const ROUND_MS = 700;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/**
 * Runs `fn` (which handles `spansPerCall` spans) for ROUNDS rounds and prints
 * the median rate. The rate is per CPU-second of this process (user+system,
 * from process.cpuUsage), which is what "on one core" means and what stays
 * meaningful when other work shares the machine; wall-clock rates are printed
 * too.
 */
function measure(label: string, spansPerCall: number, fn: () => void): number {
  for (let i = 0; i < 20; i++) fn(); // warm-up
  const cpuRates: number[] = [];
  const wallRates: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    let calls = 0;
    const start = process.hrtime.bigint();
    const cpuStart = process.cpuUsage();
    let elapsed: number;
    do {
      fn();
      calls++;
      elapsed = Number(process.hrtime.bigint() - start) / 1e6;
    } while (elapsed < ROUND_MS);
    const cpu = process.cpuUsage(cpuStart);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    cpuRates.push((calls * spansPerCall) / (cpuMs / 1000));
    wallRates.push((calls * spansPerCall) / (elapsed / 1000));
  }
  const m = median(cpuRates);
  const fmt = (n: number) => Math.round(n).toLocaleString('en');
  console.log(
    `${label.padEnd(34)} ${fmt(m).padStart(10)} spans/CPU-s  (median of ${ROUNDS}, min ${fmt(Math.min(...cpuRates))}, max ${fmt(Math.max(...cpuRates))}; wall-clock median ${fmt(median(wallRates))} spans/s)`,
  );
  return m;
}

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
const jsonParseOnly = measure('JSON.parse alone (baseline)', SPANS_PER_MESSAGE, () => {
  JSON.parse(json.toString('utf8'));
});
const jsonRate = measure('JSON v2 decode+validate', SPANS_PER_MESSAGE, () => {
  decodeSpans(json);
});
measure('proto3 decode+validate', SPANS_PER_MESSAGE, () => {
  decodeSpans(proto);
});
measure('gzipped JSON v2 decode+validate', SPANS_PER_MESSAGE, () => {
  decodeSpans(gzJson, { contentEncoding: 'gzip' });
});
measure('JSON v2 encode', SPANS_PER_MESSAGE, () => {
  encodeJsonV2(spans);
});
measure('proto3 encode', SPANS_PER_MESSAGE, () => {
  encodeProto3(spans);
});
const mbPerS = (jsonRate * json.length) / SPANS_PER_MESSAGE / 1e6;
console.log(`JSON v2 decode+validate runs at ${(jsonRate / jsonParseOnly).toFixed(2)}x the speed of JSON.parse alone (same run), ${mbPerS.toFixed(0)} MB of JSON per CPU-second`);
console.log(`goal >= 300,000 spans/s on one core for JSON v2 decode+validate: ${jsonRate >= 300_000 ? 'met' : 'NOT met'} (${Math.round(jsonRate).toLocaleString('en')})`);
