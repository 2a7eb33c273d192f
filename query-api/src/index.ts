// Public surface of @tracehouse/query-api.
export { buildApp, queryApi, queryApiFrameworkErrors, withTimeout } from './app.js';
export type { AppConfig, BuildAppOptions, QueryApiOptions, QueryApp } from './app.js';
export { parseConfig, ConfigError } from './config.js';
export type { QueryApiConfig, LogLevel } from './config.js';
export { startServer, stopOnSignals } from './server.js';
export type { QueryServer } from './server.js';
export { mergeTrace } from './trace-merge.js';
export {
  normalizeTraceId,
  parseAnnotationQuery,
  parseTraceIds,
  parseTracesQuery,
  parseWindow,
  parseName,
  parseTagKey,
} from './params.js';
export type { AnnotationQueryTerm, TraceQueryParams, WindowParams, QueryBounds, RawTracesQuery } from './params.js';
export { ApiError, ERROR_CODES } from './errors.js';
export type { ErrorCode, ErrorBody } from './errors.js';
