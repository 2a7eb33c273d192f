// Benchmark of @tracehouse/instrumentation (`npm run bench -w instrumentation`).
//
// 1. The exporter's own cost per span: ReadableSpan -> Zipkin conversion and
//    encoding, on realistic HTTP spans made by the real SDK. Goal: <= 2 µs.
// 2. An HTTP hello-world server's throughput at saturation (autocannon; the
//    server in a child process) without tracing, with the SDK and a no-op
//    exporter, and with the SDK and this exporter publishing to the real
//    RabbitMQ (gzipped bodies, the default; and uncompressed), in the same
//    run. Goal: the exporter costs <= 10% of the throughput beyond the SDK's
//    own cost.
//
// Environment: BENCH_SECONDS (per configuration and round, default 4; 0 skips part 2), BENCH_ROUNDS
// (default 10; the four servers run side by side, the load moves between them, every other round
// in reverse order), BENCH_CONNECTIONS (default 32), TRACEHOUSE_RABBITMQ_URL.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { connect } from 'amqplib';
import autocannon from 'autocannon';
import { compressBody } from '../body-compression.js';
import { DEFAULT_MAX_MESSAGE_BYTES } from '../config.js';
import { RabbitMqSpanExporter } from '../rabbitmq-span-exporter.js';
import { SpanBuffer } from '../span-buffer.js';
import { spanEncoder, spanWriter, wireFormat } from '../wire-format.js';
import { ZipkinSpanConverter } from '../zipkin-conversion.js';
import { cpuMicrosOfStat, statCommand } from './proc-cpu.js';

const RABBITMQ_URL = process.env.TRACEHOUSE_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);

const USER_AGENTS = [
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0',
  'okhttp/4.12.0',
  'python-requests/2.31.0',
];
/**
 * Spans shaped like what instrumentation-http records: a server span, a client
 * span under it, some with an event. Values vary as they would across many
 * requests (a path per item, a pool of keep-alive client connections, a few
 * user agents and statuses), so the encoder's caches of repeated values get
 * no more help than in production.
 */
function realisticSpans(pairs: number): ReadableSpan[] {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      'service.name': 'checkout',
      'service.version': '2.4.1',
      'service.instance.id': 'checkout-7d9f8-abcde',
      'host.name': 'node-17',
      'process.pid': 4242,
    }),
    spanProcessors: [new SimpleSpanProcessor(memory)],
  });
  const tracer = provider.getTracer('@opentelemetry/instrumentation-http', '0.223.0');
  for (let i = 0; i < pairs; i++) {
    const server = tracer.startSpan('GET /api/cart/:id', {
      kind: SpanKind.SERVER,
      attributes: {
        'http.request.method': 'GET',
        'url.scheme': 'http',
        'url.path': `/api/cart/${i}`,
        'server.address': 'checkout.internal',
        'server.port': 8080,
        'network.peer.address': `10.2.3.${i % 13}`,
        'network.peer.port': 40_000 + ((i * 7919) % 211),
        'network.protocol.version': '1.1',
        'client.address': `10.2.3.${i % 13}`,
        'user_agent.original': USER_AGENTS[i % USER_AGENTS.length] as string,
        'http.route': '/api/cart/:id',
        'http.response.status_code': i % 20 === 0 ? 404 : 200,
      },
    });
    const client = tracer.startSpan(
      'GET',
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'http.request.method': 'GET',
          'server.address': 'inventory.internal',
          'server.port': 9000,
          'url.full': `http://inventory.internal:9000/stock/${i}`,
          'network.peer.address': '10.2.9.9',
          'network.peer.port': 9000,
          'http.response.status_code': i % 50 === 0 ? 503 : 200,
        },
      },
      trace.setSpan(context.active(), server),
    );
    if (i % 5 === 0) client.addEvent('retry', { attempt: 1 });
    if (i % 50 === 0) client.setStatus({ code: SpanStatusCode.ERROR, message: 'Service Unavailable' });
    client.end();
    server.end();
  }
  return memory.getFinishedSpans();
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/**
 * A distribution-free confidence interval for the median of `values`: their
 * k-th smallest and k-th largest, k the largest for which the interval holds
 * the median with at least `confidence` (1 - 2 P[Binomial(n, 1/2) < k]).
 * Undefined when there are too few values for that confidence.
 */
function medianInterval(values: number[], confidence: number): { low: number; high: number; coverage: number } | undefined {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  let pmf = 0.5 ** n; // P[X = k - 1], X ~ Binomial(n, 1/2)
  let cdf = pmf; // P[X <= k - 1]
  let found: { low: number; high: number; coverage: number } | undefined;
  for (let k = 1; 2 * k <= n; k++) {
    const coverage = 1 - 2 * cdf;
    if (coverage < confidence) break;
    found = { low: sorted[k - 1] as number, high: sorted[n - k] as number, coverage };
    pmf = (pmf * (n - k + 1)) / k;
    cdf += pmf;
  }
  return found;
}

interface Cost {
  /** Elapsed microseconds per span. */
  wall: number;
  /** Process CPU microseconds per span (fairer on a shared, loaded machine; includes GC threads). */
  cpu: number;
  /** CPU of the fastest round (what a neighbour's load inflates least), when there are rounds. */
  bestCpu?: number;
}

function format(cost: Cost): string {
  const best = cost.bestCpu === undefined ? '' : `, fastest round ${cost.bestCpu.toFixed(2)}`;
  return `${cost.cpu.toFixed(2)} µs CPU (${cost.wall.toFixed(2)} µs elapsed${best})`;
}

/**
 * Median over rounds of the cost per span of each variant; the variants take
 * turns within every round, so a noisy neighbour weighs on all of them alike.
 */
function perSpan<K extends string>(
  spans: readonly ReadableSpan[],
  rounds: number,
  variants: Record<K, (span: ReadableSpan) => void>,
): Record<K, Cost> {
  const names = Object.keys(variants) as K[];
  const walls = new Map<K, number[]>(names.map((name) => [name, []]));
  const cpus = new Map<K, number[]>(names.map((name) => [name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const name of names) {
      const work = variants[name];
      const cpu = process.cpuUsage();
      const start = process.hrtime.bigint();
      for (const span of spans) work(span);
      walls.get(name)?.push(Number(process.hrtime.bigint() - start) / 1000 / spans.length);
      const used = process.cpuUsage(cpu);
      cpus.get(name)?.push((used.user + used.system) / spans.length);
    }
  }
  const costs = {} as Record<K, Cost>;
  for (const name of names) {
    const cpu = cpus.get(name) ?? [];
    costs[name] = { wall: median(walls.get(name) ?? []), cpu: median(cpu), bestCpu: Math.min(...cpu) };
  }
  return costs;
}

async function exportCost(spans: ReadableSpan[]): Promise<Cost> {
  // Nothing listens on port 1: the spans stay buffered, so this times export() itself.
  const exporter = new RabbitMqSpanExporter({
    rabbitmqUrl: 'amqp://127.0.0.1:1',
    maxBufferedSpans: spans.length * 2,
    maxBufferedBytes: 1024 * 1024 * 1024,
    shutdownTimeoutMillis: 0,
    meterProvider: false,
  });
  const batch = 512;
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  for (let i = 0; i < spans.length; i += batch) {
    await new Promise((resolve) => exporter.export(spans.slice(i, i + batch), resolve));
  }
  const wall = Number(process.hrtime.bigint() - start) / 1000 / spans.length;
  const used = process.cpuUsage(cpu);
  await exporter.shutdown();
  return { wall, cpu: (used.user + used.system) / spans.length };
}

/**
 * The whole path in this process: export() of batches as the batch processor
 * hands them over, conversion, encoding, framing, amqplib publishing and
 * confirms from the real RabbitMQ, until every span is confirmed.
 */
async function publishCost(spans: ReadableSpan[], queue: string): Promise<Cost> {
  const exporter = new RabbitMqSpanExporter({
    rabbitmqUrl: RABBITMQ_URL,
    queue,
    maxBufferedSpans: spans.length * 2,
    flushTimeoutMillis: 60_000,
    meterProvider: false,
  });
  exporter.start();
  await new Promise((resolve) => exporter.export(spans.slice(0, 1), resolve));
  await exporter.forceFlush(); // connected, queue checked
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  for (let i = 0; i < spans.length; i += 512) {
    await new Promise((resolve) => exporter.export(spans.slice(i, i + 512), resolve));
  }
  await exporter.forceFlush();
  const wall = Number(process.hrtime.bigint() - start) / 1000 / spans.length;
  const used = process.cpuUsage(cpu);
  const stats = exporter.stats();
  await exporter.shutdown();
  if (stats.spansExported !== spans.length + 1) throw new Error(`only ${stats.spansExported} spans confirmed`);
  return { wall, cpu: (used.user + used.system) / spans.length };
}

/**
 * What gzip costs per span on full messages of these spans, compressed as the
 * exporter compresses them (compressBody: on libuv's thread pool, one message
 * at a time), and how much smaller the bodies come out. The process's CPU
 * time counts every thread: the pool's compression and the event loop's
 * callbacks.
 */
async function gzipCost(spans: readonly ReadableSpan[], rounds: number): Promise<{ cpu: number; ratio: number }> {
  const buffer = new SpanBuffer({ maxSpans: spans.length, maxBytes: 1024 * 1024 * 1024 }, wireFormat('json'));
  const write = spanWriter('json');
  for (const span of spans) buffer.commit(write(span, buffer));
  const bodies: Buffer[] = [];
  for (let message = buffer.take(DEFAULT_MAX_MESSAGE_BYTES); message; message = buffer.take(DEFAULT_MAX_MESSAGE_BYTES)) {
    bodies.push(Buffer.from(message.body));
  }
  const cpus: number[] = [];
  let plain = 0;
  let zipped = 0;
  for (let round = 0; round < rounds; round++) {
    const cpu = process.cpuUsage();
    for (const body of bodies) {
      plain += body.length;
      zipped += (await compressBody(body, 'gzip')).body.length;
    }
    const used = process.cpuUsage(cpu);
    cpus.push((used.user + used.system) / spans.length);
  }
  return { cpu: median(cpus), ratio: plain / zipped };
}

async function spanCost(): Promise<void> {
  const spans = realisticSpans(10_000);
  const converter = new ZipkinSpanConverter();
  const json = wireFormat('json');
  const encodeJson = spanEncoder('json');
  const writeJson = spanWriter('json');
  const encodeProto = spanEncoder('proto3');
  // As in the exporter: written into the buffer's reused slabs, which are released every batch of 512.
  const buffer = new SpanBuffer({ maxSpans: 1024, maxBytes: 64 * 1024 * 1024 }, wireFormat('json'));
  let bytes = 0;
  const variants = {
    convert: (s: ReadableSpan) => void converter.convert(s),
    // The exporter's JSON path: the fused encoder (zipkin-json-encoder.ts) writing into the SpanBuffer.
    json: (s: ReadableSpan) => {
      const length = writeJson(s, buffer);
      bytes += length;
      buffer.commit(length);
      if (buffer.length === 512) buffer.clear();
    },
    // The same encoder writing into fresh slabs, a Buffer view per span (what the exporter did before).
    jsonFreshSlabs: (s: ReadableSpan) => void encodeJson(s),
    // What it replaced, and still the reference for its bytes: convert, JSON.stringify, Buffer.from.
    jsonViaObject: (s: ReadableSpan) => void json.encodeSpan(converter.convert(s)),
    proto: (s: ReadableSpan) => void encodeProto(s),
  };
  perSpan(spans, 3, variants); // warm up the JIT on every path
  bytes = 0;
  const ROUNDS_PER_VARIANT = 9;
  const { convert, json: jsonTotal, jsonFreshSlabs, jsonViaObject, proto: protoTotal } = perSpan(spans, ROUNDS_PER_VARIANT, variants);
  await exportCost(spans); // warm-up
  const exports = [await exportCost(spans), await exportCost(spans), await exportCost(spans)];
  const exportTotal = { wall: median(exports.map((c) => c.wall)), cpu: median(exports.map((c) => c.cpu)) };
  const averageBytes = Math.round(bytes / (ROUNDS_PER_VARIANT * spans.length));
  const load = (await import('node:os')).loadavg()[0] ?? 0;
  console.log(
    '\n== exporter cost per span (realistic HTTP spans, %d spans, median of rounds; load average %s on %d CPUs) ==',
    spans.length,
    load.toFixed(1),
    (await import('node:os')).availableParallelism(),
  );
  console.log(`conversion only                        ${format(convert)}`);
  console.log(`conversion + JSON v2 encoding          ${format(jsonTotal)}   goal <= 2 µs; ${averageBytes} B/span`);
  console.log(
    `  (into fresh slabs, a view per span     ${format(jsonFreshSlabs)}; reused / fresh ${(jsonTotal.cpu / jsonFreshSlabs.cpu).toFixed(2)})`,
  );
  console.log(
    `  (via a Zipkin object + JSON.stringify  ${format(jsonViaObject)}; fused / via object ${(jsonTotal.cpu / jsonViaObject.cpu).toFixed(2)})`,
  );
  console.log(`conversion + proto3 encoding           ${format(protoTotal)}`);
  console.log(`export() into the buffer (JSON, all)   ${format(exportTotal)}`);
  const gzip = await gzipCost(spans, ROUNDS_PER_VARIANT);
  console.log(`gzip of full JSON messages (level 1)   ${gzip.cpu.toFixed(2)} µs CPU (libuv's threads and the event loop); bodies ${gzip.ratio.toFixed(1)}x smaller`);

  const queue = `th-bench-${randomBytes(4).toString('hex')}`;
  try {
    await publishCost(spans, queue); // warm-up
    const publishes = [await publishCost(spans, queue), await publishCost(spans, queue), await publishCost(spans, queue)];
    const publish = { wall: median(publishes.map((c) => c.wall)), cpu: median(publishes.map((c) => c.cpu)) };
    console.log(`export() to RabbitMQ until confirmed     ${format(publish)}   (everything in this process, JSON, gzipped)`);
  } finally {
    const connection = await connect(RABBITMQ_URL);
    const channel = await connection.createChannel();
    await channel.deleteQueue(queue).catch(() => undefined);
    await connection.close();
  }
}

interface Server {
  child: ChildProcess;
  port: number;
}

async function startServer(mode: string, queue: string, nodeFlags: string[] = []): Promise<Server> {
  const script = fileURLToPath(new URL('./hello-server.js', import.meta.url));
  const child = spawn(process.execPath, [...nodeFlags, script, mode], {
    env: {
      PATH: process.env.PATH ?? '',
      TRACEHOUSE_RABBITMQ_URL: RABBITMQ_URL,
      TRACEHOUSE_QUEUE: queue,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) resolve((JSON.parse(out.split('\n')[0] as string) as { port: number }).port);
    });
    child.once('exit', (code) => reject(new Error(`${mode} server exited with ${code}`)));
  });
  return { child, port };
}

async function stopServer(server: Server): Promise<void> {
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  server.child.kill('SIGTERM');
  await exited;
}

async function saturate(port: number, seconds: number): Promise<autocannon.Result> {
  return autocannon({ url: `http://127.0.0.1:${port}/`, connections: CONNECTIONS, duration: seconds });
}

interface ServerStats {
  exporter?: Record<string, unknown>;
  cpuMicros: number;
  /** The part of cpuMicros spent in the kernel (socket writes: HTTP responses, and the exporter's to the broker). */
  systemMicros: number;
  /** The main thread's (the event loop's) part of cpuMicros, in steps of 10 ms; absent without /proc. */
  mainThreadMicros?: number;
  /** Main-thread garbage-collection pauses, included in cpuMicros. */
  gcMicros: number;
}

async function stats(port: number): Promise<ServerStats> {
  const response = await fetch(`http://127.0.0.1:${port}/__stats`);
  return (await response.json()) as ServerStats;
}

/** CPU time (µs) used so far by the RabbitMQ broker (beam.smp) on this machine, from /proc; 0 if not found. */
function brokerCpuMicros(): number {
  let micros = 0;
  try {
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        if (statCommand(stat) === 'beam.smp') micros += cpuMicrosOfStat(stat);
      } catch {
        // the process ended meanwhile
      }
    }
  } catch {
    return 0;
  }
  return micros;
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}

/**
 * Share of the server's busy CPU spent in the exporter: samples of a V8 CPU
 * profile whose stack includes this package's code or amqplib (so JSON
 * encoding and AMQP socket writes count). Unlike req/s, this does not depend
 * on what else the machine is running. Only samples taken between `from` and
 * `to` (process.hrtime microseconds: V8 stamps samples with the same
 * monotonic clock) count: the profile also covers start-up (loading amqplib,
 * connecting), warm-up and shutdown, which would otherwise add a few points.
 * The exporter's samples are also split by the file of the function they
 * were taken in, to tell where a cut would pay off (see `exporterPart`).
 */
function exporterShare(profileDir: string, from: number, to: number): { share: number; parts: Map<string, number> } {
  const file = readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile'));
  if (file === undefined) throw new Error('no CPU profile written');
  const profile = JSON.parse(readFileSync(join(profileDir, file), 'utf8')) as {
    startTime: number;
    nodes: ProfileNode[];
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  let busy = 0;
  const partTimes = new Map<string, number>();
  let time = profile.startTime;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    time += delta;
    if (time < from || time > to) return;
    const node = byId.get(id);
    if (node === undefined || node.callFrame.functionName === '(idle)') return;
    busy += delta;
    for (let current: number | undefined = id; current !== undefined; current = parentOf.get(current)) {
      if (exporterPart(byId.get(current)?.callFrame.url ?? '') !== undefined) {
        // Counted under the part of the function the sample was taken in (Node.js or the kernel when not the exporter's own).
        const part = exporterPart(node.callFrame.url) ?? 'Node.js and the kernel (socket writes, copies, timers)';
        partTimes.set(part, (partTimes.get(part) ?? 0) + delta);
        return;
      }
    }
  });
  const parts = new Map([...partTimes].sort((a, b) => b[1] - a[1]).map(([part, t]) => [part, t / busy]));
  return { share: [...parts.values()].reduce((sum, partShare) => sum + partShare, 0), parts };
}

/** Which part of the exporter a function's file belongs to: this package's code (not the bench) or amqplib; else undefined. */
function exporterPart(url: string): string | undefined {
  if (url.includes('/amqplib/')) return 'amqplib (framing, confirms)';
  if (!url.includes('/instrumentation/dist/') || url.includes('/bench/')) return undefined;
  return /\/(zipkin-|wire-format)/.test(url) ? 'conversion and encoding' : 'export, buffer and publishing';
}

async function profiledRun(queue: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'th-bench-profile-'));
  let from: number;
  let to: number;
  try {
    const server = await startServer('rabbitmq', queue, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
    try {
      await saturate(server.port, 2);
      from = Number(process.hrtime.bigint() / 1000n);
      const result = await saturate(server.port, Math.max(SECONDS, 10)); // enough samples
      to = Number(process.hrtime.bigint() / 1000n);
      console.log(`profiled rabbitmq run: ${result.requests.average.toFixed(0)} req/s`);
    } finally {
      await stopServer(server);
    }
    const { share, parts } = exporterShare(dir, from, to);
    console.log(
      `exporter's share of the server's busy CPU at saturation (CPU profile, measured run only)  ${(share * 100).toFixed(1)}%  ` +
        `(= throughput a CPU-bound server loses to it; goal <= 10%)`,
    );
    const breakdown = [...parts].map(([part, partShare]) => `${part} ${(partShare * 100).toFixed(1)}%`);
    console.log(`  of which: ${breakdown.join(', ')}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function throughput(): Promise<void> {
  const queue = `th-bench-${randomBytes(4).toString('hex')}`;
  const modes = ['none', 'noop', 'rabbitmq', 'uncompressed'] as const;
  type PerMode = Record<(typeof modes)[number], number[]>;
  const perMode = (): PerMode => ({ none: [], noop: [], rabbitmq: [], uncompressed: [] });
  /** The medians of one figure for the four servers, in the order of `modes`. */
  const medians = (figure: PerMode): string => modes.map((mode) => median(figure[mode]).toFixed(1)).join(', ');
  const results = perMode();
  const cpuPerRequest = perMode();
  const systemPerRequest = perMode();
  const gcPerRequest = perMode();
  const mainPerRequest = perMode();
  const brokerPerRequest = perMode();
  console.log(
    `\n== HTTP hello world at saturation (autocannon, ${CONNECTIONS} connections, ${SECONDS} s x ${ROUNDS} rounds per configuration) ==`,
  );
  // The four servers run side by side (an idle one costs nothing) and the load moves from one to the
  // next every SECONDS: configurations compared within a round ran seconds apart, under the same load
  // from the rest of the machine. Every other round goes in reverse order, so a load that rises or falls
  // weighs on all of them alike.
  const servers = new Map<(typeof modes)[number], Server>();
  try {
    for (const mode of modes) servers.set(mode, await startServer(mode, queue));
    for (const mode of modes) await saturate((servers.get(mode) as Server).port, 2); // warm-up
    for (let round = 0; round < ROUNDS; round++) {
      for (const mode of round % 2 === 0 ? modes : [...modes].reverse()) {
        const server = servers.get(mode) as Server;
        const before = await stats(server.port);
        const brokerBefore = brokerCpuMicros();
        const result = await saturate(server.port, SECONDS);
        const after = await stats(server.port);
        const brokerMicros = brokerCpuMicros() - brokerBefore;
        const brokerShare = brokerMicros / (result.duration * 1_000_000);
        brokerPerRequest[mode].push(brokerMicros / result.requests.total);
        const failed = result.errors + result.non2xx + result.timeouts;
        const cpu = (after.cpuMicros - before.cpuMicros) / result.requests.total;
        const system = (after.systemMicros - before.systemMicros) / result.requests.total;
        systemPerRequest[mode].push(system);
        const gc = (after.gcMicros - before.gcMicros) / result.requests.total;
        gcPerRequest[mode].push(gc);
        results[mode].push(result.requests.average);
        cpuPerRequest[mode].push(cpu);
        let eventLoop = '';
        if (after.mainThreadMicros !== undefined && before.mainThreadMicros !== undefined) {
          const main = (after.mainThreadMicros - before.mainThreadMicros) / result.requests.total;
          mainPerRequest[mode].push(main);
          eventLoop = `event loop ${main.toFixed(1)}, `;
        }
        const extra = after.exporter === undefined ? '' : ` exporter: ${JSON.stringify(after.exporter)}`;
        console.log(
          `round ${round + 1} ${mode.padEnd(8)} ${result.requests.average.toFixed(0).padStart(7)} req/s  ` +
            `server CPU ${cpu.toFixed(1)} µs/request (${eventLoop}kernel ${system.toFixed(1)}, GC ${gc.toFixed(1)})  broker ${(brokerShare * 100).toFixed(0)}% of a core  ` +
            `p99 ${result.latency.p99} ms  failed ${failed}${extra}`,
        );
      }
    }
    for (const server of servers.values()) await stopServer(server);
    servers.clear();
    await profiledRun(queue);
  } finally {
    for (const server of servers.values()) await stopServer(server);
    const connection = await connect(RABBITMQ_URL);
    const channel = await connection.createChannel();
    const deleted = await channel.deleteQueue(queue).catch(() => ({ messageCount: 0 }));
    console.log(`(deleted bench queue ${queue} holding ${deleted.messageCount} messages)`);
    await connection.close();
  }
  // Ratios within each round (configurations run back to back), then their median: steadier than a
  // ratio of medians taken from different rounds when the machine's load changes between rounds.
  const ratios = (values: (round: number) => number): number[] => results.none.map((_, round) => values(round));
  const perRound = (values: (round: number) => number): number => median(ratios(values));
  const at = (list: number[], round: number): number => list[round] as number;
  /** The loss a ratio's rounds give (1 - ratio, in %), and how far the noise between rounds leaves it uncertain. */
  const lossWithInterval = (values: (round: number) => number): string => {
    const interval = medianInterval(ratios(values), 0.9);
    const loss = `${((1 - perRound(values)) * 100).toFixed(1)}%`;
    if (interval === undefined) return loss;
    const range = `${((1 - interval.high) * 100).toFixed(1)} to ${((1 - interval.low) * 100).toFixed(1)}%`;
    return `${loss}, ${range} at ${(interval.coverage * 100).toFixed(0)}% confidence`;
  };
  const rabbitVsNoop = (r: number): number => at(results.rabbitmq, r) / at(results.noop, r);
  const cpuKeptInRound = (r: number): number => at(cpuPerRequest.noop, r) / at(cpuPerRequest.rabbitmq, r);
  const rabbitPerNoop = perRound(rabbitVsNoop);
  const noopPerNone = perRound((r) => at(results.noop, r) / at(results.none, r));
  const cpuKept = perRound(cpuKeptInRound);
  const lostPointsOfNone = perRound((r) => (at(results.noop, r) - at(results.rabbitmq, r)) / at(results.none, r));
  const uncompressedVsNoop = (r: number): number => at(results.uncompressed, r) / at(results.noop, r);
  const cpuKeptUncompressedInRound = (r: number): number => at(cpuPerRequest.noop, r) / at(cpuPerRequest.uncompressed, r);
  const none = median(results.none);
  const noop = median(results.noop);
  const rabbit = median(results.rabbitmq);
  const cpuNone = median(cpuPerRequest.none);
  const cpuNoop = median(cpuPerRequest.noop);
  const cpuRabbit = median(cpuPerRequest.rabbitmq);
  console.log('\nmedian req/s: none %s, SDK + no-op exporter %s, SDK + RabbitMQ exporter %s', none.toFixed(0), noop.toFixed(0), rabbit.toFixed(0));
  console.log('ratios below: median over rounds of the ratio within the round (ratio of the medians above in brackets)');
  console.log(
    `SDK + no-op exporter / no tracing        ${noopPerNone.toFixed(3)} [${(noop / none).toFixed(3)}]  (the SDK's own cost: ${((1 - noopPerNone) * 100).toFixed(1)}%)`,
  );
  console.log(
    `SDK + RabbitMQ exporter / SDK + no-op    ${rabbitPerNoop.toFixed(3)} [${(rabbit / noop).toFixed(3)}]  ` +
      `(lost to the exporter: ${lossWithInterval(rabbitVsNoop)}; goal <= 10%)`,
  );
  // Every other round loads the no-op server just before the RabbitMQ one, the others just after. On
  // a noisy VM the two halves came out 4 to 18 points apart in four runs (0.764 with the no-op server
  // first, 0.939 second), in either direction: how far half a run's rounds can mislead.
  if (ROUNDS >= 2) {
    const byOrder = (parity: number): string =>
      median(ratios(rabbitVsNoop).filter((_, round) => round % 2 === parity)).toFixed(3);
    console.log(`  the same in rounds where the no-op server ran first ${byOrder(0)}, second ${byOrder(1)} (the median is over both)`);
  }
  // The goal can also be read in points of the untraced server's throughput (the SDK loses X% of it,
  // SDK + exporter X + Y%); that reading divides by a larger figure, so the line above stays the one judged.
  console.log(
    `(SDK + no-op - SDK + RabbitMQ) / no tracing  ${lostPointsOfNone.toFixed(3)} [${((noop - rabbit) / none).toFixed(3)}]  ` +
      `(the exporter's loss in points of the untraced throughput: ${(lostPointsOfNone * 100).toFixed(1)})`,
  );
  // The broker runs on the same (small, shared) machine and takes CPU from the
  // server too; the server's own CPU per request isolates what the exporter
  // costs the service, and is steadier than req/s under a noisy load.
  console.log(
    `\nserver CPU per request (median): none ${cpuNone.toFixed(1)} µs, SDK + no-op ${cpuNoop.toFixed(1)} µs, SDK + RabbitMQ ${cpuRabbit.toFixed(1)} µs` +
      ` (of which in the kernel: ${medians(systemPerRequest)} µs; in garbage-collection pauses: ${medians(gcPerRequest)} µs)`,
  );
  console.log(
    `throughput a CPU-bound server keeps, RabbitMQ exporter vs no-op (CPU ratio)  ${cpuKept.toFixed(3)} [${(cpuNoop / cpuRabbit).toFixed(3)}]  ` +
      `(lost to the exporter: ${lossWithInterval(cpuKeptInRound)}; goal <= 10%)`,
  );
  // The event loop is what a single-threaded service runs out of first; the rest of the process's CPU
  // (libuv's pool, where gzip runs, and V8's helper threads) can go to other cores.
  if (mainPerRequest.rabbitmq.length === ROUNDS && mainPerRequest.noop.length === ROUNDS) {
    const eventLoopKept = (r: number): number => at(mainPerRequest.noop, r) / at(mainPerRequest.rabbitmq, r);
    const otherThreads = modes.map((mode) => median(cpuPerRequest[mode].map((cpu, r) => cpu - at(mainPerRequest[mode], r))).toFixed(1));
    console.log(
      `event loop CPU per request (median): ${medians(mainPerRequest)} µs; the process's other threads: ${otherThreads.join(', ')} µs ` +
        `(event loop lost to the exporter: ${lossWithInterval(eventLoopKept)})`,
    );
  }
  // On a machine that also runs the broker, receiving and storing the spans takes CPU the server
  // would otherwise have (RabbitMQ binds a scheduler thread to every core): part of the req/s
  // loss above, none of the CPU ratio.
  console.log(
    `broker CPU per request while the RabbitMQ server was loaded (median)  ${median(brokerPerRequest.rabbitmq).toFixed(1)} µs ` +
      `(while the no-op server was: ${median(brokerPerRequest.noop).toFixed(1)} µs)`,
  );
  // The same exporter publishing its bodies as they are (compression 'none'), as Zipkin's own senders do.
  console.log(
    `\nuncompressed bodies: req/s vs no-op ${perRound(uncompressedVsNoop).toFixed(3)} (lost: ${lossWithInterval(uncompressedVsNoop)}), ` +
      `CPU ratio ${perRound(cpuKeptUncompressedInRound).toFixed(3)} (lost: ${lossWithInterval(cpuKeptUncompressedInRound)}), ` +
      `server CPU ${median(cpuPerRequest.uncompressed).toFixed(1)} µs/request, broker ${median(brokerPerRequest.uncompressed).toFixed(1)} µs/request`,
  );
}

await spanCost();
if (SECONDS > 0) await throughput();
