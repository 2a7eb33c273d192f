// Helpers shared by the instrumentation tests: fixture services as child
// processes, an in-process TCP proxy that can cut the broker away, and queue
// reading with @tracehouse/model.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { decodeSpans, type Span } from '@tracehouse/model';
import { connect, type ChannelModel } from 'amqplib';
import { afterAll, beforeAll } from 'vitest';

export const RABBITMQ_URL = process.env.TRACEHOUSE_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

const SERVICE_SCRIPT = fileURLToPath(new URL('../dist/instrumentation/fixtures/http-service.js', import.meta.url));

export function uniqueQueue(label: string): string {
  return `th-instr-${label}-${randomBytes(4).toString('hex')}`;
}

export interface ServiceStats {
  spansExported: number;
  spansDropped: Record<'buffer_full' | 'too_large' | 'conversion_error' | 'shutdown' | 'rejected', number>;
  messagesPublished: number;
  publishFailures: number;
  bufferedSpans: number;
  bufferedBytes: number;
  connected: boolean;
  rss: number;
}

export interface RunningService {
  readonly port: number;
  readonly child: ChildProcess;
  /** Everything the child wrote to stderr so far. */
  stderr(): string;
  get(path: string): Promise<{ status: number; body: string }>;
  stats(): Promise<ServiceStats>;
  /** Resolves with the exit code/signal and how long after `since` the process ended. */
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  kill(): void;
}

/** Starts the fixture service (test/instrumentation/fixtures/http-service.ts, compiled by `npm run build`). */
export async function startService(env: Record<string, string>): Promise<RunningService> {
  if (!existsSync(SERVICE_SCRIPT)) {
    throw new Error(`${SERVICE_SCRIPT} is missing: run \`npm run build\` before the integration tests`);
  }
  const child = spawn(process.execPath, [SERVICE_SCRIPT], {
    env: { PATH: process.env.PATH ?? '', OTEL_BSP_SCHEDULE_DELAY: '100', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() }));
  });
  const port = await new Promise<number>((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(() => reject(new Error(`service did not start in time; stderr: ${stderr}`)), 30_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const line = stdout.split('\n')[0];
      if (stdout.includes('\n') && line !== undefined) {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { port: number }).port);
      }
    });
    void exit.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`service exited early (${code ?? signal}); stderr: ${stderr}`));
    });
  });
  const get = (path: string): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      const request = http.get({ host: '127.0.0.1', port, path, agent: false }, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      });
      request.on('error', reject);
    });
  return {
    port,
    child,
    stderr: () => stderr,
    get,
    stats: async () => JSON.parse((await get('/__stats')).body) as ServiceStats,
    exited: () => exit,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** Polls `check` until it returns true or `millis` pass. */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, millis = 20_000): Promise<void> {
  const deadline = Date.now() + millis;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * A TCP proxy in front of RabbitMQ. `cut()` closes the listener and every
 * connection through it (the broker is gone for the client); `restore()`
 * listens on the same port again.
 */
export class BrokerProxy {
  readonly #target: { host: string; port: number };
  readonly #sockets = new Set<net.Socket>();
  #server: net.Server | undefined;
  port = 0;

  constructor(targetUrl: string = RABBITMQ_URL) {
    const url = new URL(targetUrl);
    this.#target = { host: url.hostname, port: Number(url.port || 5672) };
  }

  /** The broker URL through this proxy. */
  url(): string {
    const url = new URL(RABBITMQ_URL);
    url.hostname = '127.0.0.1';
    url.port = String(this.port);
    return url.toString();
  }

  async start(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.#target);
      this.#sockets.add(client);
      this.#sockets.add(upstream);
      const forget = (): void => {
        this.#sockets.delete(client);
        this.#sockets.delete(upstream);
        client.destroy();
        upstream.destroy();
      };
      client.on('error', forget).on('close', forget);
      upstream.on('error', forget).on('close', forget);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.#server = server;
    const address = server.address();
    if (typeof address === 'object' && address !== null) this.port = address.port;
  }

  /** The broker vanishes: no listener, every proxied connection reset. */
  async cut(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async restore(): Promise<void> {
    await this.start();
  }

  async stop(): Promise<void> {
    await this.cut();
  }
}

/** Reads (and acks) every message on `queue`, decoding each with @tracehouse/model. */
export async function readSpans(broker: ChannelModel, queue: string): Promise<{ spans: Span[]; messages: number }> {
  const channel = await broker.createChannel();
  const spans: Span[] = [];
  let messages = 0;
  try {
    for (;;) {
      const message = await channel.get(queue, { noAck: true });
      if (message === false) break;
      messages++;
      const decoded = decodeSpans(message.content, { contentEncoding: message.properties.contentEncoding as string | undefined });
      if (!decoded.ok) throw new Error(`undecodable message on ${queue}: ${decoded.message}`);
      if (decoded.dropped.length > 0) throw new Error(`invalid spans on ${queue}: ${JSON.stringify(decoded.dropped)}`);
      spans.push(...decoded.spans);
    }
  } finally {
    await channel.close().catch(() => undefined);
  }
  return { spans, messages };
}

export async function connectBroker(): Promise<ChannelModel> {
  return connect(RABBITMQ_URL);
}

export async function deleteQueues(broker: ChannelModel, queues: readonly string[]): Promise<void> {
  for (const queue of queues) {
    const channel = await broker.createChannel();
    channel.on('error', () => undefined);
    await channel.deleteQueue(queue).catch(() => undefined);
    await channel.close().catch(() => undefined);
  }
}

/**
 * The set-up every test file here shares, registered with the file's
 * beforeAll/afterAll: a broker connection for reading queues, and clean-up of
 * what the tests start through it (services killed first, then the `cleanup`
 * callbacks in order, then the queues deleted).
 */
export interface TestBed {
  /** The connection for reading queues; open once the file's beforeAll ran. */
  readonly broker: ChannelModel;
  /** A unique queue name, deleted after the file. */
  queue(label: string): string;
  /** startService talking to RABBITMQ_URL unless `env` says otherwise; killed after the file. */
  startService(env: Record<string, string>): Promise<RunningService>;
  cleanup(action: () => Promise<unknown> | void): void;
}

export function useTestBed(): TestBed {
  let broker: ChannelModel | undefined;
  const queues: string[] = [];
  const services: RunningService[] = [];
  const cleanups: (() => Promise<unknown> | void)[] = [];
  beforeAll(async () => {
    broker = await connectBroker();
  });
  afterAll(async () => {
    for (const service of services) service.kill();
    for (const action of cleanups) await action();
    if (broker === undefined) return;
    await deleteQueues(broker, queues);
    await broker.close();
  });
  return {
    get broker() {
      if (broker === undefined) throw new Error('the broker connection opens in beforeAll');
      return broker;
    },
    queue(label) {
      const queue = uniqueQueue(label);
      queues.push(queue);
      return queue;
    },
    async startService(env) {
      const service = await startService({ TRACEHOUSE_RABBITMQ_URL: RABBITMQ_URL, ...env });
      services.push(service);
      return service;
    },
    cleanup(action) {
      cleanups.push(action);
    },
  };
}
