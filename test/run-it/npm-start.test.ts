/**
 * `npm start` as a new user runs it: in the background, with every port, the
 * queue and the database chosen for this test so that it collides with nothing
 * else on the machine (the command is literally `npm start`; only its
 * environment differs). It must become ready, a trace crossing both demo
 * services must be found through the query API, and a Ctrl-C (SIGINT to the
 * process group, as a terminal sends it) must leave no process behind.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import type { Span } from '@tracehouse/model';
import {
  alive,
  BackgroundCommand,
  deleteQueueAndDeadLetters,
  dropDatabase,
  pipelineEnv,
  portInUse,
} from './pipeline-process.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const suffix = randomBytes(4).toString('hex');
const queue = `tracehouse_runit_${suffix}`;
const database = `tracehouse_runit_${suffix}`;

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** A trace in which a backend server span is the child of a frontend client span. */
function crossesBothServices(trace: Span[]): boolean {
  const byId = new Map(trace.map((span) => [span.id, span]));
  return trace.some((span) => {
    if (span.localEndpoint?.serviceName !== 'backend' || span.kind !== 'SERVER' || span.parentId === undefined) return false;
    const parent = byId.get(span.parentId);
    // Zipkin merges shared client/server ids; either way the parent side is the frontend.
    return parent?.localEndpoint?.serviceName === 'frontend';
  });
}

let run: BackgroundCommand | undefined;
const pids = new Map<string, number>();

afterAll(async () => {
  // Whatever happened above, leave nothing running and nothing behind.
  if (run !== undefined && run.child.exitCode === null && run.child.signalCode === null) run.signalGroup('SIGKILL');
  for (const pid of pids.values()) if (alive(pid)) process.kill(pid, 'SIGKILL');
  await deleteQueueAndDeadLetters(queue);
  await dropDatabase(database);
});

describe('npm start', () => {
  it('runs the whole pipeline, shows a trace across both demo services, and stops everything on Ctrl-C', async () => {
    const { env, ports } = await pipelineEnv({ queue, database });
    run = new BackgroundCommand('npm', ['start'], {
      cwd: repoRoot,
      env: {
        ...env,
        TRACEHOUSE_DEMO_TRAFFIC_INTERVAL_MS: '300',
        // Bounds the stop at 4 stages x 5 s even if a process hung.
        TRACEHOUSE_STOP_TIMEOUT_MS: '5000',
      },
    });

    // Services check, the (up to date) build, then every part ready.
    await run.waitFor(/^\[pipeline\] ready$/m, 75_000);
    for (const [, name, pid] of run.output.matchAll(/^\[pipeline\] started (\S+) pid=(\d+)/gm)) {
      pids.set(name ?? '', Number(pid));
    }
    const pipelinePid = Number((await run.waitFor(/^\[pipeline\] pid=(\d+)/m, 0))[1]);
    pids.set('pipeline', pipelinePid);
    expect([...pids.keys()].sort()).toEqual(
      ['backend', 'collector-1', 'collector-2', 'frontend', 'pipeline', 'query-api', 'traffic'],
    );

    // The walkthrough: list services, search traces, fetch one.
    const api = `http://127.0.0.1:${ports.query}/api/v2`;
    let found: Span[] | undefined;
    const deadline = Date.now() + 20_000;
    while (found === undefined && Date.now() < deadline) {
      const services = await getJson<string[]>(`${api}/services`);
      if (services.includes('frontend') && services.includes('backend')) {
        const traces = await getJson<Span[][]>(`${api}/traces?serviceName=frontend&limit=20`);
        found = traces.find(crossesBothServices);
      }
      if (found === undefined) await sleep(500);
    }
    expect(found, `no trace crossing frontend and backend within 20 s; output:\n${run.tail()}`).toBeDefined();
    const traceId = found?.[0]?.traceId ?? '';
    const trace = await getJson<Span[]>(`${api}/trace/${traceId}`);
    expect(crossesBothServices(trace)).toBe(true);
    expect(new Set(trace.map((s) => s.localEndpoint?.serviceName))).toEqual(new Set(['frontend', 'backend']));

    // The commands it printed work when pasted into a shell.
    const printed = [...run.output.matchAll(/^ {2}(services|recent traces|dependencies) +(curl .+)$/gm)];
    expect(printed.map((m) => m[1])).toEqual(['services', 'recent traces', 'dependencies']);
    for (const [, what, command] of printed) {
      const pasted = spawnSync('bash', ['-c', `${command ?? ''} --silent --show-error --fail`], { encoding: 'utf8', timeout: 10_000 });
      expect(pasted.stderr, `${what}: ${command}`).toBe('');
      expect(pasted.status, `${what}: ${command}`).toBe(0);
      expect(Array.isArray(JSON.parse(pasted.stdout)), `${what}: ${pasted.stdout}`).toBe(true);
    }

    // Ctrl-C.
    run.signalGroup('SIGINT');
    const exit = await Promise.race([run.exited, sleep(22_000).then(() => 'timeout' as const)]);
    expect(exit, `npm start did not exit within 22 s of SIGINT; output:\n${run.tail()}`).not.toBe('timeout');
    // npm itself ends the way it ends on a terminal's Ctrl-C (by the signal);
    // what counts is that the pipeline stopped everything and exited 0.
    await run.waitFor(/^\[pipeline\] exit code \d+$/m, 5_000);
    expect(run.output).toMatch(/^\[pipeline\] stopped: all 6 processes exited cleanly$/m);
    expect(run.output).toMatch(/^\[pipeline\] exit code 0$/m);
    // Each one stopped through its own graceful path, not by the signal's default action.
    for (const name of pids.keys()) {
      if (name === 'pipeline') continue;
      expect(run.output).toMatch(new RegExp(`^\\[pipeline\\] ${name} \\(pid \\d+\\) exited with code 0 in`, 'm'));
    }
    const gone = Date.now() + 5_000;
    while (alive(pipelinePid) && Date.now() < gone) await sleep(100);

    const survivors = [...pids].filter(([, pid]) => alive(pid));
    expect(survivors, 'processes still running after the stop').toEqual([]);
    const open = [];
    for (const [name, port] of Object.entries(ports)) if (await portInUse(port)) open.push(`${name}:${port}`);
    expect(open, 'ports still accepting connections after the stop').toEqual([]);
  }, 120_000);
});
