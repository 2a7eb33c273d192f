import type { Span } from '@tracehouse/model';
import { describe, expect, it } from 'vitest';
import { fitSpan } from './oversized-span.js';

const base: Span = { traceId: '463ac35c9f6413ad48485a3953bb6124', id: 'a2fb4a1d1a96d312', name: 'insert' };
const jsonBytes = (span: Span): number => Buffer.byteLength(JSON.stringify(span));

describe('fitSpan', () => {
  it('cuts the longest value first, marks how much it cut, and leaves the rest as it was', () => {
    const span: Span = { ...base, tags: { 'db.statement': 'x'.repeat(50_000), 'db.system.name': 'postgresql', other: 'o'.repeat(3000) } };
    const fitted = fitSpan(span, 10_000, jsonBytes);
    expect(fitted).toBeDefined();
    expect(jsonBytes(fitted as Span)).toBeLessThanOrEqual(10_000);
    const statement = fitted?.tags?.['db.statement'] as string;
    const [, cut] = /…\[(\d+) characters cut\]$/.exec(statement) ?? [];
    expect(cut).toBeDefined();
    expect(statement.indexOf('…') + Number(cut)).toBe(50_000);
    expect(fitted?.tags?.['other']).toBe('o'.repeat(3000));
    expect(fitted?.tags?.['db.system.name']).toBe('postgresql');
    // The span given is not changed.
    expect(span.tags?.['db.statement']).toHaveLength(50_000);
  });

  it('counts bytes, not characters: text of three-byte characters fits too', () => {
    const fitted = fitSpan({ ...base, tags: { note: '名'.repeat(20_000) } }, 8_000, jsonBytes);
    expect(jsonBytes(fitted as Span)).toBeLessThanOrEqual(8_000);
  });

  it('cuts annotation values (a stack trace in an event) as well as tags', () => {
    const span: Span = { ...base, annotations: [{ timestamp: 1, value: `"exception":{"stack":"${'at f\\n'.repeat(5000)}"}` }] };
    const fitted = fitSpan(span, 6_000, jsonBytes);
    expect(jsonBytes(fitted as Span)).toBeLessThanOrEqual(6_000);
    expect(fitted?.annotations?.[0]?.value).toMatch(/characters cut\]$/);
  });

  it('gives up when values cut to 1024 characters still do not fit', () => {
    const tags = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`t${i}`, 'y'.repeat(2000)]));
    expect(fitSpan({ ...base, tags }, 10_000, jsonBytes)).toBeUndefined();
  });
});
