/**
 * Opening the span store: errors that retrying cannot fix stop the collector
 * (done() rejects), others keep being retried. The store never opens here, so
 * nothing talks to RabbitMQ.
 */
import { StorageError } from '@tracehouse/storage';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Collector, type CollectorStore } from './collector.js';
import { parseConfig, type CollectorConfig } from './config.js';

const config: CollectorConfig = parseConfig({
  TRACEHOUSE_COLLECTOR_HOST: '127.0.0.1',
  TRACEHOUSE_COLLECTOR_PORT: '0',
  TRACEHOUSE_COLLECTOR_RECONNECT_INITIAL_MS: '1',
  TRACEHOUSE_COLLECTOR_RECONNECT_MAX_MS: '5',
  TRACEHOUSE_COLLECTOR_SHUTDOWN_TIMEOUT_MS: '1000',
});

function collectorWith(openStore: () => Promise<CollectorStore>, overrides: Partial<CollectorConfig> = {}): Collector {
  return new Collector({ config: Object.freeze({ ...config, ...overrides }), logger: pino({ level: 'silent' }), openStore });
}

async function health(collector: Collector): Promise<number | undefined> {
  try {
    return (await fetch(`http://127.0.0.1:${collector.port}/health`, { signal: AbortSignal.timeout(1_000) })).status;
  } catch {
    return undefined;
  }
}

describe('Collector opening the span store', () => {
  it('stops, and done() rejects naming the error, when the store refuses for good', async () => {
    let calls = 0;
    const collector = collectorWith(() => {
      calls++;
      return Promise.reject(new StorageError({ code: 'bad_input', retryable: false, message: 'database "tracehouse-prod" is not a plain identifier' }));
    });
    await collector.start();
    await expect(collector.done()).rejects.toThrow(/cannot open the span store \(bad_input, not retryable\): database "tracehouse-prod"/);
    expect(calls).toBe(1);
    expect(collector.readiness()).toMatchObject({ ready: false, stopping: true });
    // The admin server is closed too: nothing keeps answering 200 on /health.
    expect(await health(collector)).toBeUndefined();
  });

  it('gives up on a bad database name that bypassed the config check, through the real ClickHouseStore.open', async () => {
    // Unmocked store: the identifier check fails before any request is made.
    const collector = new Collector({
      config: Object.freeze({ ...config, clickhouseDatabase: 'tracehouse-prod' }),
      logger: pino({ level: 'silent' }),
    });
    await collector.start();
    await expect(collector.done()).rejects.toThrow(/not retryable.*"tracehouse-prod" is not a plain identifier/);
  });

  it('gives up on a ClickHouse URL the client refuses that bypassed the config check, through the real ClickHouseStore.open', async () => {
    // An unknown URL parameter: @clickhouse/client throws while the store builds it, before any request.
    const collector = new Collector({
      config: Object.freeze({ ...config, clickhouseUrl: 'http://127.0.0.1:8123/?database=x' }),
      logger: pino({ level: 'silent' }),
    });
    await collector.start();
    try {
      // Not the test timeout: a collector retrying forever is stopped below.
      const gaveUp = collector.done().then(
        () => 'resolved',
        (error: unknown) => (error instanceof Error ? error.message : String(error)),
      );
      const outcome = await Promise.race([gaveUp, new Promise((resolve) => setTimeout(resolve, 5_000, 'still retrying after 5 s'))]);
      expect(outcome).toMatch(/^cannot open the span store \(bad_input, not retryable\): the ClickHouse client refuses the URL: Unknown URL parameters: database/);
    } finally {
      await collector.stop();
    }
  });

  it('closes a store that finishes opening after stop() gave up waiting for it', async () => {
    let closed = 0;
    let opened!: () => void;
    const store: CollectorStore = {
      writer: { writeEncoded: () => Promise.resolve() },
      ping: () => Promise.resolve(true),
      close: () => {
        closed++;
        return Promise.resolve();
      },
    };
    // The open takes longer than the shutdown waits for it (1 s here).
    const collector = collectorWith(() => new Promise<CollectorStore>((resolve) => (opened = () => resolve(store))));
    await collector.start();
    await collector.stop();
    expect(closed).toBe(0);
    opened();
    await collector.done();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(closed).toBe(1);
  });

  it('keeps retrying while ClickHouse is down, and done() resolves after stop()', async () => {
    // The real store against a port where nothing listens: connection refused, retryable.
    const collector = new Collector({
      config: Object.freeze({ ...config, clickhouseUrl: 'http://127.0.0.1:1' }),
      logger: pino({ level: 'silent' }),
    });
    await collector.start();
    let settled = false;
    const done = collector.done().finally(() => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 500)); // many retries at 1-5 ms
    expect(settled).toBe(false);
    expect(await health(collector)).toBe(200);
    expect(collector.readiness().ready).toBe(false);
    await collector.stop();
    await expect(done).resolves.toBeUndefined();
  });

  it('retries errors that are not StorageErrors, as before', async () => {
    let calls = 0;
    const collector = collectorWith(() => {
      calls++;
      return Promise.reject(new Error('something odd'));
    });
    await collector.start();
    for (let i = 0; i < 200 && calls < 3; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(calls).toBeGreaterThanOrEqual(3);
    await collector.stop();
    await expect(collector.done()).resolves.toBeUndefined();
  });
});
