import { describe, expect, it } from 'vitest';
import { ApiError } from './errors.js';
import {
  MAX_NAME_LENGTH,
  normalizeTraceId,
  parseAnnotationQuery,
  parseName,
  parseTagKey,
  parseTraceIds,
  parseTracesQuery,
  parseWindow,
  type QueryBounds,
} from './params.js';

const bounds: QueryBounds = { defaultLimit: 10, maxLimit: 100, defaultLookbackMs: 86_400_000, maxLookbackMs: 7 * 86_400_000 };
const NOW = 1_700_000_000_000;

function apiError(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ApiError);
    return error as ApiError;
  }
  throw new Error('expected an ApiError');
}

describe('parseAnnotationQuery', () => {
  it('splits Zipkin terms on " and " into bare keys and key=value tags', () => {
    expect(parseAnnotationQuery('error and http.method=GET')).toEqual([{ key: 'error' }, { key: 'http.method', value: 'GET' }]);
  });
  it('keeps "=" inside values and trims around terms', () => {
    expect(parseAnnotationQuery(' http.url=/a?b=c  and  retried ')).toEqual([
      { key: 'http.url', value: '/a?b=c' },
      { key: 'retried' },
    ]);
  });
  it('treats key= as a bare key, and a repeated key=value keeps its last value', () => {
    expect(parseAnnotationQuery('env= and env=prod')).toEqual([{ key: 'env', value: 'prod' }]);
    expect(parseAnnotationQuery('env=dev and env=prod')).toEqual([{ key: 'env', value: 'prod' }]);
    expect(parseAnnotationQuery('env=')).toEqual([{ key: 'env' }]);
    // As Zipkin's map put: a later `key=` replaces, and the key keeps its first place.
    expect(parseAnnotationQuery('env=prod and error and env=')).toEqual([{ key: 'env' }, { key: 'error' }]);
  });
  it('keeps the specific value when a bare word repeats a key=value key, in either order (Zipkin)', () => {
    expect(parseAnnotationQuery('error=500 and error')).toEqual([{ key: 'error', value: '500' }]);
    expect(parseAnnotationQuery('error and error=500')).toEqual([{ key: 'error', value: '500' }]);
    expect(parseAnnotationQuery('error and retried and error=500 and error')).toEqual([
      { key: 'error', value: '500' },
      { key: 'retried' },
    ]);
  });
  it('is absent for empty input', () => {
    expect(parseAnnotationQuery(undefined)).toBeUndefined();
    expect(parseAnnotationQuery('   ')).toBeUndefined();
    expect(parseAnnotationQuery(' and ')).toBeUndefined();
  });
  it('does not split on "and" inside words or values', () => {
    expect(parseAnnotationQuery('band=andrew')).toEqual([{ key: 'band', value: 'andrew' }]);
  });
  it('rejects a term without a key, a lone surrogate and too many terms, naming annotationQuery', () => {
    expect(apiError(() => parseAnnotationQuery('=GET')).parameter).toBe('annotationQuery');
    expect(apiError(() => parseAnnotationQuery('error\ud800')).parameter).toBe('annotationQuery');
    // A tag value may hold any text, a newline included.
    expect(parseAnnotationQuery('db.statement=SELECT 1\nFROM t')).toEqual([{ key: 'db.statement', value: 'SELECT 1\nFROM t' }]);
    const many = Array.from({ length: 17 }, (_, i) => `k${i}`).join(' and ');
    expect(apiError(() => parseAnnotationQuery(many)).statusCode).toBe(400);
  });
  it('passes quotes and SQL through as plain data (storage binds it)', () => {
    expect(parseAnnotationQuery("x=' OR 1=1 --")).toEqual([{ key: 'x', value: "' OR 1=1 --" }]);
  });
});

describe('normalizeTraceId', () => {
  it('lower-cases 16 and 32 character ids', () => {
    expect(normalizeTraceId('traceId', '463AC35C9F6413AD')).toBe('463ac35c9f6413ad');
    expect(normalizeTraceId('traceId', '463AC35C9F6413AD48485A3953BB6124')).toBe('463ac35c9f6413ad48485a3953bb6124');
  });
  it('pads short ids as Zipkin does and drops an all-zero upper half', () => {
    expect(normalizeTraceId('traceId', 'abc')).toBe('0000000000000abc');
    expect(normalizeTraceId('traceId', '1' + '0'.repeat(16))).toBe('0000000000000001' + '0'.repeat(16));
    expect(normalizeTraceId('traceId', '0000000000000000463ac35c9f6413ad')).toBe('463ac35c9f6413ad');
  });
  it('rejects non-hex, too long, all-zero and empty ids naming the parameter', () => {
    for (const bad of ['xyz', 'g'.repeat(16), '1'.repeat(33), '0'.repeat(16), "1' OR '1'='1", '-1']) {
      const error = apiError(() => normalizeTraceId('traceId', bad));
      expect(error.statusCode).toBe(400);
      expect(error.parameter).toBe('traceId');
    }
    // 17 characters is valid hex: it is padded to 32, as Zipkin does.
    expect(normalizeTraceId('traceId', '463ac35c9f6413ad4')).toHaveLength(32);
    expect(apiError(() => normalizeTraceId('traceId', '')).code).toBe('MISSING_PARAMETER');
  });
});

describe('parseTraceIds', () => {
  it('splits, normalises and keeps order', () => {
    expect(parseTraceIds('463AC35C9F6413AD,48485a3953bb6124')).toEqual(['463ac35c9f6413ad', '48485a3953bb6124']);
  });
  it('needs two distinct valid ids', () => {
    expect(apiError(() => parseTraceIds('463ac35c9f6413ad')).parameter).toBe('traceIds');
    expect(apiError(() => parseTraceIds('463ac35c9f6413ad,463AC35C9F6413AD')).parameter).toBe('traceIds');
    expect(apiError(() => parseTraceIds('463ac35c9f6413ad,zz')).parameter).toBe('traceIds');
    expect(apiError(() => parseTraceIds(undefined)).code).toBe('MISSING_PARAMETER');
  });
  it('answers an empty element of the list as an invalid traceIds, not a missing one', () => {
    for (const value of ['463ac35c9f6413ad,', ',463ac35c9f6413ad', '463ac35c9f6413ad,,48485a3953bb6124', '463ac35c9f6413ad, ,48485a3953bb6124', ',']) {
      const error = apiError(() => parseTraceIds(value));
      expect({ value, code: error.code, parameter: error.parameter }).toEqual({ value, code: 'INVALID_PARAMETER', parameter: 'traceIds' });
      expect(error.message).toMatch(/^traceIds: .*empty/);
    }
  });
});

describe('parseName and parseTagKey', () => {
  it('lower-cases names, keeps tag key case', () => {
    expect(parseName('serviceName', 'Frontend')).toBe('frontend');
    expect(parseTagKey('key', 'HTTP.Method')).toBe('HTTP.Method');
  });
  it('treats empty as absent, and absent required as a 400', () => {
    expect(parseName('serviceName', '')).toBeUndefined();
    expect(apiError(() => parseName('serviceName', '', { required: true })).code).toBe('MISSING_PARAMETER');
    expect(apiError(() => parseTagKey('key', undefined)).parameter).toBe('key');
  });
  it('takes any name a span can carry, and refuses only what no span holds', () => {
    expect(parseName('spanName', 'A'.repeat(300))).toBe('a'.repeat(300));
    expect(parseName('spanName', 'SELECT *\nFROM t')).toBe('select *\nfrom t');
    expect(parseTagKey('key', 'k\u0000')).toBe('k\u0000');
    expect(apiError(() => parseName('spanName', 'a'.repeat(MAX_NAME_LENGTH + 1))).parameter).toBe('spanName');
    expect(apiError(() => parseName('serviceName', 'a\udc00b')).parameter).toBe('serviceName');
    expect(apiError(() => parseTagKey('key', '\ud800')).parameter).toBe('key');
  });
});

describe('parseWindow', () => {
  it('defaults endTs to now and lookback to the configured default', () => {
    expect(parseWindow({}, bounds, NOW)).toEqual({ endTs: NOW, lookback: 86_400_000 });
  });
  it('clamps lookback to the configured maximum and to endTs', () => {
    expect(parseWindow({ endTs: NOW, lookback: 30 * 86_400_000 }, bounds, NOW).lookback).toBe(7 * 86_400_000);
    expect(parseWindow({ endTs: 1000, lookback: 5000 }, bounds, NOW)).toEqual({ endTs: 1000, lookback: 1000 });
  });
  it('rejects non-positive values naming the parameter', () => {
    expect(apiError(() => parseWindow({ endTs: 0 }, bounds, NOW)).parameter).toBe('endTs');
    expect(apiError(() => parseWindow({ lookback: -5 }, bounds, NOW)).parameter).toBe('lookback');
    expect(apiError(() => parseWindow({ endTs: 1e300 }, bounds, NOW)).parameter).toBe('endTs');
  });
});

describe('parseTracesQuery', () => {
  it('applies Zipkin defaults', () => {
    expect(parseTracesQuery({}, bounds, NOW)).toEqual({ endTs: NOW, lookback: 86_400_000, limit: 10 });
  });
  it('maps every parameter', () => {
    expect(
      parseTracesQuery(
        {
          serviceName: 'Frontend',
          remoteServiceName: 'Backend',
          spanName: 'GET /api',
          annotationQuery: 'error and http.method=GET',
          minDuration: 100,
          maxDuration: 200,
          endTs: NOW,
          lookback: 60_000,
          limit: 5,
        },
        bounds,
        NOW,
      ),
    ).toEqual({
      serviceName: 'frontend',
      remoteServiceName: 'backend',
      spanName: 'get /api',
      annotationQuery: [{ key: 'error' }, { key: 'http.method', value: 'GET' }],
      minDuration: 100,
      maxDuration: 200,
      endTs: NOW,
      lookback: 60_000,
      limit: 5,
    });
  });
  it('drops spanName=all and empty names', () => {
    expect(parseTracesQuery({ spanName: 'all', serviceName: '' }, bounds, NOW)).toEqual({ endTs: NOW, lookback: 86_400_000, limit: 10 });
  });
  it('bounds limit by configuration', () => {
    expect(apiError(() => parseTracesQuery({ limit: 101 }, bounds, NOW)).parameter).toBe('limit');
    expect(apiError(() => parseTracesQuery({ limit: 0 }, bounds, NOW)).parameter).toBe('limit');
    expect(parseTracesQuery({ limit: 100 }, bounds, NOW).limit).toBe(100);
  });
  it('checks durations as Zipkin does', () => {
    expect(apiError(() => parseTracesQuery({ minDuration: 0 }, bounds, NOW)).parameter).toBe('minDuration');
    expect(apiError(() => parseTracesQuery({ maxDuration: 10 }, bounds, NOW)).parameter).toBe('maxDuration');
    expect(apiError(() => parseTracesQuery({ minDuration: 10, maxDuration: 5 }, bounds, NOW)).parameter).toBe('maxDuration');
    expect(parseTracesQuery({ minDuration: 10, maxDuration: 10 }, bounds, NOW).maxDuration).toBe(10);
  });
});
