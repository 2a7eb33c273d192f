/**
 * An app that uses RabbitMQ itself gets its own amqplib calls traced, while
 * the exporter's publishing of spans (on another connection of the same
 * process, through the same patched amqplib) is never traced.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { RABBITMQ_URL, readSpans, useTestBed } from './harness.js';

const APP_SCRIPT = fileURLToPath(new URL('../dist/instrumentation/fixtures/amqp-app.js', import.meta.url));

describe('an app using amqplib itself', () => {
  const bed = useTestBed();

  it("traces the app's publish and not the exporter's", async () => {
    const spanQueue = bed.queue('amqp-spans');
    const appQueue = bed.queue('amqp-app');
    const child = spawn(process.execPath, [APP_SCRIPT], {
      env: { PATH: process.env.PATH ?? '', TRACEHOUSE_RABBITMQ_URL: RABBITMQ_URL, TRACEHOUSE_QUEUE: spanQueue, APP_QUEUE: appQueue },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    clearTimeout(killer);
    expect(code, `the app did not exit by itself: ${stderr}`).toBe(0);

    // The exporter declares the span queue when it first connects: without it, no span was ever sent.
    const probe = await bed.broker.createChannel();
    probe.on('error', () => undefined);
    const declared = await probe.checkQueue(spanQueue).then(
      () => true,
      () => false,
    );
    await probe.close().catch(() => undefined);
    expect(declared, 'the exporter never reached the broker').toBe(true);
    const { spans } = await readSpans(bed.broker, spanQueue);
    const producers = spans.filter((span) => span.kind === 'PRODUCER');
    // The app's one publish, with the queue it went to...
    expect(producers).toHaveLength(1);
    expect(producers[0]?.localEndpoint?.serviceName).toBe('amqp-app');
    expect(JSON.stringify(producers[0])).toContain(appQueue);
    // ...and nothing about the exporter's own traffic to the span queue.
    expect(JSON.stringify(spans)).not.toContain(spanQueue);
  });
});
