import { describe, expect, it } from 'vitest';
import { bindSql, checkIdentifier, quoteString, renderLiteral } from './sql-binding.js';
import { StorageError } from './storage-error.js';
import { INJECTION_STRINGS } from './test-support/injection-strings.js';

describe('quoteString', () => {
  it('escapes backslash first, then quotes and control characters', () => {
    expect(quoteString("a'b")).toBe("'a\\'b'");
    expect(quoteString('a\\b')).toBe("'a\\\\b'");
    expect(quoteString("\\'")).toBe("'\\\\\\''");
    expect(quoteString('a\nb\tc\u0000')).toBe("'a\\nb\\tc\\0'");
  });

  it('leaves no unescaped quote in any injection string', () => {
    for (const value of INJECTION_STRINGS) {
      const literal = quoteString(value);
      const inner = literal.slice(1, -1);
      // Every quote inside is preceded by an odd number of backslashes.
      for (let i = 0; i < inner.length; i++) {
        if (inner[i] !== "'") continue;
        let slashes = 0;
        for (let j = i - 1; j >= 0 && inner[j] === '\\'; j--) slashes++;
        expect(slashes % 2, `quote at ${i} in ${literal}`).toBe(1);
      }
      expect(inner.endsWith('\\') && !inner.endsWith('\\\\')).toBe(false);
    }
  });
});

describe('bindSql', () => {
  it('keeps placeholders and checked values in server mode', () => {
    const bound = bindSql('SELECT {a:String}, {n:UInt64}', { a: "x'y", n: 5 }, 'server');
    expect(bound.sql).toBe('SELECT {a:String}, {n:UInt64}');
    expect(bound.params).toEqual({ a: "x'y", n: 5 });
  });

  it('replaces placeholders with literals in literal mode', () => {
    const bound = bindSql('SELECT {a:String}, {n:UInt64}, {a:String}', { a: "x'y", n: 5 }, 'literal');
    expect(bound.sql).toBe("SELECT 'x\\'y', 5, 'x\\'y'");
    expect(bound.params).toEqual({});
  });

  it('does not re-scan values: a value that looks like a placeholder stays a string', () => {
    const bound = bindSql('SELECT {a:String}, {b:String}', { a: '{b:String}', b: 'z' }, 'literal');
    expect(bound.sql).toBe("SELECT '{b:String}', 'z'");
  });

  it('renders arrays, and arrays after IN as tuples (18.16 rejects IN [..])', () => {
    expect(bindSql('SELECT {xs:Array(String)}', { xs: ['a', "b'"] }, 'literal').sql).toBe("SELECT ['a','b\\'']");
    expect(bindSql('SELECT 1 WHERE x IN {xs:Array(String)}', { xs: ['a', 'b'] }, 'literal').sql).toBe(
      "SELECT 1 WHERE x IN ('a','b')",
    );
    expect(bindSql('SELECT 1 WHERE x IN {xs:Array(String)}', { xs: ['a'] }, 'literal').sql).toBe("SELECT 1 WHERE x IN ('a')");
  });

  it('refuses an empty IN list in both modes', () => {
    for (const mode of ['server', 'literal'] as const) {
      expect(() => bindSql('SELECT 1 WHERE x IN {xs:Array(String)}', { xs: [] }, mode)).toThrow(/at least one/);
    }
  });

  it('refuses values of the wrong type in both modes', () => {
    const cases: Array<[string, unknown]> = [
      ['{n:UInt64}', '1 OR 1=1'],
      ['{n:UInt64}', -1],
      ['{n:UInt64}', 1.5],
      ['{n:UInt64}', Number.NaN],
      ['{n:UInt32}', 2 ** 32],
      ['{n:UInt8}', 256],
      ['{n:String}', 5],
      ['{n:String}', ['a']],
      ['{n:Array(String)}', 'a'],
      ['{n:Array(String)}', ['a', 1]],
      ['{n:Float64}', Number.POSITIVE_INFINITY],
    ];
    for (const [placeholder, value] of cases) {
      for (const mode of ['server', 'literal'] as const) {
        let caught: unknown;
        try {
          bindSql(`SELECT ${placeholder}`, { n: value }, mode);
        } catch (error) {
          caught = error;
        }
        expect(caught, `${placeholder} ${String(value)} ${mode}`).toBeInstanceOf(StorageError);
        expect((caught as StorageError).code).toBe('bad_input');
        expect((caught as StorageError).retryable).toBe(false);
      }
    }
  });

  it('accepts 64-bit integers as bigint and renders them exactly', () => {
    expect(bindSql('SELECT {n:UInt64}', { n: 18446744073709551615n }, 'literal').sql).toBe('SELECT 18446744073709551615');
    expect(bindSql('SELECT {n:UInt64}', { n: 18446744073709551615n }, 'server').params.n).toBe('18446744073709551615');
    expect(() => bindSql('SELECT {n:UInt64}', { n: 18446744073709551616n }, 'literal')).toThrow(StorageError);
  });

  it('requires every placeholder to have a value and every value a placeholder', () => {
    expect(() => bindSql('SELECT {a:String}', {}, 'literal')).toThrow(/missing/);
    expect(() => bindSql('SELECT 1', { a: 'x' }, 'server')).toThrow(/no placeholder/);
    expect(() => bindSql('SELECT {a:String}, {a:UInt64}', { a: 'x' }, 'server')).toThrow(/declared as/);
  });

  it('refuses unknown placeholder types', () => {
    expect(() => renderLiteral('x', 'Nonsense', 1)).toThrow(StorageError);
  });
});

describe('checkIdentifier', () => {
  it('accepts plain identifiers and refuses anything else', () => {
    expect(checkIdentifier('database', 'tracehouse_1')).toBe('tracehouse_1');
    for (const bad of ['', '1abc', 'a-b', 'a.b', 'a b', 'a;DROP', '`a`', 'x'.repeat(64)]) {
      expect(() => checkIdentifier('database', bad)).toThrow(StorageError);
    }
  });
  it("refuses ClickHouse's own databases as the tracehouse database", () => {
    for (const name of ['system', 'SYSTEM', 'information_schema', 'INFORMATION_SCHEMA']) {
      expect(() => checkIdentifier('database', name)).toThrow(/is ClickHouse's own/);
    }
    expect(checkIdentifier('table', 'system')).toBe('system');
  });
});
