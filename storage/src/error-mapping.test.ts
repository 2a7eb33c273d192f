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
    const parts = Object.assign(new Error('Too many parts (300). Merges are processing significantly slower than inserts'), {
      code: '252',
      type: 'TOO_MANY_PARTS',
    });
    expect(toStorageError(parts, 'insert')).toMatchObject({ code: 'overloaded', retryable: true });
    const memory = { clickhouseCode: 241, message: 'Memory limit (for query) exceeded' };
    expect(toStorageError(memory, 'insert')).toMatchObject({ code: 'overloaded', retryable: true });
  });

  it('marks too many partitions (days) in one insert as not retryable, though it shares code 252 with overload', () => {
    const said =
      "Too many partitions for single INSERT block (more than 100). The limit is controlled by 'max_partitions_per_insert_block' setting. " +
      'Large number of partitions is a common misconception.';
    // As @clickhouse/client reports it over HTTP, and as chdb does.
    const http = Object.assign(new Error(said), { code: '252', type: 'TOO_MANY_PARTS' });
    const chdb = Object.assign(new Error(`Code: 252. DB::Exception: ${said}: while pushing to view db.spans_mv. (TOO_MANY_PARTS)`), {
      name: 'ChdbInsertError',
      code: 'CHDB_INSERT',
      clickhouseCode: 252,
    });
    for (const error of [http, chdb]) {
      const mapped = toStorageError(error, 'ClickHouse insert failed');
      expect(mapped).toMatchObject({ code: 'too_many_partitions', retryable: false });
      expect(mapped.cause).toBe(error);
      // The cause in words, then what ClickHouse said.
      expect(mapped.message).toMatch(/^ClickHouse insert failed: the spans cover more days than ClickHouse accepts in one INSERT/);
      expect(mapped.message).toContain('max_partitions_per_insert_block');
      expect(mapped.message).toContain(said);
    }
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

  it('names refused credentials and rights auth, still retryable for an insert waiting for the fix', () => {
    for (const [code, text] of [
      [192, 'Unknown user nobody'],
      [193, 'Wrong password for user default'],
      [516, 'default: Authentication failed'],
      [497, 'Not enough privileges'],
      [164, 'Cannot execute query in readonly mode'],
    ] as const) {
      const error = new Error(`Code: ${code}, e.displayText() = DB::Exception: ${text}`);
      expect(toStorageError(error, 'open'), text).toMatchObject({ code: 'auth', retryable: true });
    }
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
