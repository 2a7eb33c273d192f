/**
 * Shared pieces of the collector's cross-package tests: real collector
 * processes (node collector/dist/bin.js), their /metrics, a publisher that
 * sends like a Zipkin reporter, span generators and waiting helpers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect as dial, createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type ChannelModel, type ConfirmChannel, type Options } from 'amqplib';
import type { Span } from '@tracehouse/model';
import { ClickHouseStore } from '@tracehouse/storage';
import { afterAll, beforeAll } from 'vitest';

export const RABBITMQ_URL = process.env.TRACEHOUSE_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
export const CLICKHOUSE_URL = process.env.TRACEHOUSE_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123';
export const COLLECTOR_BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'collector', 'dist', 'bin.js');

export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export async function waitFor(
  check: () => boolean | Promise<boolean>,
  o: { timeoutMs: number; what: string; intervalMs?: number; stop?: () => boolean },
): Promise<void> {
  const deadline = Date.now() + o.timeoutMs;
  for (;;) {
    if (await check()) return;
    if (o.stop?.()) throw new Error(`gave up waiting for ${o.what}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${o.timeoutMs} ms waiting for ${o.what}`);
    await new Promise((resolve) => setTimeout(resolve, o.intervalMs ?? 100));
  }
}

// ---- spans ---------------------------------------------------------------------

let counter = 0;

/** `count` spans in traces of `perTrace`, with ids unique across the whole test run. */
export function makeSpans(count: number, o: { perTrace?: number; service?: string; nowMicros?: number } = {}): Span[] {
  const perTrace = o.perTrace ?? 10;
  const now = o.nowMicros ?? Date.now() * 1000;
  const service = o.service ?? 'collector-test';
  const runId = randomBytes(8).toString('hex');
  const spans: Span[] = [];
  let traceId = '';
  let rootId = '';
  for (let i = 0; i < count; i++) {
    const n = ++counter;
    const id = randomBytes(8).toString('hex');
    if (i % perTrace === 0) {
      traceId = `${runId}${n.toString(16).padStart(16, '0')}`;
      rootId = id;
    }
    spans.push({
      traceId,
      id,
      ...(id === rootId ? {} : { parentId: rootId }),
      name: `op-${i % 7}`,
      kind: i % 2 === 0 ? 'SERVER' : 'CLIENT',
      timestamp: now - (count - i) * 10,
      duration: 100 + (i % 1000),
      localEndpoint: { serviceName: service, ipv4: '10.0.0.1' },
      tags: { 'http.method': 'GET', 'http.path': `/items/${i % 50}` },
    });
  }
  return spans;
}

export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

// ---- RabbitMQ --------------------------------------------------------------------

export class Rabbit {
  private constructor(
    readonly connection: ChannelModel,
    readonly channel: ConfirmChannel,
  ) {}

  static async open(url = RABBITMQ_URL): Promise<Rabbit> {
    const connection = await connect(url);
    connection.on('error', () => undefined);
    const channel = await connection.createConfirmChannel();
    channel.on('error', () => undefined);
    return new Rabbit(connection, channel);
  }

  /** Publishes like Zipkin's RabbitMQSender: default exchange, routing key = queue, options as given (none by default). */
  async publish(queue: string, body: Buffer, options?: Options.Publish): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.channel.sendToQueue(queue, body, options, (error: unknown) => (error ? reject(toError(error)) : resolve()));
    });
  }

  /** Publishes many bodies, keeping a window of unconfirmed messages. */
  async publishAll(queue: string, bodies: readonly Buffer[], options?: Options.Publish): Promise<void> {
    const window = 200;
    for (let i = 0; i < bodies.length; i += window) {
      await Promise.all(bodies.slice(i, i + window).map((body) => this.publish(queue, body, options)));
    }
  }

  async messageCount(queue: string): Promise<number> {
    const channel = await this.connection.createChannel();
    channel.on('error', () => undefined);
    try {
      return (await channel.checkQueue(queue)).messageCount;
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  /** Drains a queue with basic.get, returning every message. */
  async getAll(queue: string): Promise<Array<{ content: Buffer; headers: Record<string, unknown> }>> {
    const channel = await this.connection.createChannel();
    channel.on('error', () => undefined);
    const out: Array<{ content: Buffer; headers: Record<string, unknown> }> = [];
    try {
      for (;;) {
        const message = await channel.get(queue, { noAck: true });
        if (message === false) return out;
        out.push({ content: message.content, headers: (message.properties.headers ?? {}) });
      }
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  async deleteQueues(...queues: string[]): Promise<void> {
    for (const queue of queues) {
      const channel = await this.connection.createChannel();
      channel.on('error', () => undefined);
      await channel.deleteQueue(queue).catch(() => undefined);
      await channel.close().catch(() => undefined);
    }
  }

  async deleteExchanges(...exchanges: string[]): Promise<void> {
    for (const exchange of exchanges) {
      const channel = await this.connection.createChannel();
      channel.on('error', () => undefined);
      await channel.deleteExchange(exchange).catch(() => undefined);
      await channel.close().catch(() => undefined);
    }
  }

  /** Deletes what a collector consuming each queue declares: the queue, its `<queue>.dlq` and the `<queue>.dlx` exchange. */
  async deleteCollectorTopology(...queues: string[]): Promise<void> {
    await this.deleteQueues(...queues.flatMap((queue) => [queue, `${queue}.dlq`]));
    await this.deleteExchanges(...queues.map((queue) => `${queue}.dlx`));
  }

  async close(): Promise<void> {
    await this.connection.close().catch(() => undefined);
  }
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

// ---- collector processes -----------------------------------------------------------

export interface Metrics {
  /** Sum of every sample of the family whose labels include `labels`. */
  value(name: string, labels?: Record<string, string>): number;
  samples(name: string): Array<{ labels: Record<string, string>; value: number }>;
}

export function parseMetrics(text: string): Metrics {
  const rows: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (match === null) continue;
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!;
    rows.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  const matching = (name: string, labels: Record<string, string> = {}) =>
    rows.filter((r) => r.name === name && Object.entries(labels).every(([k, v]) => r.labels[k] === v));
  return {
    value: (name, labels) => matching(name, labels).reduce((sum, r) => sum + r.value, 0),
    samples: (name) => matching(name).map(({ labels, value }) => ({ labels, value })),
  };
}

export interface CollectorProcessOptions {
  queue: string;
  database: string;
  clickhouseUrl?: string;
  rabbitmqUrl?: string;
  env?: Record<string, string>;
}

export class CollectorProcess {
  readonly logs: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
  ) {
    let partial = '';
    const collect = (chunkText: Buffer): void => {
      const lines = (partial + chunkText.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (line !== '') this.logs.push(line);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  static async spawn(o: CollectorProcessOptions): Promise<CollectorProcess> {
    const port = await freePort();
    const child = spawn(process.execPath, [COLLECTOR_BIN], {
      env: {
        PATH: process.env.PATH ?? '',
        TRACEHOUSE_RABBITMQ_URL: o.rabbitmqUrl ?? RABBITMQ_URL,
        TRACEHOUSE_CLICKHOUSE_URL: o.clickhouseUrl ?? CLICKHOUSE_URL,
        TRACEHOUSE_CLICKHOUSE_DATABASE: o.database,
        TRACEHOUSE_QUEUE: o.queue,
        TRACEHOUSE_COLLECTOR_PORT: String(port),
        TRACEHOUSE_COLLECTOR_HOST: '127.0.0.1',
        ...o.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new CollectorProcess(child, port);
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async ready(): Promise<{ status: number; body: Record<string, unknown> } | undefined> {
    try {
      const response = await fetch(`${this.url}/ready`, { signal: AbortSignal.timeout(2_000) });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    } catch {
      return undefined;
    }
  }

  async waitReady(timeoutMs = 60_000): Promise<void> {
    await waitFor(async () => (await this.ready())?.status === 200, {
      timeoutMs,
      what: `collector on ${this.port} to be ready; logs:\n${this.logs.slice(-20).join('\n')}`,
      stop: () => !this.running,
    });
  }

  async metrics(): Promise<Metrics> {
    const response = await fetch(`${this.url}/metrics`, { signal: AbortSignal.timeout(5_000) });
    return parseMetrics(await response.text());
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.running) this.child.kill(signal);
  }

  /** Stops gracefully (SIGTERM) and returns the exit code; SIGKILLs after `timeoutMs`. */
  async stop(timeoutMs = 20_000): Promise<number | null> {
    if (!this.running) return (await this.exited).code;
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), timeoutMs);
    const { code } = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

/**
 * What a test file of single collectors needs: a broker connection, and per
 * test a database and a ready collector process consuming `queue` into it.
 * After the file's tests every collector is stopped and every database,
 * queue and dead-letter exchange removed, last made first.
 */
export function useCollectorBed(): {
  rabbit: () => Rabbit;
  collectorOn: (o: { queue: string; database: string; env?: Record<string, string> }) => Promise<{ store: ClickHouseStore; collector: CollectorProcess }>;
} {
  let rabbit: Rabbit | undefined;
  const cleanup: Array<() => Promise<void>> = [];
  beforeAll(async () => {
    rabbit = await Rabbit.open();
  });
  afterAll(async () => {
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
    await rabbit?.close();
  });
  const opened = (): Rabbit => {
    if (rabbit === undefined) throw new Error('useCollectorBed: the broker connection opens in beforeAll');
    return rabbit;
  };
  return {
    rabbit: opened,
    collectorOn: async ({ queue, database, env }) => {
      const store = await ClickHouseStore.open({ url: CLICKHOUSE_URL, database });
      cleanup.push(async () => {
        await store.dropDatabase();
        await store.close();
      });
      cleanup.push(() => opened().deleteCollectorTopology(queue));
      const collector = await CollectorProcess.spawn({ queue, database, env: { TRACEHOUSE_LOG_LEVEL: 'warn', ...env } });
      cleanup.push(async () => void (await collector.stop()));
      await collector.waitReady();
      return { store, collector };
    },
  };
}

export const METRIC = {
  consumed: 'tracehouse_collector_messages_consumed_total',
  acked: 'tracehouse_collector_messages_acked_total',
  deadLettered: 'tracehouse_collector_messages_dead_lettered_total',
  stored: 'tracehouse_collector_spans_stored_total',
  dropped: 'tracehouse_collector_spans_dropped_total',
  inflight: 'tracehouse_collector_inflight_messages',
  retries: 'tracehouse_collector_insert_retries_total',
  rss: 'tracehouse_collector_process_resident_memory_bytes',
  batchSpansCount: 'tracehouse_collector_batch_spans_count',
  insertCount: 'tracehouse_collector_insert_duration_seconds_count',
} as const;

// ---- what the query layer sees -------------------------------------------------------

export interface StoredCheck {
  expected: number;
  /** Expected spans the reader does not return. */
  missing: number;
  /** Spans the reader returns more than once. */
  duplicates: number;
  /** Spans returned that were not expected (other spans of the same traces). */
  unexpected: number;
}

/** Reads every trace of `spans` back through the reader and counts each span. */
export async function checkStored(
  reader: { getTraceMany(traceIds: readonly string[]): Promise<Span[][]> },
  spans: readonly Span[],
): Promise<StoredCheck> {
  const expected = new Set(spans.map((s) => `${s.traceId}:${s.id}`));
  const traceIds = [...new Set(spans.map((s) => s.traceId))];
  const seen = new Map<string, number>();
  for (const ids of chunk(traceIds, 200)) {
    for (const trace of await reader.getTraceMany(ids)) {
      for (const span of trace) {
        const key = `${span.traceId}:${span.id}`;
        seen.set(key, (seen.get(key) ?? 0) + 1);
      }
    }
  }
  let missing = 0;
  let duplicates = 0;
  let unexpected = 0;
  for (const key of expected) if (!seen.has(key)) missing++;
  for (const [key, n] of seen) {
    if (n > 1) duplicates += n - 1;
    if (!expected.has(key)) unexpected++;
  }
  return { expected: expected.size, missing, duplicates, unexpected };
}

/** Sum of one metric over several collectors. */
export async function sumMetric(collectors: readonly CollectorProcess[], name: string, labels?: Record<string, string>): Promise<number> {
  let sum = 0;
  for (const c of collectors) if (c.running) sum += (await c.metrics()).value(name, labels);
  return sum;
}

// ---- a TCP proxy the test can cut ------------------------------------------------------

/**
 * Forwards a local port to the broker at an AMQP URL; cut() drops every connection and refuses new ones until
 * restore(). The first `silent` connections are held open without a byte, like a peer that never answers.
 */
export class TcpProxy {
  private readonly sockets = new Set<Socket>();
  private open = true;
  private connections = 0;
  private readonly server: Server;
  /** The AMQP URL that goes through the proxy; set by start(). */
  url = '';

  private constructor(targetHost: string, targetPort: number, silent: number) {
    this.server = createServer((client) => {
      if (!this.open) {
        client.destroy();
        return;
      }
      this.connections++;
      const pair = this.connections <= silent ? [client] : [client, dial(targetPort, targetHost)];
      for (const s of pair) {
        this.sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => {
          this.sockets.delete(s);
          for (const t of pair) t.destroy();
        });
      }
      const upstream = pair[1];
      if (upstream) {
        client.pipe(upstream);
        upstream.pipe(client);
      }
    });
  }

  static async start(target: string, o: { silent?: number } = {}): Promise<TcpProxy> {
    const url = new URL(target);
    const proxy = new TcpProxy(url.hostname, Number(url.port || 5672), o.silent ?? 0);
    const port = await new Promise<number>((resolve) =>
      proxy.server.listen(0, '127.0.0.1', () => {
        const address = proxy.server.address();
        resolve(typeof address === 'object' && address !== null ? address.port : 0);
      }),
    );
    url.hostname = '127.0.0.1';
    url.port = String(port);
    proxy.url = url.toString();
    return proxy;
  }

  /** Connections accepted so far, silent ones included. */
  accepted(): number {
    return this.connections;
  }

  cut(): void {
    this.open = false;
    for (const s of this.sockets) s.destroy();
  }

  restore(): void {
    this.open = true;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
