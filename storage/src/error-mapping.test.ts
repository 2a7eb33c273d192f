import { describe, expect, it } from 'vitest';
import { clickhouseCode, toStorageError } from './error-mapping.js';
import { StorageError } from './storage-error.js';

describe('toStorageError', () => {
  it('marks network failures as retryable connection errors', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123'), { code: 'ECONNREFUSED' });
    expect(toStorageError(refused, 'insert')).toMatchObject({ code: 'connection', retryable: true });
    expect(toStorageError(new Error('socket hang up'), 'insert')).toMatchObject({ code: 'connection', retryable: true });
  });

  it('marks client timeouts and server timeouts as retryable', () => {
    expect(toStorageError(new Error('Timeout error.'), 'query')).toMatchObject({ code: 'timeout', retryable: true });
    const serverTimeout = Object.assign(new Error('Timeout exceeded: elapsed 31 seconds'), { code: '159' });
    expect(toStorageError(serverTimeout, 'query')).toMatchObject({ code: 'timeout', retryable: true });
  });

  it('marks overload (too many parts, memory) as retryable', () => {
    const parts = Object.assign(new Error('Too many parts (300)'), { code: '252', type: 'TOO_MANY_PARTS' });
    expect(toStorageError(parts, 'insert')).toMatchObject({ code: 'overloaded', retryable: true });
    const memory = { clickhouseCode: 241, message: 'Memory limit (for query) exceeded' };
    expect(toStorageError(memory, 'insert')).toMatchObject({ code: 'overloaded', retryable: true });
  });

  it('marks rows the server cannot parse as not retryable and keeps the cause', () => {
    const parse = Object.assign(new Error('Cannot parse input: expected \\t before: x'), { code: '27' });
    const mapped = toStorageError(parse, 'insert');
    expect(mapped).toBeInstanceOf(StorageError);
    expect(mapped).toMatchObject({ code: 'server', retryable: false });
    expect(mapped.cause).toBe(parse);
    expect(mapped.message).toContain('Cannot parse input');
  });

  it('retries server errors that are not about the rows: a full disk, a proxy error, an unknown code', () => {
    const disk = Object.assign(new Error('Cannot reserve 1.00 MiB, not enough space'), { code: '243' });
    expect(toStorageError(disk, 'insert')).toMatchObject({ code: 'server', retryable: true });
    expect(toStorageError(new Error('502 Bad Gateway'), 'insert')).toMatchObject({ code: 'server', retryable: true });
    const unknown = Object.assign(new Error('Some new failure'), { code: '99999' });
    expect(toStorageError(unknown, 'insert')).toMatchObject({ code: 'server', retryable: true });
  });

  it('passes a StorageError through unchanged', () => {
    const original = new StorageError({ code: 'bad_input', message: 'x' });
    expect(toStorageError(original, 'y')).toBe(original);
  });
});

describe('clickhouseCode', () => {
  it('reads the code from the driver field or the message', () => {
    expect(clickhouseCode({ code: '60' })).toBe(60);
    expect(clickhouseCode({ clickhouseCode: 81 })).toBe(81);
    expect(clickhouseCode(new Error('Code: 57, e.displayText() = DB::Exception: Table already exists'))).toBe(57);
    expect(clickhouseCode(new Error('nothing'))).toBeUndefined();
  });
});
