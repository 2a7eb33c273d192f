import { describe, expect, it } from 'vitest';
import { toStorageError } from './error-mapping.js';
import { parseRow } from './http-engine.js';

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
