/**
 * The exporter while RabbitMQ blocks its publishers: a resource alarm makes
 * the broker stop reading every connection that publishes. Confirms stop
 * coming, the exporter gives up on its connection after `confirmTimeoutMillis`
 * and sends what was in flight again on a new one once the broker reads again.
 * The copies the first connection had already written must not reach the
 * queue as well.
 *
 * BROKER-WIDE: the disk alarm blocks every publisher on the broker, so this
 * file runs in its own vitest project (`broker-wide`), alone, after the others.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { SpanKind } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { RabbitMqSpanExporter } from '@tracehouse/instrumentation';
import type { ChannelModel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RABBITMQ_URL, connectBroker, deleteQueues, readSpans, uniqueQueue, waitFor } from './harness.js';

const RABBITMQCTL = ['/usr/sbin/rabbitmqctl', '/usr/lib/rabbitmq/bin/rabbitmqctl'].find((path) => existsSync(path));

async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(RABBITMQCTL as string, args, { timeout: 60_000 });
  return stdout;
}

/** The disk limit in force and whether a disk alarm is on. */
async function disk(): Promise<{ limit: number; alarm: boolean }> {
  const status = JSON.parse(await rabbitmqctl('status', '--formatter', 'json')) as { disk_free_limit: number; alarms?: Array<{ resource?: string }> };
  return { limit: status.disk_free_limit, alarm: (status.alarms ?? []).some((a) => a.resource === 'disk') };
}

/** Connections the broker lists under `name` (the exporter's connectionName). */
async function connectionsNamed(name: string): Promise<number> {
  const rows = JSON.parse(await rabbitmqctl('list_connections', '--formatter', 'json', 'client_properties')) as Array<{
    client_properties: Array<[string, string, unknown]>;
  }>;
  return rows.filter((row) => row.client_properties.some(([key, , value]) => key === 'connection_name' && value === name)).length;
}

function makeSpans(count: number, label: string): ReadableSpan[] {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'blocked-broker' }),
    spanProcessors: [new SimpleSpanProcessor(memory)],
  });
  const tracer = provider.getTracer('blocked-broker-test');
  for (let i = 0; i < count; i++) tracer.startSpan(`${label} ${i}`, { kind: SpanKind.SERVER, attributes: { i, padding: 'x'.repeat(200) } }).end();
  return memory.getFinishedSpans();
}

describe.skipIf(RABBITMQCTL === undefined)('the exporter while a resource alarm blocks it', () => {
  let broker: ChannelModel;
  let limitBefore: number | undefined;
  const queue = uniqueQueue('blocked');
  const connectionName = `th-blocked-broker ${process.pid}`;

  beforeAll(async () => {
    const before = await disk();
    // Another alarm would make the outcome meaningless.
    expect(before.alarm, 'an alarm before the test').toBe(false);
    limitBefore = before.limit;
    broker = await connectBroker();
  });

  afterAll(async () => {
    // First: whatever failed, the broker must not stay in alarm.
    if (limitBefore !== undefined) await rabbitmqctl('set_disk_free_limit', String(limitBefore));
    await deleteQueues(broker, [queue]);
    await broker.close();
  });

  it('sends again what a confirm timeout gave up on, and the queue gets each span once', async () => {
    const exporter = new RabbitMqSpanExporter({
      rabbitmqUrl: RABBITMQ_URL,
      queue,
      connectionName,
      confirmTimeoutMillis: 1_000,
      // Small messages: several in flight when the broker stops reading.
      maxMessageBytes: 8 * 1024,
      compression: 'none',
    });
    try {
      const before = makeSpans(10, 'before');
      exporter.export(before, () => undefined);
      await exporter.forceFlush();
      expect(exporter.stats().spansExported).toBe(10);

      await rabbitmqctl('set_disk_free_limit', '10000GB');
      await waitFor('the disk alarm', async () => (await disk()).alarm, 30_000);
      const during = makeSpans(300, 'during');
      for (let i = 0; i < during.length; i += 50) {
        exporter.export(during.slice(i, i + 50), () => undefined);
        await sleep(100);
      }
      // Confirm timeouts pass; each gives up on a connection the broker no longer reads.
      await sleep(3_500);
      await rabbitmqctl('set_disk_free_limit', String(limitBefore));
      await waitFor('the alarm to clear', async () => !(await disk()).alarm, 30_000);

      await waitFor('every span delivered', () => exporter.stats().spansExported === 310, 30_000);
      expect(exporter.stats().spansDropped).toMatchObject({ buffer_full: 0, shutdown: 0, too_large: 0 });
      // The connections given up on are gone once the broker reads them again; only the live one stays.
      await waitFor('one connection left', async () => (await connectionsNamed(connectionName)) === 1, 20_000);

      const { spans } = await readSpans(broker, queue);
      const names = spans.map((s) => s.name);
      expect(new Set(names).size).toBe(310);
      expect(names).toHaveLength(310);
    } finally {
      await exporter.shutdown();
    }
  });
});
