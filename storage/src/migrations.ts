import type { Engine } from './engine.js';
import type { Logger } from './logger.js';
import { DATA_TABLES, MIGRATIONS, ttlDaysOf, ttlExpression, type Migration, type SchemaContext } from './schema.js';
import { bindSql, type BindMode } from './sql-binding.js';
import { clickhouseCode } from './error-mapping.js';
import { StorageError } from './storage-error.js';

const TABLE_ALREADY_EXISTS = 57;
const DATABASE_ALREADY_EXISTS = 82;

export interface MigrationOutcome {
  /** Versions this call applied (another process may have applied the rest). */
  applied: number[];
  /** Highest version recorded after this call. */
  current: number;
}

/**
 * Applies the migrations not yet recorded in `<db>.schema_migrations`.
 *
 * Several processes may start at once. Every statement is idempotent (IF NOT
 * EXISTS), an "already exists" error from a lost race counts as success, and a
 * version recorded twice is harmless (reads take DISTINCT), so concurrent
 * starters all end with the same schema and none fails.
 */
export async function runMigrations(options: {
  engine: Engine;
  context: SchemaContext;
  bindMode: BindMode;
  logger: Logger;
  migrations?: readonly Migration[];
}): Promise<MigrationOutcome> {
  const { engine, context, bindMode, logger } = options;
  const migrations = options.migrations ?? MIGRATIONS;
  const db = context.database;
  const run = async (sql: string): Promise<void> => {
    try {
      await engine.execute({ sql, params: {} });
    } catch (error) {
      const code = clickhouseCode(error instanceof StorageError ? error.cause : error);
      if (code === TABLE_ALREADY_EXISTS || code === DATABASE_ALREADY_EXISTS) return;
      throw error;
    }
  };

  await run(`CREATE DATABASE IF NOT EXISTS ${db}`);
  await run(`CREATE TABLE IF NOT EXISTS ${db}.schema_migrations (
  version UInt32,
  description String,
  applied_at DateTime
) ENGINE = MergeTree ORDER BY version`);

  const recorded = await engine.query<{ version: number | string }>(
    bindSql(`SELECT DISTINCT version FROM ${db}.schema_migrations ORDER BY version`, {}, bindMode),
  );
  const done = new Set(recorded.map((row) => Number(row.version)));
  const known = Math.max(0, ...migrations.map((m) => m.version));
  const newest = Math.max(0, ...done);
  if (newest > known) {
    logger.warn({ recorded: newest, known }, 'the database has migrations newer than this build; continuing');
  }

  const applied: number[] = [];
  for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
    if (done.has(migration.version)) continue;
    logger.info({ version: migration.version, description: migration.description }, 'applying migration');
    try {
      for (const statement of migration.statements(context)) await run(statement);
    } catch (error) {
      const cause = error instanceof StorageError ? error : undefined;
      throw new StorageError({
        code: cause?.retryable ? cause.code : 'schema',
        retryable: cause?.retryable ?? false,
        message: `migration ${migration.version} (${migration.description}) failed: ${error instanceof Error ? error.message : String(error)}`,
        cause: error,
      });
    }
    await engine.execute(
      bindSql(
        `INSERT INTO ${db}.schema_migrations (version, description, applied_at) VALUES ({version:UInt32}, {description:String}, now())`,
        { version: migration.version, description: migration.description },
        // INSERT ... VALUES is parsed by the insert parser, which does not take
        // server-side parameters on every version: always use literals here.
        'literal',
      ),
    );
    applied.push(migration.version);
  }
  return { applied, current: Math.max(newest, ...applied) };
}

/**
 * Per data table found, its TTL in days, or undefined when it has none or one
 * that is not a plain day TTL (see ttlDaysOf). Servers with TTL only; empty
 * elsewhere.
 */
export async function readTtlDays(options: {
  engine: Engine;
  context: Pick<SchemaContext, 'database' | 'features'>;
}): Promise<Map<(typeof DATA_TABLES)[number], number | undefined>> {
  const { engine, context } = options;
  const found = new Map<(typeof DATA_TABLES)[number], number | undefined>();
  if (!context.features.ttl) return found;
  const rows = await engine.query<{ name: string; engine_full: string }>(
    bindSql(
      'SELECT name, engine_full FROM system.tables WHERE database = {db:String} AND name IN {tables:Array(String)}',
      { db: context.database, tables: [...DATA_TABLES] },
      'server',
    ),
  );
  for (const row of rows) {
    const table = row.name as (typeof DATA_TABLES)[number];
    found.set(table, ttlDaysOf(table, row.engine_full));
  }
  return found;
}

/**
 * Brings the TTL of every data table to `retentionDays` (servers with TTL
 * only). The TTL is written when a table is created; a later start with
 * another retention changes it here, without rewriting existing parts
 * (materialize_ttl_after_modify = 0: old parts expire as they are merged or
 * dropped by enforceRetention). Only a store given an explicit retention
 * calls this: readers must not reset the writer's TTL.
 */
export async function syncTtl(options: { engine: Engine; context: SchemaContext; logger: Logger }): Promise<void> {
  const { engine, context, logger } = options;
  for (const [table, days] of await readTtlDays({ engine, context })) {
    if (days === context.retentionDays) continue;
    logger.info({ table, from: days, to: context.retentionDays }, 'changing table TTL to the configured retention');
    await engine.execute({
      sql: `ALTER TABLE ${context.database}.${table} MODIFY TTL ${ttlExpression(table, context.retentionDays)} SETTINGS materialize_ttl_after_modify = 0`,
      params: {},
    });
  }
}
