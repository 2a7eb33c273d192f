// Public surface of @tracehouse/storage: the only package that knows ClickHouse.
export { ClickHouseStore, DEFAULT_MAX_RESULT_BYTES } from './clickhouse-store.js';
export type { ClickHouseStoreOptions, RetentionResult } from './clickhouse-store.js';
export type { SpanWriter } from './span-writer.js';
export { encodeSpans, spansJsonOf } from './span-row.js';
export type { EncodedSpans } from './span-row.js';
export { transcodeSpans } from './json-v2-transcoder.js';
export type { TranscodeResult } from './json-v2-transcoder.js';
export type { TraceReader, TraceQuery, SearchOptions, DependencyLink } from './trace-reader.js';
export { StorageError } from './storage-error.js';
export type { StorageErrorCode } from './storage-error.js';
export { checkIdentifier } from './sql-binding.js';
export type { ServerFeatures } from './server-features.js';
export type { Logger } from './logger.js';
