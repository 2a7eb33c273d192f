/** The tracehouse-collector bin refuses bad configuration: before touching anything, or as soon as a server refuses it. */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { dropDatabase } from '@tracehouse/storage/testing';
import { describe, expect, it } from 'vitest';
import { COLLECTOR_BIN, CollectorProcess, Rabbit } from './harness.js';

const RABBITMQ_URL = process.env.TRACEHOUSE_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const CLICKHOUSE_URL = process.env.TRACEHOUSE_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123';

function run(env: Record<string, string>, args: string[] = []): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [COLLECTOR_BIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', timeout: 20_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('tracehouse-collector bin', () => {
  it('exits 2 with a message naming the variable and what it accepts', () => {
    const port = run({ TRACEHOUSE_COLLECTOR_PORT: 'ninety' });
    expect(port.status).toBe(2);
    expect(port.stderr).toMatch(/TRACEHOUSE_COLLECTOR_PORT: expected a whole number from 0 to 65535, got "ninety"/);
    const url = run({ TRACEHOUSE_RABBITMQ_URL: 'http://broker' });
    expect(url.status).toBe(2);
    expect(url.stderr).toMatch(/TRACEHOUSE_RABBITMQ_URL: .*amqp/);
  });

  it('exits 1 naming TRACEHOUSE_COLLECTOR_PORT when its admin port is taken', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    try {
      const taken = run({
        TRACEHOUSE_RABBITMQ_URL: 'amqp://127.0.0.1:1',
        TRACEHOUSE_CLICKHOUSE_URL: 'http://127.0.0.1:1',
        TRACEHOUSE_COLLECTOR_HOST: '127.0.0.1',
        TRACEHOUSE_COLLECTOR_PORT: String((holder.address() as AddressInfo).port),
      });
      expect(taken.status).toBe(1);
      expect(taken.stdout).toMatch(/EADDRINUSE.*the admin port is taken: set TRACEHOUSE_COLLECTOR_PORT/);
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  });

  it('exits 2 at once naming TRACEHOUSE_CLICKHOUSE_URL when the ClickHouse client refuses the URL, rather than retrying it', () => {
    const started = Date.now();
    const refused = run({
      TRACEHOUSE_CLICKHOUSE_URL: 'http://127.0.0.1:8123/?database=x',
      // Nowhere to connect, should it get that far: the test is about not getting there.
      TRACEHOUSE_RABBITMQ_URL: 'amqp://127.0.0.1:1',
      TRACEHOUSE_COLLECTOR_HOST: '127.0.0.1',
      TRACEHOUSE_COLLECTOR_PORT: '0',
    });
    expect(refused.status).toBe(2);
    expect(refused.stdout + refused.stderr).toMatch(/invalid configuration: TRACEHOUSE_CLICKHOUSE_URL: .*Unknown URL parameters: database/);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('exits 1 naming TRACEHOUSE_QUEUE_ARGUMENTS when RabbitMQ refuses them, rather than retrying forever', async () => {
    const suffix = randomBytes(4).toString('hex');
    const database = `th_bin_qargs_${suffix}`;
    try {
      const refused = run({
        TRACEHOUSE_RABBITMQ_URL: RABBITMQ_URL,
        TRACEHOUSE_CLICKHOUSE_URL: CLICKHOUSE_URL,
        TRACEHOUSE_CLICKHOUSE_DATABASE: database,
        TRACEHOUSE_QUEUE: `th_bin_qargs_${suffix}`,
        TRACEHOUSE_QUEUE_ARGUMENTS: '{"x-max-length":"ten"}',
        TRACEHOUSE_COLLECTOR_HOST: '127.0.0.1',
        TRACEHOUSE_COLLECTOR_PORT: '0',
      });
      expect(refused.status).toBe(1);
      expect(refused.stdout + refused.stderr).toMatch(/"msg":"tracehouse-collector failed: RabbitMQ refuses to declare queue [^"]*"th_bin_qargs_\w+[^ ]* with arguments .*x-max-length.*check TRACEHOUSE_QUEUE_ARGUMENTS/);
    } finally {
      await dropDatabase({ url: CLICKHOUSE_URL, database });
    }
  });

  it('stops on SIGTERM when whatever read its log has gone (stdout a broken pipe)', async () => {
    const suffix = randomBytes(4).toString('hex');
    const queue = `th_bin_epipe_${suffix}`;
    const database = `th_bin_epipe_${suffix}`;
    const collector = await CollectorProcess.spawn({ queue, database, env: { TRACEHOUSE_LOG_LEVEL: 'info' } });
    try {
      await collector.waitReady();
      // The log reader dies (a shipper, `| head`): every later write to stdout fails with EPIPE.
      collector.child.stdout?.destroy();
      const code = await collector.stop(5_000);
      expect(code).toBe(0);
    } finally {
      collector.kill('SIGKILL');
      const rabbit = await Rabbit.open();
      await rabbit.deleteCollectorTopology(queue);
      await rabbit.close();
      await dropDatabase({ url: CLICKHOUSE_URL, database });
    }
  });

  it('runs as the command npm installs, from the repository root (npx tracehouse-collector)', () => {
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const result = spawnSync('npx', ['--no-install', 'tracehouse-collector', '--help'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('Usage: tracehouse-collector');
  });

  it('exits 1 naming the refusal when ClickHouse refuses the credentials, rather than retrying forever', () => {
    const url = new URL(CLICKHOUSE_URL);
    url.username = 'nobody_at_all';
    const refused = run({
      TRACEHOUSE_CLICKHOUSE_URL: url.toString(),
      TRACEHOUSE_RABBITMQ_URL: RABBITMQ_URL,
      TRACEHOUSE_QUEUE: `th_bin_auth_${randomBytes(4).toString('hex')}`,
      TRACEHOUSE_COLLECTOR_HOST: '127.0.0.1',
      TRACEHOUSE_COLLECTOR_PORT: '0',
    });
    expect(refused.status).toBe(1);
    expect(refused.stdout + refused.stderr).toMatch(/cannot open the span store \(auth, not retryable\).*nobody_at_all/);
  });

  it('--help lists the variables', () => {
    const help = run({}, ['--help']);
    expect(help.status).toBe(0);
    for (const variable of ['TRACEHOUSE_RABBITMQ_URL', 'TRACEHOUSE_QUEUE', 'TRACEHOUSE_CLICKHOUSE_URL', 'TRACEHOUSE_CLICKHOUSE_DATABASE', 'TRACEHOUSE_COLLECTOR_PORT']) {
      expect(help.stdout).toContain(variable);
    }
  });
});
