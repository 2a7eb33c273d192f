/**
 * Messages exactly as Zipkin's RabbitMQ sender publishes them (default
 * exchange, routing key = queue, no properties at all; a JSON v2 list or a
 * proto3 ListOfSpans) are stored; the collector uses an existing queue
 * declared with other arguments, declares a quorum queue when asked, and
 * stops gracefully on SIGTERM with everything acked.
 */
import { describe, expect, it } from 'vitest';
import { METRIC, type Rabbit, uniqueName, useCollectorBed, waitFor } from './harness.js';
import { listOfSpans, type ProtoSpan } from './zipkin-proto.js';

const nowMicros = Date.now() * 1000;

// What Brave's JSON v2 encoder writes: compact, fields in Zipkin's order, a 128-bit trace id.
const braveJson = `[{"traceId":"5af7183fb1d4cf5f463acd34bc05cd21","parentId":"6b221d5bc9e6496c","id":"352bff9a74ca9ad2","kind":"CLIENT","name":"get /api","timestamp":${nowMicros},"duration":207000,"localEndpoint":{"serviceName":"frontend","ipv4":"192.168.99.1","port":8080},"remoteEndpoint":{"serviceName":"backend","ipv4":"172.19.0.2","port":9000},"annotations":[{"timestamp":${nowMicros + 10},"value":"ws"}],"tags":{"http.method":"GET","http.path":"/api"}},{"traceId":"5af7183fb1d4cf5f463acd34bc05cd21","parentId":"6b221d5bc9e6496c","id":"352bff9a74ca9ad2","kind":"SERVER","name":"get /api","timestamp":${nowMicros + 100},"duration":150000,"localEndpoint":{"serviceName":"backend","ipv4":"172.19.0.2"},"remoteEndpoint":{"ipv4":"192.168.99.1"},"shared":true}]`;

const protoSpans: ProtoSpan[] = [
  {
    traceId: '463acd34bc05cd21',
    id: '1a2b3c4d5e6f7081',
    kind: 'PRODUCER',
    name: 'send',
    timestamp: nowMicros,
    duration: 42,
    localEndpoint: { serviceName: 'orders', ipv4: '10.1.2.3', port: 5672 },
    remoteEndpoint: { serviceName: 'rabbitmq' },
    annotations: [{ timestamp: nowMicros + 1, value: 'ms' }],
    tags: { 'messaging.destination': 'orders' },
    debug: true,
  },
  { traceId: '463acd34bc05cd21', parentId: '1a2b3c4d5e6f7081', id: '0000000000000002', kind: 'CONSUMER', name: 'receive', timestamp: nowMicros + 500, duration: 7, localEndpoint: { serviceName: 'billing' } },
];

/** Whether the broker accepts re-declaring `queue` as this type: it refuses (406) a type other than the queue's own. */
async function declaredAs(rabbit: Rabbit, queue: string, type: 'classic' | 'quorum', args: Record<string, unknown> = {}): Promise<boolean> {
  const channel = await rabbit.connection.createChannel();
  channel.on('error', () => undefined);
  try {
    await channel.assertQueue(queue, { durable: true, arguments: { ...args, 'x-queue-type': type } });
    return true;
  } catch (error) {
    if ((error as { code?: unknown }).code === 406) return false;
    throw error;
  } finally {
    await channel.close().catch(() => undefined);
  }
}

describe('Zipkin wire compatibility', () => {
  const bed = useCollectorBed();

  it('stores what Zipkin senders publish on a queue declared by someone else, then stops cleanly on SIGTERM', async () => {
    const rabbit = bed.rabbit();
    const queue = uniqueName('th_zipkin');
    // The queue exists already, with arguments the collector would not choose.
    const setup = await rabbit.connection.createChannel();
    await setup.assertQueue(queue, { durable: true, arguments: { 'x-max-length': 1_000_000, 'x-overflow': 'reject-publish' } });
    await setup.close();
    const { store, collector } = await bed.collectorOn({ queue, database: uniqueName('th_zipkin') });

    // No properties at all: no content type, no encoding, no headers.
    await rabbit.publish(queue, Buffer.from(braveJson));
    await rabbit.publish(queue, listOfSpans(protoSpans));

    await waitFor(async () => (await collector.metrics()).value(METRIC.acked) >= 2, { timeoutMs: 20_000, what: 'both messages acked' });

    const jsonTrace = await store.reader.getTrace('5af7183fb1d4cf5f463acd34bc05cd21');
    expect(jsonTrace).toHaveLength(2);
    const client = jsonTrace.find((s) => s.kind === 'CLIENT');
    const server = jsonTrace.find((s) => s.kind === 'SERVER');
    expect(client).toMatchObject({
      traceId: '5af7183fb1d4cf5f463acd34bc05cd21',
      parentId: '6b221d5bc9e6496c',
      id: '352bff9a74ca9ad2',
      name: 'get /api',
      timestamp: nowMicros,
      duration: 207000,
      localEndpoint: { serviceName: 'frontend', ipv4: '192.168.99.1', port: 8080 },
      remoteEndpoint: { serviceName: 'backend', ipv4: '172.19.0.2', port: 9000 },
      annotations: [{ timestamp: nowMicros + 10, value: 'ws' }],
      tags: { 'http.method': 'GET', 'http.path': '/api' },
    });
    expect(server).toMatchObject({ id: '352bff9a74ca9ad2', shared: true, localEndpoint: { serviceName: 'backend' } });

    const protoTrace = await store.reader.getTrace('463acd34bc05cd21');
    expect(protoTrace).toHaveLength(2);
    expect(protoTrace.find((s) => s.id === '1a2b3c4d5e6f7081')).toMatchObject({
      kind: 'PRODUCER',
      name: 'send',
      timestamp: nowMicros,
      duration: 42,
      debug: true,
      localEndpoint: { serviceName: 'orders', ipv4: '10.1.2.3', port: 5672 },
      remoteEndpoint: { serviceName: 'rabbitmq' },
      annotations: [{ timestamp: nowMicros + 1, value: 'ms' }],
      tags: { 'messaging.destination': 'orders' },
    });
    expect(protoTrace.find((s) => s.id === '0000000000000002')).toMatchObject({ kind: 'CONSUMER', parentId: '1a2b3c4d5e6f7081' });

    // SIGTERM with spans still in an open batch: they are written and acked before exit 0.
    const more = JSON.stringify([{ traceId: 'aaaaaaaaaaaaaaaa', id: 'bbbbbbbbbbbbbbbb', name: 'late', timestamp: nowMicros, duration: 1, localEndpoint: { serviceName: 'frontend' } }]);
    await rabbit.publish(queue, Buffer.from(more));
    await waitFor(async () => (await collector.metrics()).value(METRIC.consumed) >= 3, { timeoutMs: 10_000, what: 'third message received' });
    const started = Date.now();
    const code = await collector.stop();
    expect(code).toBe(0);
    // Well within the 10 s shutdown timeout: nothing here is stuck, so no step may wait it out.
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await store.reader.getTrace('aaaaaaaaaaaaaaaa')).toHaveLength(1);
    // Nothing left behind: no ready message, and none unacked (the queue would show it after the consumer left).
    expect(await rabbit.messageCount(queue)).toBe(0);
    expect(collector.logs.some((line) => line.includes('"level":60') || line.includes('"level":50'))).toBe(false);
  });

  it('declares a missing queue as a durable quorum queue when configured', async () => {
    const queue = uniqueName('th_quorum');
    const rabbit = bed.rabbit();
    const { store } = await bed.collectorOn({ queue, database: uniqueName('th_quorum'), env: { TRACEHOUSE_QUEUE_TYPE: 'quorum' } });
    // The span queue dead-letters into the dead-letter exchange (a quorum queue's delivery limit).
    const deadLettering = { 'x-dead-letter-exchange': `${queue}.dlx`, 'x-dead-letter-routing-key': queue };
    for (const [name, args] of [[queue, deadLettering], [`${queue}.dlq`, {}]] as const) {
      expect(await declaredAs(rabbit, name, 'quorum', args), name).toBe(true);
      expect(await declaredAs(rabbit, name, 'classic', args), name).toBe(false);
    }

    await rabbit.publish(queue, listOfSpans([{ traceId: 'cccccccccccccccc', id: 'dddddddddddddddd', name: 'q', timestamp: nowMicros, localEndpoint: { serviceName: 'q' } }]));
    await waitFor(async () => (await store.reader.getTrace('cccccccccccccccc')).length === 1, { timeoutMs: 20_000, what: 'span stored from the quorum queue' });
  });
});
