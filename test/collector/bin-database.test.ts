/**
 * A database the collector can never use stops the tracehouse-collector bin,
 * instead of retrying the store forever: a bad name at once, naming the
 * variable; a store that fails to open with a non-retryable error once it does.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createUnmigratableDatabase, dropDatabase } from '@tracehouse/storage/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { CLICKHOUSE_URL, COLLECTOR_BIN, freePort, uniqueName } from './harness.js';

/** Runs the bin on `database` until it exits by itself (a collector retrying forever hits the timeout). */
async function runCollector(database: string, timeout: number): Promise<SpawnSyncReturns<string>> {
  return spawnSync(process.execPath, [COLLECTOR_BIN], {
    env: {
      PATH: process.env.PATH ?? '',
      TRACEHOUSE_CLICKHOUSE_URL: CLICKHOUSE_URL,
      TRACEHOUSE_CLICKHOUSE_DATABASE: database,
      TRACEHOUSE_QUEUE: uniqueName('th_bin_db'),
      TRACEHOUSE_COLLECTOR_HOST: '127.0.0.1',
      TRACEHOUSE_COLLECTOR_PORT: String(await freePort()),
    },
    encoding: 'utf8',
    timeout,
  });
}

describe('tracehouse-collector bin with a database it cannot use', () => {
  it('exits non-zero with a message naming TRACEHOUSE_CLICKHOUSE_DATABASE', async () => {
    const result = await runCollector('tracehouse-prod', 20_000);
    expect(result.signal).toBeNull();
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/TRACEHOUSE_CLICKHOUSE_DATABASE: database "tracehouse-prod" is not a plain identifier/);
  });

  describe('whose schema cannot be migrated', () => {
    const database = uniqueName('th_bin_schema');

    afterAll(async () => {
      await dropDatabase({ url: CLICKHOUSE_URL, database });
    });

    it('exits 1 with a fatal log line saying the store cannot open and why', async () => {
      await createUnmigratableDatabase({ url: CLICKHOUSE_URL, database });
      const result = await runCollector(database, 30_000);
      expect(result.signal).toBeNull();
      expect(result.status).toBe(1);
      const fatal = result.stdout
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as { level: number; msg: string })
        .find((line) => line.level === 60);
      expect(fatal?.msg).toMatch(/^tracehouse-collector failed: cannot open the span store \(\w+, not retryable\): .*Type mismatch/);
    });
  });
});
