/**
 * Helpers for the run-it tests: free ports, a background `npm start` whose
 * output is kept and whose process ids are read from what it prints, and
 * clean-up of the queue and database a run used.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer, type Server } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClickHouseStore } from '@tracehouse/storage';
import amqp from 'amqplib';

export const RABBITMQ_URL = process.env['TRACEHOUSE_RABBITMQ_URL'] ?? 'amqp://guest:guest@127.0.0.1:5672';
export const CLICKHOUSE_URL = process.env['TRACEHOUSE_CLICKHOUSE_URL'] ?? 'http://127.0.0.1:8123';

/** `count` distinct ports that were free a moment ago. */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<Server>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((s) => {
    const address = s.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    return address.port;
  });
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

type PipelinePorts = Record<'query' | 'collector1' | 'collector2' | 'frontend' | 'backend' | 'traffic', number>;

/**
 * The environment for a pipeline run that collides with nothing else on the
 * machine: its own queue and database, and every port a free one (`ports`
 * names each, for checking afterwards that nothing still listens).
 */
export async function pipelineEnv(own: { queue: string; database: string }): Promise<{
  env: NodeJS.ProcessEnv;
  ports: PipelinePorts;
}> {
  const [query, collector1, collector2, frontend, backend, traffic] = await freePorts(6);
  const ports = { query, collector1, collector2, frontend, backend, traffic } as PipelinePorts;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TRACEHOUSE_QUEUE: own.queue,
    TRACEHOUSE_CLICKHOUSE_DATABASE: own.database,
    TRACEHOUSE_QUERY_PORT: String(query),
    TRACEHOUSE_COLLECTOR_PORTS: `${collector1},${collector2}`,
    TRACEHOUSE_DEMO_FRONTEND_PORT: String(frontend),
    TRACEHOUSE_DEMO_BACKEND_PORT: String(backend),
    TRACEHOUSE_DEMO_TRAFFIC_PORT: String(traffic),
  };
  return { env, ports };
}

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
export function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setTimeout(1_000, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Whether a process with this id still exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A command run in its own process group (like a terminal's foreground job), its output kept. */
export class BackgroundCommand {
  readonly child: ChildProcess;
  output = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }) {
    this.child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    for (const stream of [this.child.stdout, this.child.stderr]) {
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        this.output += chunk;
      });
    }
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error('not started');
    return this.child.pid;
  }

  /** Resolves when the output matches, rejects on timeout or when the command exits first. */
  async waitFor(pattern: RegExp, timeoutMillis: number): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMillis;
    let done = false;
    void this.exited.then(() => (done = true));
    for (;;) {
      const match = this.output.match(pattern);
      if (match !== null) return match;
      if (done) throw new Error(`exited before printing ${pattern}; output:\n${this.tail()}`);
      if (Date.now() > deadline) throw new Error(`no ${pattern} within ${timeoutMillis} ms; output:\n${this.tail()}`);
      await sleep(200);
    }
  }

  /** Sends a signal to the whole process group, as a terminal does on Ctrl-C. */
  signalGroup(signal: NodeJS.Signals): void {
    try {
      process.kill(-this.pid, signal);
    } catch {
      // Group already gone.
    }
  }

  tail(lines = 60): string {
    return this.output.split('\n').slice(-lines).join('\n');
  }
}

/** Deletes a queue, its dead-letter queue and exchange (`<queue>.dlq`, `<queue>.dlx`), ignoring what is missing. */
export async function deleteQueueAndDeadLetters(queue: string): Promise<void> {
  const connection = await amqp.connect(RABBITMQ_URL);
  try {
    for (const action of [
      (ch: amqp.Channel) => ch.deleteQueue(queue),
      (ch: amqp.Channel) => ch.deleteQueue(`${queue}.dlq`),
      (ch: amqp.Channel) => ch.deleteExchange(`${queue}.dlx`),
    ]) {
      // A failed delete closes the channel, so each gets its own.
      const channel = await connection.createChannel();
      channel.on('error', () => undefined);
      try {
        await action(channel);
        await channel.close();
      } catch {
        // Missing: nothing to delete.
      }
    }
  } finally {
    await connection.close();
  }
}

export async function dropDatabase(database: string): Promise<void> {
  const store = await ClickHouseStore.open({ url: CLICKHOUSE_URL, database });
  try {
    await store.dropDatabase();
  } finally {
    await store.close();
  }
}
