import type { ServerFeatures } from './server-features.js';

/**
 * The tracehouse schema as versioned migrations. SCHEMA.md explains the
 * choices; in short:
 *
 *   writer ──INSERT──► span_ingest (Null engine: stores nothing)
 *                        ├─ MV ► spans        payload by trace id (ReplacingMergeTree, dedup key)
 *                        ├─ MV ► trace_index  trace id → [ts_min, ts_max]
 *                        ├─ MV ► span_index   search by service/time/name/remote/duration/tags
 *                        ├─ MV ► span_names   service / span name / remote service lists
 *                        └─ MV ► tag_values   autocomplete keys and values
 *
 * Every table is partitioned by UTC day (`intDiv(ts, 86400000000)`, days since
 * the epoch), so retention drops whole partitions with the same arithmetic on
 * every server. Each statement is idempotent (IF NOT EXISTS), so a migration
 * interrupted half-way, or run by several processes at once, ends the same.
 */

export const DAY_MICROS = 86_400_000_000;

/** Retention of tables created by a store opened without `retentionDays`. */
export const DEFAULT_RETENTION_DAYS = 7;

/** Tables that hold data, each partitioned by day number. */
export const DATA_TABLES = ['spans', 'trace_index', 'span_index', 'span_names', 'tag_values'] as const;

/** Columns of span_ingest, in the order span-row.ts writes them. */
export const INGEST_COLUMNS = [
  'trace_id',
  'span_id',
  'parent_id',
  'kind',
  'name',
  'service',
  'remote_service',
  'ts',
  'duration',
  'tag_keys',
  'tag_values',
  'annotation_values',
  'payload',
] as const;

export interface SchemaContext {
  /** Checked identifier (see checkIdentifier). */
  database: string;
  features: ServerFeatures;
  retentionDays: number;
}

export interface Migration {
  version: number;
  description: string;
  statements(context: SchemaContext): string[];
}

const KIND_ENUM = "Enum8('' = 0, 'CLIENT' = 1, 'SERVER' = 2, 'PRODUCER' = 3, 'CONSUMER' = 4)";

function lowCardinality(f: ServerFeatures): string {
  return f.lowCardinality ? 'LowCardinality(String)' : 'String';
}

function codec(f: ServerFeatures, spec: string): string {
  return f.codecs ? ` CODEC(${spec})` : '';
}

/** Per data table, the time (epoch microseconds) its TTL counts from. */
const TTL_TIME: Record<(typeof DATA_TABLES)[number], string> = {
  spans: 'ts',
  trace_index: 'ts_max',
  span_index: 'ts',
  span_names: 'toUInt64(day) * 86400000000',
  tag_values: 'toUInt64(day) * 86400000000',
};

/** The TTL expression of a data table for a retention in days. */
export function ttlExpression(table: (typeof DATA_TABLES)[number], retentionDays: number): string {
  return `toDateTime(intDiv(${TTL_TIME[table]}, 1000000)) + INTERVAL ${retentionDays} DAY`;
}

/**
 * The days of a data table's TTL when it has the shape ttlExpression writes
 * (as system.tables.engine_full shows it). Undefined for no TTL or any other
 * TTL (months, several clauses, moves, WHERE): that one is the operator's.
 */
export function ttlDaysOf(table: (typeof DATA_TABLES)[number], engineFull: string): number | undefined {
  const clause = / TTL (.+?)(?: SETTINGS |$)/.exec(engineFull)?.[1];
  const prefix = `toDateTime(intDiv(${TTL_TIME[table]}, 1000000)) + `;
  if (clause === undefined || !clause.startsWith(prefix)) return undefined;
  const match = /^(?:toIntervalDay\((\d+)\)|INTERVAL (\d+) DAY)(?: DELETE)?$/.exec(clause.slice(prefix.length));
  return match ? Number(match[1] ?? match[2]) : undefined;
}

/** TTL clause of a data table, when the server has TTL. */
function ttl(context: SchemaContext, table: (typeof DATA_TABLES)[number]): string {
  if (!context.features.ttl) return '';
  return ` TTL ${ttlExpression(table, context.retentionDays)}`;
}

function settings(context: SchemaContext, extra: string[] = []): string {
  const all = [...extra];
  // With TTL, expire whole parts (like the partition drops) rather than rewriting them row by row.
  if (context.features.ttl) all.push('ttl_only_drop_parts = 1');
  return all.length > 0 ? ` SETTINGS ${all.join(', ')}` : '';
}

function skipIndex(f: ServerFeatures, definition: string): string {
  return f.skipIndexes ? `,\n  INDEX ${definition}` : '';
}

const DAY_OF_TS = 'intDiv(ts, 86400000000)';
/** The low 64 bits of a trace_id (16 or 32 hex characters), in SQL every supported server runs; the reader groups by it too. */
export const TRACE_LOW = 'substring(trace_id, length(trace_id) - 15, 16)';
const TRACE_HIGH = 'substring(trace_id, 1, length(trace_id) - 16)';

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'span_ingest with spans, trace_index, span_index, span_names and tag_values',
    statements(c) {
      const db = c.database;
      const f = c.features;
      const lc = lowCardinality(f);
      return [
        `CREATE TABLE IF NOT EXISTS ${db}.span_ingest (
  trace_id String,
  span_id String,
  parent_id String,
  kind ${KIND_ENUM},
  name String,
  service String,
  remote_service String,
  ts UInt64,
  duration UInt64,
  tag_keys Array(String),
  tag_values Array(String),
  annotation_values Array(String),
  payload String
) ENGINE = Null`,

        // The raw spans, found by trace id. The sorting key is also the
        // deduplication key: a replayed span has the same payload, so the same
        // key, and merges keep one copy; readers also read DISTINCT payloads.
        `CREATE TABLE IF NOT EXISTS ${db}.spans (
  trace_low String,
  trace_high String,
  span_id String,
  ts UInt64${codec(f, 'Delta, ZSTD(1)')},
  payload String${codec(f, 'ZSTD(1)')}
) ENGINE = ReplacingMergeTree
PARTITION BY ${DAY_OF_TS}
ORDER BY (trace_low, trace_high, span_id, cityHash64(payload))${ttl(c, 'spans')}${settings(c, ['index_granularity = 1024'])}`,
        `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.spans_mv TO ${db}.spans AS
SELECT ${TRACE_LOW} AS trace_low, ${TRACE_HIGH} AS trace_high, span_id, ts, payload
FROM ${db}.span_ingest`,

        // trace id → time range, so a lookup by id reads only the days the
        // trace lives in. Keyed on the low 64 bits so that non-strict lookups
        // (a 16-character id for a 32-character trace) use it too.
        `CREATE TABLE IF NOT EXISTS ${db}.trace_index (
  trace_low String,
  ts_min UInt64${codec(f, 'Delta, ZSTD(1)')},
  ts_max UInt64${codec(f, 'Delta, ZSTD(1)')}
) ENGINE = MergeTree
PARTITION BY intDiv(ts_min, 86400000000)
ORDER BY trace_low${ttl(c, 'trace_index')}${settings(c, ['index_granularity = 1024'])}`,
        `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.trace_index_mv TO ${db}.trace_index AS
SELECT ${TRACE_LOW} AS trace_low, min(ts) AS ts_min, max(ts) AS ts_max
FROM ${db}.span_ingest
GROUP BY trace_low`,

        // One row per span for searches: by service then time, with what the
        // Zipkin query filters on. Tags and annotation values are kept as the
        // arrays the writer sends (copying them is cheap at insert; building
        // Zipkin-Cassandra-style "key=value" strings here cost more than all
        // the other views together), and the reader tests a key=value term
        // with tag_values[indexOf(tag_keys, key)].
        `CREATE TABLE IF NOT EXISTS ${db}.span_index (
  service ${lc},
  ts UInt64${codec(f, 'Delta, ZSTD(1)')},
  name ${lc},
  remote_service ${lc},
  trace_id String,
  span_id String,
  parent_id String,
  kind ${KIND_ENUM},
  duration UInt64${codec(f, 'T64, ZSTD(1)')},
  error UInt8,
  tag_keys Array(${lc}),
  tag_values Array(String)${codec(f, 'ZSTD(1)')},
  annotation_values Array(String)${codec(f, 'ZSTD(1)')}${skipIndex(f, 'idx_tag_keys tag_keys TYPE bloom_filter(0.01) GRANULARITY 4')}${skipIndex(f, 'idx_tag_values tag_values TYPE bloom_filter(0.01) GRANULARITY 4')}${skipIndex(f, 'idx_annotation_values annotation_values TYPE bloom_filter(0.01) GRANULARITY 4')}${skipIndex(f, 'idx_name name TYPE set(256) GRANULARITY 4')}${skipIndex(f, 'idx_remote remote_service TYPE set(256) GRANULARITY 4')}${skipIndex(f, 'idx_duration duration TYPE minmax GRANULARITY 4')}
) ENGINE = MergeTree
PARTITION BY ${DAY_OF_TS}
ORDER BY (service, ts)${ttl(c, 'span_index')}${settings(c)}`,
        `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.span_index_mv TO ${db}.span_index AS
SELECT service, ts, name, remote_service, trace_id, span_id, parent_id, kind, duration,
  has(tag_keys, 'error') AS error, tag_keys, tag_values, annotation_values
FROM ${db}.span_ingest`,

        // Name lists: a handful of rows per insert (GROUP BY per block), merged per day.
        `CREATE TABLE IF NOT EXISTS ${db}.span_names (
  day UInt32,
  service ${lc},
  name ${lc},
  remote_service ${lc}
) ENGINE = ReplacingMergeTree
PARTITION BY day
ORDER BY (service, name, remote_service)${ttl(c, 'span_names')}${settings(c)}`,
        `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.span_names_mv TO ${db}.span_names AS
SELECT toUInt32(${DAY_OF_TS}) AS day, service, name, remote_service
FROM ${db}.span_ingest
GROUP BY day, service, name, remote_service`,

        // Autocomplete: tag keys and values (values up to 256 characters).
        `CREATE TABLE IF NOT EXISTS ${db}.tag_values (
  day UInt32,
  key ${lc},
  value String
) ENGINE = ReplacingMergeTree
PARTITION BY day
ORDER BY (key, value)${ttl(c, 'tag_values')}${settings(c)}`,
        `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.tag_values_mv TO ${db}.tag_values AS
SELECT toUInt32(${DAY_OF_TS}) AS day, key, value
FROM ${db}.span_ingest
ARRAY JOIN tag_keys AS key, tag_values AS value
WHERE length(value) <= 256
GROUP BY day, key, value`,
      ];
    },
  },
];
