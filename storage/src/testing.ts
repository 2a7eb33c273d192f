// @tracehouse/storage/testing: synthetic spans and broken databases for the
// tests and benchmarks of packages built on storage. Kept off the main entry
// point, which is what production code imports; SQL stays in this package.
import { HttpEngine } from './http-engine.js';
import { checkIdentifier } from './sql-binding.js';

export { generateSpans, DEFAULT_SERVICES } from './span-generator.js';
export type { GenerateOptions } from './span-generator.js';

async function withServer(url: string, work: (engine: HttpEngine) => Promise<void>): Promise<void> {
  const engine = new HttpEngine({ url, queryTimeoutMs: 30_000 });
  try {
    await work(engine);
  } finally {
    await engine.close();
  }
}

/**
 * Makes `database` (on the ClickHouse server at `url`) one no store can open:
 * its migrations table cannot record a migration (ClickHouse answers
 * TYPE_MISMATCH, which storage reports as not retryable).
 */
export async function createUnmigratableDatabase(options: { url: string; database: string }): Promise<void> {
  const db = checkIdentifier('database', options.database);
  await withServer(options.url, async (engine) => {
    await engine.execute({ sql: `CREATE DATABASE ${db}`, params: {} });
    await engine.execute({
      sql: `CREATE TABLE ${db}.schema_migrations (version UInt32, description UInt8, applied_at DateTime) ENGINE = MergeTree ORDER BY version`,
      params: {},
    });
  });
}

/** Drops `database` on the ClickHouse server at `url`, if it exists. */
export async function dropDatabase(options: { url: string; database: string }): Promise<void> {
  const db = checkIdentifier('database', options.database);
  await withServer(options.url, (engine) => engine.execute({ sql: `DROP DATABASE IF EXISTS ${db}`, params: {} }));
}
