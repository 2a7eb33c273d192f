/**
 * The tracehouse-collector bin with a configuration it can never use: it must
 * exit at once naming the variable, not start and retry forever (/health
 * 200, /ready 503). Nothing needs to run: the check comes before any
 * connection.
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'bin.js');

/** Runs the bin until it exits by itself, or SIGKILLs it after `timeoutMs` (a collector retrying forever). */
function runBin(env: Record<string, string>, timeoutMs: number): Promise<{ code: number | null; killed: boolean; output: string; ms: number }> {
  const started = Date.now();
  // Async, not spawnSync: a child killed by spawnSync's timeout can hang writing to the pipe nobody reads.
  const child = spawn(process.execPath, [BIN], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  return new Promise((resolve) =>
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, killed, output, ms: Date.now() - started });
    }),
  );
}

describe('tracehouse-collector bin', () => {
  it('exits 2 within seconds naming TRACEHOUSE_CLICKHOUSE_URL when the ClickHouse client refuses the URL', async () => {
    const result = await runBin(
      {
        TRACEHOUSE_CLICKHOUSE_URL: 'http://127.0.0.1:8123/?database=x',
        // Nowhere to connect, should it get that far: the test is about not getting there.
        TRACEHOUSE_RABBITMQ_URL: 'amqp://127.0.0.1:1',
        TRACEHOUSE_COLLECTOR_HOST: '127.0.0.1',
        TRACEHOUSE_COLLECTOR_PORT: '0',
      },
      8_000,
    );
    expect({ killed: result.killed, code: result.code }).toEqual({ killed: false, code: 2 });
    expect(result.output).toMatch(/invalid configuration: TRACEHOUSE_CLICKHOUSE_URL: .*Unknown URL parameters: database/);
    expect(result.ms).toBeLessThan(5_000);
  });
});
