import { describe, expect, it } from 'vitest';
import { toStorageError } from './error-mapping.js';
import { parseRow, trailingServerError } from './http-engine.js';

describe('parseRow (a streamed JSONEachRow line)', () => {
  it('reads a row', () => {
    expect(parseRow('{"trace_id":"a","error":0}')).toEqual({ trace_id: 'a', error: 0 });
  });

  it('turns an error the server wrote after some rows into an Error, in either form', () => {
    const said = 'Code: 241, e.displayText() = DB::Exception: Memory limit (for query) exceeded';
    for (const line of [said, JSON.stringify({ exception: said })]) {
      let caught: unknown;
      try {
        parseRow(line);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(Error);
      expect(toStorageError(caught, 'ClickHouse query failed').message).toContain('Memory limit');
    }
  });

  it('keeps a row that merely has a column named exception', () => {
    expect(parseRow('{"exception":"x","trace_id":"a"}')).toEqual({ exception: 'x', trace_id: 'a' });
  });
});

describe('trailingServerError (the end of a text answer)', () => {
  it('finds the error a server before 25.11 appended after some rows, in the old and the newer wording', () => {
    const old = 'Code: 241, e.displayText() = DB::Exception: Memory limit (for query) exceeded, e.what() = DB::Exception';
    const newer = 'Code: 241. DB::Exception: Memory limit (for query) exceeded. (MEMORY_LIMIT_EXCEEDED) (version 24.8.1.1)';
    for (const said of [old, newer]) {
      expect(trailingServerError(`\tab\t{"id":"1"}\n${said}\n`, undefined)?.message).toBe(said);
      expect(trailingServerError(said, undefined)?.message).toBe(said);
    }
  });

  it('finds the error framed with the exception tag of 25.11 and later', () => {
    const tag = 'Xq1w2e3r4t5y6u7i';
    const message = 'Code: 159. DB::Exception: Timeout exceeded. (TIMEOUT_EXCEEDED)';
    const framed = `a\tb\n\r\n__exception__\r\n${tag}\r\n${message}\n${message.length + 1} ${tag}\r\n__exception__\r\n`;
    const failure = trailingServerError(framed, tag);
    expect(failure?.message).toContain('Timeout exceeded');
    expect(toStorageError(failure, 'read')).toMatchObject({ code: 'timeout' });
  });

  it('leaves a whole answer alone, rows that merely mention an error included', () => {
    expect(trailingServerError('', undefined)).toBeUndefined();
    expect(trailingServerError('a\tb\n', undefined)).toBeUndefined();
    expect(trailingServerError('a\tCode: 1, e.displayText() = DB::Exception: no\n', undefined)).toBeUndefined();
    expect(trailingServerError('a\tb\n', 'Xq1w2e3r4t5y6u7i')).toBeUndefined();
  });
});

