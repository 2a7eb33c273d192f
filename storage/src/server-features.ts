/**
 * What the schema and the queries may use on a given server, decided once from
 * `SELECT version()`. ClickHouse 18.16 (Debian's package) has none of these;
 * every release since 20.3 has all of them, so one threshold keeps the schema
 * to two shapes (old / modern) instead of a matrix.
 */
export interface ServerFeatures {
  /** `{name:Type}` placeholders bound by the server (param_* over HTTP). */
  serverParams: boolean;
  /** `TTL` on MergeTree tables. */
  ttl: boolean;
  /** Column compression codecs (Delta, ZSTD). */
  codecs: boolean;
  /** Data-skipping indexes (bloom_filter, minmax). */
  skipIndexes: boolean;
  /** LowCardinality(String) without an experimental setting. */
  lowCardinality: boolean;
}

export interface ServerVersion {
  major: number;
  minor: number;
  text: string;
}

export function parseServerVersion(text: string): ServerVersion {
  const match = /^(\d+)\.(\d+)/.exec(text.trim());
  if (match === null) throw new Error(`cannot parse ClickHouse version "${text}"`);
  return { major: Number(match[1]), minor: Number(match[2]), text: text.trim() };
}

export function featuresFor(version: ServerVersion): ServerFeatures {
  const modern = version.major > 20 || (version.major === 20 && version.minor >= 3);
  return { serverParams: modern, ttl: modern, codecs: modern, skipIndexes: modern, lowCardinality: modern };
}
