// The tracehouse-query-api bin as a real process (needs `npm run build` first:
// it runs dist/bin.js) against the ClickHouse server.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import { ClickHouseStore } from '@tracehouse/storage';
import { generateSpans } from '@tracehouse/storage/testing';
import { afterAll, describe, expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
const CLICKHOUSE_URL = process.env['TRACEHOUSE_CLICKHOUSE_URL'] ?? 'http://127.0.0.1:8123';
const database = `qa_bin_${randomBytes(5).toString('hex')}`;
const boundedDatabase = `qa_bin_bounded_${randomBytes(5).toString('hex')}`;

function run(env: Record<string, string>, args: string[] = []): { child: ChildProcess; stdout: () => string; stderr: () => string } {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { PATH: process.env['PATH'] ?? '', TRACEHOUSE_CLICKHOUSE_URL: CLICKHOUSE_URL, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
  return { child, stdout: () => out, stderr: () => err };
}

/** The bin on a free port of 127.0.0.1, with `env` added. */
function runOnFreePort(env: Record<string, string> = {}, args: string[] = []): ReturnType<typeof run> {
  return run({ TRACEHOUSE_QUERY_PORT: '0', TRACEHOUSE_QUERY_HOST: '127.0.0.1', ...env }, args);
}

async function listeningUrl(stdout: () => string, child: ChildProcess): Promise<string> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    for (const line of stdout().split('\n')) {
      if (!line.includes('query API listening')) continue;
      const { url } = JSON.parse(line) as { url: string };
      return url;
    }
    if (child.exitCode !== null) throw new Error(`bin exited with ${child.exitCode}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`bin did not start: ${stdout()}`);
}

afterAll(async () => {
  for (const name of [database, boundedDatabase]) {
    const store = await ClickHouseStore.open({ url: CLICKHOUSE_URL, database: name });
    await store.dropDatabase();
    await store.close();
  }
});

describe('tracehouse-query-api bin', () => {
  it('refuses a bad variable, naming it, with exit code 2', async () => {
    const { child, stderr } = run({ TRACEHOUSE_QUERY_MAX_LIMIT: 'lots' });
    const [code] = (await once(child, 'exit')) as [number];
    expect(code).toBe(2);
    expect(stderr()).toContain('TRACEHOUSE_QUERY_MAX_LIMIT');
    expect(stderr()).toContain('accepts an integer');
  });

  it('exits 1 naming TRACEHOUSE_QUERY_PORT when its port is taken', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    try {
      const port = (holder.address() as { port: number }).port;
      const { child, stdout } = run({ TRACEHOUSE_CLICKHOUSE_DATABASE: database, TRACEHOUSE_QUERY_HOST: '127.0.0.1', TRACEHOUSE_QUERY_PORT: String(port) });
      const [code] = (await once(child, 'exit')) as [number];
      expect(code).toBe(1);
      expect(stdout()).toMatch(new RegExp(`port ${port} on 127\\.0\\.0\\.1 is taken \\(set TRACEHOUSE_QUERY_PORT`));
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  });

  it('prints its variables on --help and exits 0 without starting a server', async () => {
    const { child, stdout } = runOnFreePort({}, ['--help']);
    const [code] = (await once(child, 'exit')) as [number];
    expect(code).toBe(0);
    expect(stdout()).toContain('TRACEHOUSE_QUERY_PORT');
    expect(stdout()).not.toContain('query API listening');
  });

  it('runs as the command npm installs, from the repository root (npx tracehouse-query-api)', () => {
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const result = spawnSync('npx', ['--no-install', 'tracehouse-query-api', '--help'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('Usage: tracehouse-query-api');
  });

  it('serves the API over HTTP with a bearer token and stops cleanly on SIGTERM', async () => {
    const { child, stdout } = runOnFreePort({
      TRACEHOUSE_CLICKHOUSE_DATABASE: database,
      TRACEHOUSE_QUERY_BEARER_TOKEN: 'bin-test-token',
    });
    try {
      const url = await listeningUrl(stdout, child);
      expect((await fetch(`${url}/health`)).status).toBe(200);
      expect((await fetch(`${url}/api/v2/services`)).status).toBe(401);
      const services = await fetch(`${url}/api/v2/services`, { headers: { authorization: 'Bearer bin-test-token' } });
      expect(services.status).toBe(200);
      expect(await services.json()).toEqual([]);
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const [code] = (await exited) as [number];
      expect(code).toBe(0);
      expect(stdout()).toContain('query API stopped');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('answers a read larger than TRACEHOUSE_QUERY_MAX_RESULT_BYTES with a 400 RESULT_TOO_LARGE, and keeps serving', async () => {
    const now = Date.now();
    // About 3.4 MB of stored spans in one trace, and two small traces after it.
    const big = generateSpans({ traces: 1, spansPerTrace: 5000, startMicros: (now - 7_200_000) * 1000, seed: 7 });
    const small = generateSpans({ traces: 2, spansPerTrace: 5, startMicros: (now - 3_600_000) * 1000, seed: 8 });
    const store = await ClickHouseStore.open({ url: CLICKHOUSE_URL, database: boundedDatabase });
    try {
      await store.writer.write([...big, ...small]);
    } finally {
      await store.close();
    }
    const { child, stdout } = runOnFreePort({
      TRACEHOUSE_CLICKHOUSE_DATABASE: boundedDatabase,
      TRACEHOUSE_QUERY_MAX_RESULT_BYTES: '2000000',
    });
    try {
      const url = await listeningUrl(stdout, child);
      const refused = async (path: string): Promise<void> => {
        const response = await fetch(`${url}${path}`);
        expect({ path, status: response.status }).toEqual({ path, status: 400 });
        const body = (await response.json()) as { code: string; message: string };
        expect(body.code).toBe('RESULT_TOO_LARGE');
        expect(body.message).toContain('more than 2000000 bytes');
        expect(body.message).toContain('TRACEHOUSE_QUERY_MAX_RESULT_BYTES');
      };
      await refused(`/api/v2/trace/${big[0]?.traceId}`);
      await refused(`/api/v2/traces?endTs=${now}&lookback=10800000&limit=10`);
      await refused(`/api/v2/traceMany?traceIds=${big[0]?.traceId},${small[0]?.traceId}`);
      const newest = await fetch(`${url}/api/v2/traces?endTs=${now}&lookback=10800000&limit=2`);
      expect(newest.status).toBe(200);
      expect(((await newest.json()) as unknown[][]).flat()).toHaveLength(10);
      expect((await fetch(`${url}/api/v2/trace/${small[0]?.traceId}`)).status).toBe(200);
      expect(child.exitCode).toBeNull();
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('stops on SIGTERM when whatever read its log has gone (stdout a broken pipe)', async () => {
    const { child, stdout } = runOnFreePort({ TRACEHOUSE_CLICKHOUSE_DATABASE: database });
    try {
      await listeningUrl(stdout, child);
      // The log reader dies (a shipper, `| head`): every later write to stdout fails with EPIPE.
      child.stdout?.destroy();
      const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
      child.kill('SIGTERM');
      const timeout = new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), 5_000).unref());
      expect(await Promise.race([exited, timeout])).toEqual([0, null]);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('takes names as long as the API accepts, names the parameter beyond, and refuses an oversized request in its own format', async () => {
    const { child, stdout } = runOnFreePort({ TRACEHOUSE_CLICKHOUSE_DATABASE: database });
    try {
      const url = await listeningUrl(stdout, child);
      const search = (name: string) => fetch(`${url}/api/v2/traces?serviceName=${encodeURIComponent(name)}&spanName=${encodeURIComponent(name)}`);
      // Two names of the longest length accepted, percent-encoded (9 bytes a character): 295 KB of request line.
      const longest = await search('中'.repeat(16_384));
      expect(longest.status).toBe(200);
      expect(await longest.json()).toEqual([]);
      const tooLong = await search('x'.repeat(16_385));
      expect(tooLong.status).toBe(400);
      expect(await tooLong.json()).toMatchObject({ code: 'INVALID_PARAMETER', parameter: 'serviceName' });
      const huge = await fetch(`${url}/api/v2/services?padding=${'x'.repeat(1_100_000)}`);
      expect(huge.status).toBe(431);
      expect(await huge.json()).toEqual({ code: 'REQUEST_TOO_LARGE', message: 'the request line and headers are longer than 1048576 bytes' });
      // And it keeps serving.
      expect((await fetch(`${url}/api/v2/services`)).status).toBe(200);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('starts before ClickHouse is reachable, answers 503 meanwhile, and serves once it is', async () => {
    // A port where nothing listens yet; later, a forwarder to the real server.
    const placeholder = createServer();
    await new Promise<void>((resolve) => placeholder.listen(0, '127.0.0.1', resolve));
    const port = (placeholder.address() as { port: number }).port;
    await new Promise((resolve) => placeholder.close(resolve));
    const target = new URL(CLICKHOUSE_URL);
    const { child, stdout } = runOnFreePort({
      TRACEHOUSE_CLICKHOUSE_DATABASE: database,
      TRACEHOUSE_CLICKHOUSE_URL: `http://127.0.0.1:${port}`,
      TRACEHOUSE_CLICKHOUSE_TIMEOUT_MS: '1000',
    });
    let forwarder: Server | undefined;
    try {
      const url = await listeningUrl(stdout, child);
      expect((await fetch(`${url}/health`)).status).toBe(503);
      const services = await fetch(`${url}/api/v2/services`);
      expect(services.status).toBe(503);
      expect(await services.json()).toMatchObject({ code: 'STORAGE_UNAVAILABLE' });

      forwarder = createServer((socket) => {
        const upstream = connect(Number(target.port || 8123), target.hostname);
        socket.pipe(upstream).pipe(socket);
        socket.on('error', () => upstream.destroy());
        upstream.on('error', () => socket.destroy());
      });
      await new Promise<void>((resolve) => forwarder?.listen(port, '127.0.0.1', resolve));
      const deadline = Date.now() + 15_000;
      while ((await fetch(`${url}/health`)).status !== 200 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      expect((await fetch(`${url}/health`)).status).toBe(200);
      expect((await fetch(`${url}/api/v2/services`)).status).toBe(200);
      expect(child.exitCode).toBeNull();
      // Each log line names its component once (the store adds its own).
      const lines = stdout().split('\n').filter((line) => line.includes('"component"'));
      expect(lines.some((line) => line.includes('"component":"storage"'))).toBe(true);
      for (const line of lines) expect(line.match(/"component":/g), line).toHaveLength(1);
    } finally {
      child.kill('SIGKILL');
      forwarder?.close();
    }
  });

  it('exits 1 at once, saying so, when ClickHouse refuses the credentials', async () => {
    const url = new URL(CLICKHOUSE_URL);
    url.username = 'nobody_at_all';
    const { child, stdout } = runOnFreePort({ TRACEHOUSE_CLICKHOUSE_DATABASE: database, TRACEHOUSE_CLICKHOUSE_URL: url.toString() });
    const [code] = (await once(child, 'exit')) as [number];
    expect(code).toBe(1);
    const fatal = stdout()
      .split('\n')
      .find((line) => line.includes('query API failed to start'));
    // 18.16 says "Unknown user" (code 192), current servers "Authentication failed" (516).
    expect(fatal).toMatch(/nobody_at_all.*"code":"auth"/);
  });

  it('listens at once when ClickHouse accepts connections but never answers, and stops at once', async () => {
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    const started = Date.now();
    const { child, stdout } = runOnFreePort({
      TRACEHOUSE_CLICKHOUSE_DATABASE: database,
      TRACEHOUSE_CLICKHOUSE_URL: `http://127.0.0.1:${port}`,
      TRACEHOUSE_CLICKHOUSE_TIMEOUT_MS: '20000',
    });
    try {
      const url = await listeningUrl(stdout, child);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect((await fetch(`${url}/api/v2/services`)).status).toBe(503);
      const stopping = Date.now();
      const exited = once(child, 'exit') as Promise<[number | null]>;
      child.kill('SIGTERM');
      expect((await exited)[0]).toBe(0);
      expect(Date.now() - stopping).toBeLessThan(3_000);
    } finally {
      child.kill('SIGKILL');
      silent.close();
    }
  });
});
