/**
 * run-pipeline when something goes wrong: a process that dies on its own
 * brings the rest down (and the exit code says so), and a taken port stops it
 * before it starts anything. Runs `node demo/dist/run-pipeline.js` directly:
 * `npm test` has already provided the services and built everything.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { alive, BackgroundCommand, deleteQueueAndDeadLetters, dropDatabase, pipelineEnv } from './pipeline-process.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const suffix = randomBytes(4).toString('hex');
const queue = `tracehouse_runit_dies_${suffix}`;
const database = `tracehouse_runit_dies_${suffix}`;
const pids = new Map<string, number>();

const ownEnv = async (): Promise<NodeJS.ProcessEnv> => (await pipelineEnv({ queue, database })).env;

afterAll(async () => {
  for (const pid of pids.values()) if (alive(pid)) process.kill(pid, 'SIGKILL');
  await deleteQueueAndDeadLetters(queue);
  await dropDatabase(database);
});

describe('run-pipeline', () => {
  it('reports a process that died on its own, stops the rest and exits 1', async () => {
    const run = new BackgroundCommand(process.execPath, ['demo/dist/run-pipeline.js'], {
      cwd: repoRoot,
      env: await ownEnv(),
    });
    await run.waitFor(/^\[pipeline\] ready$/m, 60_000);
    for (const [, name, pid] of run.output.matchAll(/^\[pipeline\] started (\S+) pid=(\d+)/gm)) {
      pids.set(name ?? '', Number(pid));
    }
    pids.set('pipeline', run.pid);
    expect(pids.size).toBe(7);

    process.kill(pids.get('backend') ?? 0, 'SIGKILL');
    const exit = await Promise.race([run.exited, sleep(45_000).then(() => 'timeout' as const)]);
    expect(exit, run.tail()).toEqual({ code: 1, signal: null });
    expect(run.output).toMatch(/^\[pipeline\] backend exited unexpectedly \(signal SIGKILL\); stopping the rest$/m);
    // Everything else was stopped the graceful way.
    for (const name of ['traffic', 'frontend', 'query-api', 'collector-1', 'collector-2']) {
      expect(run.output).toMatch(new RegExp(`^\\[pipeline\\] ${name} \\(pid \\d+\\) exited with code 0 in`, 'm'));
    }
    expect([...pids].filter(([, pid]) => alive(pid))).toEqual([]);
  }, 110_000);

  it('refuses to start when one of its ports is taken, naming the variable', async () => {
    const env = await ownEnv();
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(Number(env['TRACEHOUSE_DEMO_BACKEND_PORT']), '127.0.0.1', resolve));
    try {
      const run = new BackgroundCommand(process.execPath, ['demo/dist/run-pipeline.js'], { cwd: repoRoot, env });
      const exit = await run.exited;
      expect(exit).toEqual({ code: 1, signal: null });
      expect(run.output).toContain(`port ${env['TRACEHOUSE_DEMO_BACKEND_PORT']} (TRACEHOUSE_DEMO_BACKEND_PORT) already in use`);
      expect(run.output).not.toMatch(/started/);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });

  it('rejects a bad value with exit code 2 and the variable it came from', async () => {
    const env = { ...(await ownEnv()), TRACEHOUSE_COLLECTOR_PORTS: '9412,nine' };
    const run = new BackgroundCommand(process.execPath, ['demo/dist/run-pipeline.js'], { cwd: repoRoot, env });
    expect(await run.exited).toEqual({ code: 2, signal: null });
    expect(run.output).toContain('TRACEHOUSE_COLLECTOR_PORTS: expected a comma-separated list of ports');
  });
});
