// The broker goes away while an instrumented service serves requests, then
// comes back: the service never notices, the exporter buffers within its
// bound, counts what it drops, reconnects and delivers again.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { BrokerProxy, readSpans, useTestBed, waitFor, type RunningService } from './harness.js';

const run = promisify(execFile);
const RABBITMQCTL = ['/usr/sbin/rabbitmqctl', '/usr/lib/rabbitmq/bin/rabbitmqctl'].find((path) => existsSync(path));

/** The broker-side id of the connection whose client named itself with `namePart` (as close_connection takes it). */
async function connectionPid(namePart: string): Promise<string | undefined> {
  const { stdout } = await run(RABBITMQCTL as string, [
    '-q',
    'list_connections',
    '--no-table-headers',
    'pid',
    'client_properties',
  ]);
  // One line per connection: "<rabbit@host.1.2.3>\t[{...client properties...}]"
  const line = stdout.split('\n').find((l) => l.includes(namePart));
  return line?.split('\t')[0]?.trim();
}

const BUFFER_CAP = 300;

const bed = useTestBed();

/** Sends `count` requests, `concurrency` at a time; returns the status codes seen. */
async function load(service: RunningService, count: number, concurrency = 20): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++;
      const { status } = await service.get(`/work/${next}`);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return statuses;
}

describe('broker outage', () => {
  it('keeps serving, bounds its buffer, counts drops, reconnects and delivers again', async () => {
    const queue = bed.queue('outage');
    const proxy = new BrokerProxy();
    bed.cleanup(() => proxy.stop());
    await proxy.start();
    const service = await bed.startService({
      TRACEHOUSE_RABBITMQ_URL: proxy.url(),
      TRACEHOUSE_QUEUE: queue,
      TRACEHOUSE_MAX_BUFFERED_SPANS: String(BUFFER_CAP),
      OTEL_SERVICE_NAME: 'outage-service',
      INSTRUMENTATION: 'http',
    });

    // 1. Broker there: spans flow.
    expect(await load(service, 100)).toEqual(new Map([[200, 100]]));
    await waitFor('the first spans to be confirmed', async () => (await service.stats()).spansExported >= 100);
    const before = await service.stats();
    expect(before.connected).toBe(true);

    // 2. Broker gone: every request still succeeds; the buffer fills to its cap and then drops.
    await proxy.cut();
    await waitFor('the exporter to notice', async () => !(await service.stats()).connected, 10_000);
    const outageStart = Date.now();
    const during = await load(service, 3000);
    const outageLoadMillis = Date.now() - outageStart;
    expect(during).toEqual(new Map([[200, 3000]]));
    await waitFor('the batch processor to hand every span over', async () => {
      const s = await service.stats();
      return s.bufferedSpans + s.spansDropped.buffer_full >= 3000;
    });
    const cut = await service.stats();
    expect(cut.connected).toBe(false);
    expect(cut.bufferedSpans).toBe(BUFFER_CAP);
    expect(cut.spansDropped.buffer_full).toBeGreaterThanOrEqual(3000 - BUFFER_CAP);
    expect(cut.spansExported).toBe(before.spansExported);
    // Memory stays bounded: 3000 requests' worth of spans did not pile up.
    expect(cut.rss).toBeLessThan(before.rss + 64 * 1024 * 1024);
    expect(cut.bufferedBytes).toBeLessThan(BUFFER_CAP * 4096);

    // 3. Broker back: the exporter reconnects by itself and delivers its buffer.
    await proxy.restore();
    await waitFor(
      'the buffer to be delivered after reconnecting',
      async () => {
        const s = await service.stats();
        return s.connected && s.bufferedSpans === 0 && s.spansExported >= before.spansExported + BUFFER_CAP;
      },
      45_000,
    );

    // 4. And new spans flow again.
    expect(await load(service, 50)).toEqual(new Map([[200, 50]]));
    await waitFor(
      'new spans after reconnection',
      async () => (await service.stats()).spansExported >= before.spansExported + BUFFER_CAP + 50,
    );
    const after = await service.stats();

    // What the exporter says it delivered is what the queue holds.
    const { spans, messages } = await readSpans(bed.broker, queue);
    expect(spans).toHaveLength(after.spansExported);
    expect(messages).toBe(after.messagesPublished);
    expect(new Set(spans.map((s) => s.id)).size).toBe(spans.length);
    expect(spans.every((s) => s.kind === 'SERVER' && s.localEndpoint?.serviceName === 'outage-service')).toBe(true);
    const paths = new Set(spans.map((s) => s.tags?.['url.path']));
    expect(paths.has('/work/1')).toBe(true); // before the outage
    expect(spans.length).toBe(100 + BUFFER_CAP + 50);
    console.log(
      `outage: 3000 requests in ${outageLoadMillis} ms while cut; dropped ${cut.spansDropped.buffer_full}, ` +
        `buffered ${cut.bufferedSpans} (${cut.bufferedBytes} B), rss ${Math.round(before.rss / 1e6)} -> ${Math.round(cut.rss / 1e6)} MB`,
    );
  });

  // Only where the broker is local and managed by rabbitmqctl (not, say, in a container).
  it.skipIf(RABBITMQCTL === undefined)(
    'recovers when the broker closes its connection (rabbitmqctl close_connection)',
    async () => {
      const queue = bed.queue('close-connection');
      const service = await bed.startService({
        TRACEHOUSE_QUEUE: queue,
        OTEL_SERVICE_NAME: 'closed-service',
        INSTRUMENTATION: 'http',
      });
      expect(await load(service, 20)).toEqual(new Map([[200, 20]]));
      await waitFor('the first spans', async () => (await service.stats()).spansExported >= 20);

      const name = `pid ${service.child.pid}`;
      let pid: string | undefined;
      await waitFor('the connection to be listed', async () => (pid = await connectionPid(name)) !== undefined);
      await run(RABBITMQCTL as string, ['close_connection', pid as string, 'instrumentation test']);
      // Requests while the exporter notices and reconnects.
      expect(await load(service, 200)).toEqual(new Map([[200, 200]]));
      await waitFor('a new connection', async () => {
        const next = await connectionPid(name);
        return next !== undefined && next !== pid;
      });
      await waitFor('every span to be delivered', async () => {
        const s = await service.stats();
        return s.connected && s.spansExported + s.spansDropped.buffer_full >= 220 && s.bufferedSpans === 0;
      });
      const stats = await service.stats();
      expect(stats.spansDropped.buffer_full).toBe(0); // the default buffer holds a short outage
      const { spans } = await readSpans(bed.broker, queue);
      expect(new Set(spans.map((s) => s.id)).size).toBe(220);
    },
  );
});
