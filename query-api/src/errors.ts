/**
 * The errors the query API answers with. Every non-2xx response has the body
 * `{ code, message, parameter? }` (see README.md, "Errors"):
 *
 * | status | code                  | when                                               |
 * | ------ | --------------------- | -------------------------------------------------- |
 * | 400    | `INVALID_PARAMETER`   | a parameter is malformed or out of bounds          |
 * | 400    | `MISSING_PARAMETER`   | a required parameter is absent or empty            |
 * | 400    | `RESULT_TOO_LARGE`    | the answer holds more than TRACEHOUSE_QUERY_MAX_RESULT_BYTES |
 * | 400    | `MALFORMED_REQUEST`   | the bytes are not HTTP/1.1 (refused before routing) |
 * | 401    | `UNAUTHORIZED`        | a bearer token is configured and was not presented |
 * | 404    | `TRACE_NOT_FOUND`     | `/trace/{traceId}` names no stored trace           |
 * | 404    | `NOT_FOUND`           | no such route                                      |
 * | 408    | `REQUEST_TIMEOUT`     | the request did not arrive in time                 |
 * | 431    | `REQUEST_TOO_LARGE`   | request line and headers over 1 MiB                |
 * | 503    | `STORAGE_UNAVAILABLE` | ClickHouse could not answer                        |
 * | 503    | `SHUTTING_DOWN`       | the server is stopping (request on an open socket) |
 * | 504    | `QUERY_TIMEOUT`       | the query took longer than the configured timeout  |
 * | 500    | `INTERNAL`            | anything else (logged, details not exposed)        |
 */
export const ERROR_CODES = [
  'INVALID_PARAMETER',
  'MISSING_PARAMETER',
  'RESULT_TOO_LARGE',
  'MALFORMED_REQUEST',
  'UNAUTHORIZED',
  'TRACE_NOT_FOUND',
  'NOT_FOUND',
  'REQUEST_TIMEOUT',
  'REQUEST_TOO_LARGE',
  'STORAGE_UNAVAILABLE',
  'SHUTTING_DOWN',
  'QUERY_TIMEOUT',
  'INTERNAL',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ErrorBody {
  code: ErrorCode;
  message: string;
  /** The query or path parameter at fault, for 400s. */
  parameter?: string;
}

export class ApiError extends Error {
  readonly statusCode: number;
  readonly code: ErrorCode;
  readonly parameter: string | undefined;

  constructor(options: { statusCode: number; code: ErrorCode; message: string; parameter?: string }) {
    super(options.message);
    this.name = 'ApiError';
    this.statusCode = options.statusCode;
    this.code = options.code;
    this.parameter = options.parameter;
  }

  toBody(): ErrorBody {
    const body: ErrorBody = { code: this.code, message: this.message };
    if (this.parameter !== undefined) body.parameter = this.parameter;
    return body;
  }
}

/** A malformed or out-of-bounds parameter: 400 naming it. */
export function badParameter(parameter: string, message: string): ApiError {
  return new ApiError({ statusCode: 400, code: 'INVALID_PARAMETER', parameter, message: `${parameter}: ${message}` });
}

/** A required parameter that is absent or empty: 400 naming it. */
export function missingParameter(parameter: string): ApiError {
  return new ApiError({
    statusCode: 400,
    code: 'MISSING_PARAMETER',
    parameter,
    message: `${parameter} is required`,
  });
}

/** The query did not finish in time. */
export class QueryTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`query did not finish within ${timeoutMs} ms`);
    this.name = 'QueryTimeoutError';
  }
}
