// SIGTERM: buffered spans are delivered on the way out, and a broker that
// cannot be reached does not hold the process beyond the flush timeout.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { readSpans, uniqueQueue, useTestBed, type RunningService } from './harness.js';

const SHUTDOWN_TIMEOUT_MS = 1000;
/** startTracing bounds the whole SDK shutdown by the exporter's timeout plus 1.5 s; allow process teardown on a busy 2-core box. */
const EXIT_BUDGET_MS = SHUTDOWN_TIMEOUT_MS + 1500 + 1000;

const bed = useTestBed();
const servers: net.Server[] = [];
const sockets = new Set<net.Socket>();
bed.cleanup(async () => {
  for (const socket of sockets) socket.destroy();
  for (const server of servers) await new Promise((resolve) => server.close(resolve));
});

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A "broker" that accepts TCP connections and never says a word. */
async function silentBroker(): Promise<number> {
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

/** The service against a broker on `port` that cannot be used, shutting down within SHUTDOWN_TIMEOUT_MS. */
function strandedService(port: number, env: Record<string, string> = {}): Promise<RunningService> {
  return bed.startService({
    TRACEHOUSE_RABBITMQ_URL: `amqp://guest:guest@127.0.0.1:${port}`,
    TRACEHOUSE_QUEUE: uniqueQueue('unreachable'),
    OTEL_SERVICE_NAME: 'stranded-service',
    INSTRUMENTATION: 'http',
    TRACEHOUSE_SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
    ...env,
  });
}

async function requests(service: RunningService, count: number): Promise<void> {
  for (let i = 0; i < count; i++) expect((await service.get(`/r/${i}`)).status).toBe(200);
}

/** The service with its spans held by the batch processor until shutdown, after `count` requests. */
async function busyService(env: Record<string, string>, count: number): Promise<{ service: RunningService; queue: string }> {
  const queue = bed.queue('shutdown');
  const service = await bed.startService({
    TRACEHOUSE_QUEUE: queue,
    OTEL_SERVICE_NAME: 'shutdown-service',
    INSTRUMENTATION: 'http',
    // Nothing leaves before shutdown: the batch processor waits a minute.
    OTEL_BSP_SCHEDULE_DELAY: '60000',
    TRACEHOUSE_SHUTDOWN_TIMEOUT_MS: '5000',
    ...env,
  });
  await requests(service, count);
  return { service, queue };
}

describe('shutdown on SIGTERM', () => {
  it('delivers the spans still held by the SDK and the exporter', async () => {
    const { service, queue } = await busyService({}, 40);
    expect((await service.stats()).spansExported).toBe(0);

    const sent = Date.now();
    service.child.kill('SIGTERM');
    const exit = await service.exited();
    // startTracing re-raises the signal once it has flushed: the process dies of SIGTERM as it would without us.
    expect(exit.signal).toBe('SIGTERM');
    expect(exit.at - sent).toBeLessThan(5000);

    const { spans } = await readSpans(bed.broker, queue);
    expect(spans).toHaveLength(40);
    expect(new Set(spans.map((s) => s.tags?.['url.path']))).toEqual(
      new Set(Array.from({ length: 40 }, (_, i) => `/r/${i}`)),
    );
  });

  it.each([
    ['refused (nothing listening)', closedPort],
    ['silent (accepts TCP, never answers)', silentBroker],
  ])('does not hold the exit beyond the flush timeout when the broker is %s', async (_label, brokerPort) => {
    const service = await strandedService(await brokerPort());
    await requests(service, 20);
    const stats = await service.stats();
    expect(stats.connected).toBe(false);

    const sent = Date.now();
    service.child.kill('SIGTERM');
    const exit = await service.exited();
    const took = exit.at - sent;
    console.log(`exit with an unreachable broker (${_label}): ${took} ms after SIGTERM`);
    expect(exit.signal).toBe('SIGTERM');
    expect(took).toBeLessThan(EXIT_BUDGET_MS);
    expect(service.stderr()).not.toMatch(/Unhandled|TypeError|ReferenceError/);
  });
});

describe('shutdown when other SIGTERM listeners are there', () => {
  const paths = async (queue: string): Promise<string[]> =>
    (await readSpans(bed.broker, queue)).spans.map((span) => String(span.tags?.['url.path'])).sort();
  const expectedPaths = (count: number): string[] => Array.from({ length: count }, (_, i) => `/r/${i}`).sort();

  it("ends the process with signal-exit's handlers run, and delivers the spans (signal-exit waits for a lone listener too)", async () => {
    const { service, queue } = await busyService({ SIGNAL_EXIT: '1' }, 10);
    service.child.kill('SIGTERM');
    const exit = await service.exited();
    expect(exit.signal).toBe('SIGTERM');
    expect(service.stderr()).toContain('signal-exit cleanup');
    expect(await paths(queue)).toEqual(expectedPaths(10));
  });

  it('keeps one setup when startTracing is called twice: each request traced once, and SIGTERM ends the process', async () => {
    const { service, queue } = await busyService({ START_TWICE: '1' }, 10);
    service.child.kill('SIGTERM');
    const exit = await service.exited();
    expect(exit.signal).toBe('SIGTERM');
    expect(await paths(queue)).toEqual(expectedPaths(10));
  });

  it('delivers the spans before an app listener that calls process.exit at once', async () => {
    const { service, queue } = await busyService({ APP_ON_SIGTERM: 'exit' }, 10);
    service.child.kill('SIGTERM');
    const exit = await service.exited();
    expect(exit.code).toBe(0);
    expect(await paths(queue)).toEqual(expectedPaths(10));
  });

  it('delivers the span of a request the app lets finish before it calls process.exit', async () => {
    const { service, queue } = await busyService({ APP_ON_SIGTERM: 'close' }, 5);
    const slow = service.get('/slow/0');
    await new Promise((resolve) => setTimeout(resolve, 100));
    service.child.kill('SIGTERM');
    expect((await slow).status).toBe(200);
    const exit = await service.exited();
    expect(exit.code).toBe(0);
    expect(await paths(queue)).toEqual([...expectedPaths(5), '/slow/0'].sort());
  });

  it('does not hold the exit of an app that closes its server beyond the shutdown timeout when the broker is refused', async () => {
    const service = await strandedService(await closedPort(), { APP_ON_SIGTERM: 'drain' });
    await requests(service, 5);
    const sent = Date.now();
    service.child.kill('SIGTERM');
    const exit = await service.exited();
    expect(exit.code).toBe(0);
    expect(exit.at - sent).toBeLessThan(EXIT_BUDGET_MS);
  });
});
