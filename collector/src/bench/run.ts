/**
 * Collector benchmark: the sustained queue -> ClickHouse rate with 1 and 2
 * collector replicas, next to the ceiling measured in the same run: the same
 * rows, encoded beforehand, written straight into ClickHouse by the storage
 * writer in inserts as large as the collector ever makes
 * (TRACEHOUSE_COLLECTOR_INSERT_MAX_SPANS) and with its insert concurrency; no
 * RabbitMQ, no decoding, no encoding: what ClickHouse itself sustains.
 *
 * The load generator publishes from this process while the collectors
 * consume, so RabbitMQ, ClickHouse, the collectors and the publisher share
 * the machine, as in the target. Each phase uses its own database.
 *
 *   npm run bench -w collector -- [--spans 400000] [--per-message 200] [--encoding json|proto] [--gzip] [--replicas 1,2] [--profile DIR]
 *
 * --gzip: the messages are gzipped (fastest level, `content-encoding: gzip`),
 * as @tracehouse/instrumentation publishes them by default.
 *
 * --profile DIR: the collector processes write V8 CPU profiles into DIR
 * (node --cpu-prof), to see where their CPU per span goes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { constants, gzipSync } from 'node:zlib';
import { connect } from 'amqplib';
import { encodeJsonV2, encodeProto3 } from '@tracehouse/model';
import { ClickHouseStore, transcodeSpans, type EncodedSpans } from '@tracehouse/storage';
import { generateSpans } from '@tracehouse/storage/testing';
import { pino } from 'pino';
import { Collector } from '../collector.js';
import { parseConfig } from '../config.js';
import { cpuSeconds, findPid } from './process-cpu.js';

const { values } = parseArgs({
  options: {
    spans: { type: 'string', default: '400000' },
    'per-message': { type: 'string', default: '200' },
    encoding: { type: 'string', default: 'json' },
    gzip: { type: 'boolean', default: false },
    replicas: { type: 'string', default: '1,2' },
    profile: { type: 'string' },
  },
});
const total = Number(values.spans);
const perMessage = Number(values['per-message']);
const replicaCounts = values.replicas.split(',').map(Number);
const config = parseConfig(process.env);
const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin.js');
/** Properties of every published message. */
const publishOptions = values.gzip ? { contentEncoding: 'gzip' } : {};

const rate = (n: number, ms: number): number => Math.round((n / ms) * 1000);
const fmt = (n: number): string => n.toLocaleString('en-US');
const clickhousePid = findPid('clickhouse-server');
const rabbitmqPid = findPid('beam.smp.*rabbit');
const ownCpuSeconds = (): number => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
};

/** CPU of each process over a phase, in µs per span, when /proc can tell. */
class CpuAccount {
  readonly #start = new Map<string, number>();
  readonly #used = new Map<string, number>();
  constructor(readonly processes: Record<string, () => number | undefined>) {
    for (const [name, read] of Object.entries(processes)) {
      const value = read();
      if (value !== undefined) this.#start.set(name, value);
    }
  }
  stop(): void {
    for (const [name, read] of Object.entries(this.processes)) {
      const start = this.#start.get(name);
      const value = read();
      if (start !== undefined && value !== undefined) this.#used.set(name, value - start);
    }
  }
  report(spans: number): string {
    const parts = [...this.#used].map(([name, seconds]) => `${name} ${((seconds * 1e6) / spans).toFixed(1)}`);
    return parts.length === 0 ? '' : `CPU µs/span: ${parts.join(', ')}`;
  }
}

const suffix = (): string => `${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum += Number(line.split(' ').pop());
  return sum;
}

async function ceiling(bodies: readonly Buffer[], spanCount: number): Promise<{ rate: number; cpu: string }> {
  const database = `th_bench_ceiling_${suffix()}`;
  const store = await ClickHouseStore.open({ url: config.clickhouseUrl, database });
  const rowsOf = (body: Buffer): EncodedSpans => (transcodeSpans(body) as { encoded: EncodedSpans }).encoded;
  try {
    await store.writer.writeEncoded(bodies.slice(0, Math.ceil(1_000 / perMessage)).map(rowsOf)); // warm up connection and tables
    // The rows are encoded before the clock starts (message-sized parts, as the
    // collector holds them): the ceiling is what ClickHouse itself sustains.
    const perInsert = Math.max(1, Math.floor(config.insertMaxSpans / perMessage));
    const batches: EncodedSpans[][] = [];
    for (let i = 0; i < bodies.length; i += perInsert) {
      const batch = bodies.slice(i, i + perInsert).map(rowsOf);
      batches.push(batch);
    }
    collectGarbage();
    const cpu = new CpuAccount({ clickhouse: () => cpuSeconds(clickhousePid), writer: ownCpuSeconds });
    const started = performance.now();
    let next = 0;
    let retries = 0;
    // Retry what the collector retries (e.g. a stale keep-alive socket), so both sides face the same rules.
    const write = async (parts: EncodedSpans[]): Promise<void> => {
      for (;;) {
        try {
          return await store.writer.writeEncoded(parts);
        } catch (error) {
          if ((error as { retryable?: unknown }).retryable !== true) throw error;
          retries++;
          console.log(`  (ceiling insert retried: ${(error as Error).message})`);
        }
      }
    };
    await Promise.all(
      Array.from({ length: config.insertConcurrency }, async () => {
        while (next < batches.length) await write(batches[next++]!);
      }),
    );
    const result = rate(spanCount, performance.now() - started);
    cpu.stop();
    if (retries > 0) console.log(`  (ceiling run retried ${retries} inserts)`);
    return { rate: result, cpu: cpu.report(spanCount) };
  } finally {
    await store.dropDatabase().catch(() => undefined);
    await store.close();
  }
}

async function throughQueue(
  bodies: Buffer[],
  spanCount: number,
  replicas: number,
): Promise<{ rate: number; publishRate: number; perReplica: number[]; cpu: string; meanInsert: number; retries: number }> {
  const queue = `th_bench_${suffix()}`;
  const database = queue;
  // Create the schema before the clock starts, as a running deployment has it.
  const store = await ClickHouseStore.open({ url: config.clickhouseUrl, database });
  const children: Array<{ child: ChildProcess; port: number }> = [];
  const connection = await connect(config.rabbitmqUrl);
  try {
    for (let i = 0; i < replicas; i++) {
      const port = await freePort();
      const profile = values.profile === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${values.profile}`];
      const child = spawn(process.execPath, [...profile, BIN], {
        env: {
          ...process.env,
          TRACEHOUSE_QUEUE: queue,
          TRACEHOUSE_CLICKHOUSE_DATABASE: database,
          TRACEHOUSE_COLLECTOR_PORT: String(port),
          TRACEHOUSE_COLLECTOR_HOST: '127.0.0.1',
          TRACEHOUSE_LOG_LEVEL: 'warn',
        },
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      children.push({ child, port });
    }
    for (const { port } of children) {
      for (;;) {
        const ok = await fetch(`http://127.0.0.1:${port}/ready`).then((r) => r.ok, () => false);
        if (ok) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    const channel = await connection.createConfirmChannel();
    // A sustained rate: the collectors first take a warm-up share of the
    // messages (the same bodies; a replay is stored once), so their start-up
    // and JIT compilation are not in the figure, as in a running deployment.
    const warmUp = bodies.slice(0, Math.max(1, Math.round(bodies.length / 10)));
    const warmUpSpans = Math.round((spanCount * warmUp.length) / bodies.length);
    for (const body of warmUp) channel.sendToQueue(queue, body, publishOptions);
    await channel.waitForConfirms();
    await storedAtLeast(children, warmUpSpans);
    const warmUpPerReplica = await Promise.all(children.map(({ port }) => metric(port, 'tracehouse_collector_spans_stored_total')));
    let warmUpInserts = 0;
    for (const { port } of children) warmUpInserts += await metric(port, 'tracehouse_collector_batch_spans_count');
    collectGarbage();
    const cpu = new CpuAccount({
      clickhouse: () => cpuSeconds(clickhousePid),
      rabbitmq: () => cpuSeconds(rabbitmqPid),
      collectors: () => children.reduce<number | undefined>((sum, { child }) => {
        const used = cpuSeconds(child.pid);
        return sum === undefined || used === undefined ? undefined : sum + used;
      }, 0),
      publisher: ownCpuSeconds,
    });
    const started = performance.now();
    // Publish with a window of unconfirmed messages, as a busy sender would.
    // 20 messages (~3 MB): with 100, amqplib queued ~14 MB whenever RabbitMQ
    // pushed back and the publisher burnt 2-3x the CPU per span (1.4 against
    // 2.9-4.3 µs in alternating runs), taking it from the pipeline.
    const window = 20;
    for (let i = 0; i < bodies.length; i += window) {
      for (const body of bodies.slice(i, i + window)) channel.sendToQueue(queue, body, publishOptions);
      await channel.waitForConfirms();
    }
    const published = performance.now() - started;
    await storedAtLeast(children, warmUpPerReplica.reduce((a, b) => a + b, 0) + spanCount);
    const elapsed = performance.now() - started;
    cpu.stop();
    const perReplica = await Promise.all(
      children.map(async ({ port }, i) => (await metric(port, 'tracehouse_collector_spans_stored_total')) - warmUpPerReplica[i]!),
    );
    let inserts = -warmUpInserts;
    let retries = 0;
    for (const { port } of children) {
      inserts += await metric(port, 'tracehouse_collector_batch_spans_count');
      retries += await metric(port, 'tracehouse_collector_insert_retries_total');
    }
    const counted = await store.countSpans();
    if (counted.distinct !== spanCount) throw new Error(`expected ${spanCount} distinct spans, ClickHouse has ${counted.distinct}`);
    return { rate: rate(spanCount, elapsed), publishRate: rate(spanCount, published), perReplica, cpu: cpu.report(spanCount), meanInsert: Math.round(spanCount / Math.max(1, inserts)), retries };
  } finally {
    for (const { child } of children) child.kill('SIGTERM');
    await Promise.all(children.map(({ child }) => new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)))));
    const channel = await connection.createChannel();
    for (const name of [queue, `${queue}.dlq`]) await channel.deleteQueue(name).catch(() => undefined);
    await channel.deleteExchange(`${queue}.dlx`).catch(() => undefined);
    await connection.close();
    await store.dropDatabase().catch(() => undefined);
    await store.close();
  }
}

/** Waits until the collectors together stored `count` spans (their metrics, polled every 50 ms). */
async function storedAtLeast(children: ReadonlyArray<{ port: number }>, count: number): Promise<void> {
  for (;;) {
    let stored = 0;
    for (const { port } of children) stored += await metric(port, 'tracehouse_collector_spans_stored_total');
    if (stored >= count) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * A full collection in this process before a timed phase (the bench runs with
 * --expose-gc), so the garbage of the phase before, hundreds of MB of rows and
 * spans, is not collected on the publisher's account during the next.
 */
function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

async function noopStore(messages: Buffer[], spanCount: number): Promise<number> {
  const queue = `th_bench_noop_${suffix()}`;
  const connection = await connect(config.rabbitmqUrl);
  const channel = await connection.createConfirmChannel();
  await channel.assertQueue(queue, { durable: true });
  for (let i = 0; i < messages.length; i += 100) {
    for (const body of messages.slice(i, i + 100)) channel.sendToQueue(queue, body, publishOptions);
    await channel.waitForConfirms();
  }
  let stored = 0;
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const collector = new Collector({
    config: Object.freeze({ ...config, queue, deadLetterQueue: `${queue}.dlq`, deadLetterExchange: `${queue}.dlx`, adminPort: 0, adminHost: '127.0.0.1' }),
    logger: pino({ level: 'warn' }),
    openStore: () =>
      Promise.resolve({
        writer: {
          writeEncoded: (parts) => {
            for (const part of parts) stored += part.count;
            if (stored >= spanCount) done();
            return Promise.resolve();
          },
        },
        ping: () => Promise.resolve(true),
        close: () => Promise.resolve(),
      }),
  });
  const started = performance.now();
  await collector.start();
  await finished;
  const result = rate(spanCount, performance.now() - started);
  await collector.stop();
  for (const name of [queue, `${queue}.dlq`]) await channel.deleteQueue(name).catch(() => undefined);
  await channel.deleteExchange(`${queue}.dlx`).catch(() => undefined);
  await connection.close();
  return result;
}

// Only the bodies stay: the span objects would be hundreds of MB for this
// process's garbage collector to walk during the timed phases.
const bodies: Buffer[] = [];
let spanCount: number;
{
  const spans = generateSpans({ traces: Math.ceil(total / 10), spansPerTrace: 10, seed: 11, startMicros: (Date.now() - 3_600_000) * 1000 }).slice(0, total);
  const encode = values.encoding === 'proto' ? encodeProto3 : encodeJsonV2;
  for (let i = 0; i < spans.length; i += perMessage) bodies.push(encode(spans.slice(i, i + perMessage)));
  spanCount = spans.length;
}
// What is published: the bodies, or gzipped copies of them (the ceiling writes the bodies' rows either way).
const messages = values.gzip ? bodies.map((body) => gzipSync(body, { level: constants.Z_BEST_SPEED })) : bodies;
const avgBytes = Math.round(bodies.reduce((n, b) => n + b.length, 0) / bodies.length);
const avgSent = Math.round(messages.reduce((n, b) => n + b.length, 0) / messages.length);
console.log(
  `collector bench: ${fmt(total)} spans in ${fmt(bodies.length)} ${values.encoding} messages of ${perMessage} spans (${fmt(avgBytes)} bytes each` +
    `${values.gzip ? `, gzipped to ${fmt(avgSent)}` : ''}); ` +
    `batch ${fmt(config.batchSpans)} spans / ${config.batchAgeMs} ms, inserts of up to ${fmt(config.insertMaxSpans)} spans, ` +
    `insert concurrency ${config.insertConcurrency}, prefetch ${config.prefetch}`,
);

// What the collector itself costs, without ClickHouse: the whole RabbitMQ
// path (deliver, transcode, batch, ack) into a store that accepts instantly,
// from a queue filled beforehand. (A body's rows alone, transcoder against
// decode + encode, are timed by `npm run bench -w storage`.)
console.log(
  `collector without ClickHouse (no-op store, queue filled first; consume, transcode to rows, ack): ${fmt(await noopStore(messages, spanCount))} spans/s`,
);

// The ceiling is measured before and after the queue runs and averaged, so a
// busy neighbour on a shared machine skews both sides alike.
const before = await ceiling(bodies, spanCount);
console.log(`ceiling  (rows encoded beforehand, straight into ClickHouse), before: ${fmt(before.rate)} spans/s  ${before.cpu}`);
const results: Array<{ replicas: number; result: Awaited<ReturnType<typeof throughQueue>> }> = [];
for (const replicas of replicaCounts) results.push({ replicas, result: await throughQueue(messages, spanCount, replicas) });
const after = await ceiling(bodies, spanCount);
console.log(`ceiling  (rows encoded beforehand, straight into ClickHouse), after:  ${fmt(after.rate)} spans/s  ${after.cpu}`);
const top = Math.round((before.rate + after.rate) / 2);
console.log(`ceiling, mean: ${fmt(top)} spans/s`);
for (const { replicas, result } of results) {
  console.log(
    `${replicas} replica${replicas > 1 ? 's' : ' '} (queue -> ClickHouse, publisher running): ${fmt(result.rate)} spans/s = ` +
      `${((result.rate / top) * 100).toFixed(0)}% of ceiling; publish ${fmt(result.publishRate)} spans/s; per replica ${result.perReplica.map(fmt).join(' / ')}; ` +
      `mean insert ${fmt(result.meanInsert)} spans; insert retries ${result.retries}` +
      (result.cpu === '' ? '' : `\n    ${result.cpu}`),
  );
}
