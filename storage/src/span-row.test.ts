import { describe, expect, it } from 'vitest';
import type { Span } from '@tracehouse/model';
import { canonicalJson, spanRow, spanTime, tsvField } from './span-row.js';
import { INGEST_COLUMNS } from './schema.js';

const span: Span = {
  traceId: '463ac35c9f6413ad48485a3953bb6124',
  parentId: '6b221d5bc9e6496c',
  id: 'a2fb4a1d1a96d312',
  kind: 'CLIENT',
  name: 'get /api',
  timestamp: 1_700_000_000_000_000,
  duration: 1500,
  localEndpoint: { serviceName: 'frontend', ipv4: '10.0.0.1', port: 8080 },
  remoteEndpoint: { serviceName: 'backend' },
  annotations: [
    { timestamp: 1_700_000_000_000_900, value: 'wr' },
    { timestamp: 1_700_000_000_000_100, value: 'ws' },
  ],
  tags: { 'http.path': '/api', error: 'boom' },
};

describe('canonicalJson', () => {
  it('is the same for the same span whatever the field order', () => {
    const reordered: Span = {
      tags: { error: 'boom', 'http.path': '/api' },
      annotations: [...(span.annotations ?? [])].reverse(),
      remoteEndpoint: { serviceName: 'backend' },
      localEndpoint: { port: 8080, ipv4: '10.0.0.1', serviceName: 'frontend' },
      duration: 1500,
      timestamp: 1_700_000_000_000_000,
      name: 'get /api',
      kind: 'CLIENT',
      id: 'a2fb4a1d1a96d312',
      parentId: '6b221d5bc9e6496c',
      traceId: '463ac35c9f6413ad48485a3953bb6124',
    };
    expect(canonicalJson(reordered)).toBe(canonicalJson(span));
  });

  it('is valid JSON holding the same span, annotations by time and tags sorted', () => {
    const parsed = JSON.parse(canonicalJson(span)) as Span;
    expect(parsed).toEqual({
      ...span,
      annotations: [
        { timestamp: 1_700_000_000_000_100, value: 'ws' },
        { timestamp: 1_700_000_000_000_900, value: 'wr' },
      ],
    });
    expect(Object.keys(parsed.tags ?? {})).toEqual(['error', 'http.path']);
  });

  it('escapes hostile strings', () => {
    const hostile: Span = { traceId: 'a'.repeat(16), id: 'b'.repeat(16), name: 'x"\\\n\t\u0000\ud800', tags: { 'k"': 'v\\' } };
    const parsed = JSON.parse(canonicalJson(hostile)) as Span;
    expect(parsed.tags).toEqual({ 'k"': 'v\\' });
    expect(parsed.name?.startsWith('x"\\\n\t\u0000')).toBe(true);
  });
});

describe('spanRow', () => {
  it('writes one line with a field per ingest column', () => {
    const row = spanRow(span, 1);
    expect(row.endsWith('\n')).toBe(true);
    expect(row.slice(0, -1).includes('\n')).toBe(false);
    const fields = row.slice(0, -1).split('\t');
    expect(fields).toHaveLength(INGEST_COLUMNS.length);
    expect(fields.slice(0, 9)).toEqual([
      span.traceId,
      span.id,
      span.parentId,
      'CLIENT',
      'get /api',
      'frontend',
      'backend',
      '1700000000000000',
      '1500',
    ]);
    // Tags in key order, annotations in time order, as in the payload.
    expect(fields[9]).toBe("['error','http.path']");
    expect(fields[10]).toBe("['boom','/api']");
    expect(fields[11]).toBe("['ws','wr']");
    expect(fields[12]).toBe(canonicalJson(span));
  });

  it('escapes tabs, newlines and quotes so a hostile value stays one field', () => {
    const row = spanRow({ ...span, name: 'a\tb\nc\\', tags: { "k'\t": "v'\n\\" } }, 1);
    const fields = row.slice(0, -1).split('\t');
    expect(fields).toHaveLength(INGEST_COLUMNS.length);
    expect(fields[4]).toBe('a\\tb\\nc\\\\');
    expect(fields[9]).toBe("['k\\'\\t']");
    expect(fields[10]).toBe("['v\\'\\n\\\\']");
  });

  it('keeps tag keys and values paired, whatever the keys look like', () => {
    const tags = { z: '1', '10': 'ten', '2': 'two', "q'": 'a\\b', a: '' };
    const fields = spanRow({ ...span, tags }, 1).slice(0, -1).split('\t');
    const payload = canonicalJson({ ...span, tags });
    expect(fields[12]).toBe(tsvField(payload));
    expect((JSON.parse(payload) as Span).tags).toEqual(tags);
    const unquote = (field: string): string[] =>
      [...field.matchAll(/'((?:[^'\\]|\\.)*)'/g)].map((m) => (m[1] as string).replace(/\\(.)/g, '$1'));
    const keys = unquote(fields[9] as string);
    const values = unquote(fields[10] as string);
    expect(Object.fromEntries(keys.map((k, i) => [k, values[i]]))).toEqual(tags);
    expect(canonicalJson({ ...span, tags: { a: '', '2': 'two', z: '1', "q'": 'a\\b', '10': 'ten' } })).toBe(payload);
  });

  it('lower-cases the searchable names but keeps the payload as sent', () => {
    const row = spanRow({ ...span, name: 'GET /Api', localEndpoint: { serviceName: 'FrontEnd' } }, 1);
    const fields = row.slice(0, -1).split('\t');
    expect(fields[4]).toBe('get /api');
    expect(fields[5]).toBe('frontend');
    expect(fields[12]).toContain('"GET /Api"');
  });

  it('writes an unknown kind and bad numbers as empty and 0 instead of failing the batch', () => {
    const fields = spanRow({ ...span, kind: 'WEIRD' as Span['kind'], duration: -5 }, 1).slice(0, -1).split('\t');
    expect(fields[3]).toBe('');
    expect(fields[8]).toBe('0');
  });
});

describe('spanTime', () => {
  it('uses the timestamp, else the first annotation, else the fallback', () => {
    expect(spanTime(span, 7)).toBe(1_700_000_000_000_000);
    expect(spanTime({ ...span, timestamp: undefined }, 7)).toBe(1_700_000_000_000_100);
    expect(spanTime({ traceId: span.traceId, id: span.id }, 7)).toBe(7);
  });
});

describe('tsvField', () => {
  it('passes plain text through and escapes the four special characters', () => {
    expect(tsvField('plain')).toBe('plain');
    expect(tsvField('a\\b\tc\nd\re')).toBe('a\\\\b\\tc\\nd\\re');
  });
});
