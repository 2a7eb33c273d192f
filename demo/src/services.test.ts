/**
 * The demo services without tracing: what the frontend answers for each
 * backend outcome, and that stopping closes kept-alive connections.
 */
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startBackend } from './backend.js';
import { startFrontend } from './frontend.js';
import { httpGet } from './http-get.js';
import type { RunningServer } from './http-server.js';
import { startTraffic } from './traffic.js';

const started: RunningServer[] = [];
async function track<T extends RunningServer>(server: Promise<T>): Promise<T> {
  const s = await server;
  started.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.stop()));
});

async function pair(errorPercent: number) {
  const backend = await track(startBackend({ host: '127.0.0.1', port: 0, errorPercent, maxDelayMillis: 5 }));
  const frontend = await track(
    startFrontend({
      host: '127.0.0.1',
      port: 0,
      backendUrl: `http://127.0.0.1:${backend.port}/`,
      backendTimeoutMillis: 2_000,
    }),
  );
  return { backend, frontend, url: (path: string) => `http://127.0.0.1:${frontend.port}${path}` };
}

describe('demo services', () => {
  it('frontend answers stock and price from the backend', async () => {
    const { url } = await pair(0);
    const res = await httpGet(url('/?item=teapot'), 2_000);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ item: 'teapot', stock: 12, price: 18.5 });
    const random = JSON.parse((await httpGet(url('/'), 2_000)).body) as { item: string };
    expect(['teapot', 'kettle', 'mug', 'saucer', 'strainer']).toContain(random.item);
  });

  it('frontend answers 502 when the backend fails, 404 for an unknown item, 400 for a bad one', async () => {
    const { url } = await pair(100);
    expect((await httpGet(url('/?item=teapot'), 2_000)).status).toBe(502);
    expect((await httpGet(url('/?item=spoon'), 2_000)).status).toBe(404);
    expect((await httpGet(url('/?item=Robert%27);DROP'), 2_000)).status).toBe(400);
    expect((await httpGet(url('/nowhere'), 2_000)).status).toBe(404);
    expect((await httpGet(url('/health'), 2_000)).status).toBe(200);
  });

  it('frontend answers 502 when the backend is unreachable', async () => {
    const { backend, url } = await pair(0);
    await backend.stop();
    const res = await httpGet(url('/?item=mug'), 2_000);
    expect(res.status).toBe(502);
    expect(res.body).toContain('backend unreachable');
  });

  it('stop() ends even with a kept-alive connection open', async () => {
    const backend = await startBackend({ host: '127.0.0.1', port: 0, errorPercent: 0, maxDelayMillis: 0 });
    const agent = new http.Agent({ keepAlive: true });
    await new Promise<void>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: backend.port, path: '/health', agent }, (res) => {
          res.resume();
          res.on('end', resolve);
        })
        .on('error', reject);
    });
    const begin = Date.now();
    await backend.stop();
    expect(Date.now() - begin).toBeLessThan(2_000);
    agent.destroy();
  });

  it('traffic sends one request at a time at about the interval, and counts', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    let received = 0;
    const target = http.createServer((_req, res) => {
      inFlight += 1;
      received += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      setTimeout(() => {
        inFlight -= 1;
        res.writeHead(received % 2 === 0 ? 500 : 200).end();
      }, 150);
    });
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    const port = (target.address() as { port: number }).port;
    const traffic = await startTraffic({
      targetUrl: `http://127.0.0.1:${port}/`,
      intervalMillis: 100,
      requestTimeoutMillis: 2_000,
      host: '127.0.0.1',
      port: 0,
      log: () => undefined,
    });
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const health = JSON.parse((await httpGet(`http://127.0.0.1:${traffic.port}/health`, 2_000)).body) as Record<string, unknown>;
    await traffic.stop();
    await new Promise((resolve) => target.close(resolve));
    // 1.5 s of (100 ms ± 25 % pause + 150 ms answer): about 6 requests, never two at once.
    expect(maxInFlight).toBe(1);
    expect(received).toBeGreaterThanOrEqual(3);
    expect(received).toBeLessThanOrEqual(9);
    expect(health['status']).toBe('ok');
    expect(traffic.counts.sent).toBe(received);
    expect(traffic.counts.ok + traffic.counts.failed).toBe(received);
    expect(traffic.counts.failed).toBeGreaterThan(0);
  });
});
