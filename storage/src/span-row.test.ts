import { describe, expect, it } from 'vitest';
import type { Span } from '@tracehouse/model';
import { canonicalJson, encodeSpans, spanRow, spansJsonOf, spanTime } from './span-row.js';
import { RowWriter, tsvField } from './row-writer.js';
import { INGEST_COLUMNS } from './schema.js';
import { generateSpans } from './span-generator.js';

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

  it('keeps a tag named __proto__ in the payload, next to index-like keys', () => {
    // As the model hands it over: an own property, as JSON.parse makes it.
    const tags = JSON.parse('{"__proto__":"x","1":"y"}') as Record<string, string>;
    const row = spanRow({ ...span, tags }, 1);
    const fields = row.slice(0, -1).split('\t');
    const parsed = JSON.parse(canonicalJson({ ...span, tags })) as Span;
    expect(Object.entries(parsed.tags ?? {})).toEqual([
      ['1', 'y'],
      ['__proto__', 'x'],
    ]);
    expect(fields[9]).toBe("['1','__proto__']");
    expect(fields[10]).toBe("['y','x']");
    expect(row).toBe(referenceRow({ ...span, tags }, 1));
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

/**
 * The rows as the specification says them, built the plain way (objects,
 * JSON.stringify, regular expressions): the byte writer must produce exactly
 * these bytes, since the payload is the deduplication key of stored spans.
 */
function referenceRow(span: Span, fallbackMicros: number): string {
  const tags = span.tags ?? {};
  const keys = Object.keys(tags).sort();
  const sortedTags = Object.fromEntries(keys.map((key) => [key, tags[key]]));
  const annotations = [...(span.annotations ?? [])].sort(
    (a, b) => a.timestamp - b.timestamp || (a.value < b.value ? -1 : a.value > b.value ? 1 : 0),
  );
  const endpoint = (e: Span['localEndpoint']) =>
    e === undefined ? undefined : { serviceName: e.serviceName, ipv4: e.ipv4, ipv6: e.ipv6, port: e.port };
  const payload = JSON.stringify({
    traceId: span.traceId,
    parentId: span.parentId,
    id: span.id,
    kind: span.kind,
    name: span.name,
    timestamp: span.timestamp,
    duration: span.duration,
    debug: span.debug === true ? true : undefined,
    shared: span.shared === true ? true : undefined,
    localEndpoint: endpoint(span.localEndpoint),
    remoteEndpoint: endpoint(span.remoteEndpoint),
    annotations: annotations.length > 0 ? annotations.map((a) => ({ timestamp: a.timestamp, value: a.value })) : undefined,
    tags: keys.length > 0 ? sortedTags : undefined,
  });
  const quoted = (value: string): string =>
    "'" + value.replace(/[\\'\t\n\r\0]/g, (ch) => ({ '\\': '\\\\', "'": "\\'", '\t': '\\t', '\n': '\\n', '\r': '\\r' })[ch] ?? '\\0') + "'";
  const array = (values: string[]): string => '[' + values.map(quoted).join(',') + ']';
  const uint = (n: number): string => (Number.isFinite(n) && n > 0 ? String(Math.min(Math.trunc(n), Number.MAX_SAFE_INTEGER)) : '0');
  const kind = ['CLIENT', 'SERVER', 'PRODUCER', 'CONSUMER'].includes(span.kind ?? '') ? (span.kind as string) : '';
  return (
    [
      tsvField(span.traceId),
      tsvField(span.id),
      tsvField(span.parentId ?? ''),
      kind,
      tsvField((span.name ?? '').toLowerCase()),
      tsvField((span.localEndpoint?.serviceName ?? '').toLowerCase()),
      tsvField((span.remoteEndpoint?.serviceName ?? '').toLowerCase()),
      uint(spanTime(span, fallbackMicros)),
      uint(span.duration ?? 0),
      array(keys),
      array(keys.map((key) => tags[key] as string)),
      array(annotations.map((a) => a.value)),
      payload.replace(/\\/g, '\\\\'),
    ].join('\t') + '\n'
  );
}

/** Seeded strings mixing plain ASCII with every character some escaping rule cares about. */
function hostileStrings(seed: number, count: number): string[] {
  const pieces = ['a', 'Z', '0', ' ', '/', '\t', '\n', '\r', '\\', "'", '"', '\0', '\u0001', '\u001f', 'é', 'Ω', '😀', '\ud800', '\u2028', '{', ']', ','];
  let state = seed;
  const next = (): number => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
  return Array.from({ length: count }, () => {
    let out = '';
    const length = Math.floor(next() * 12);
    for (let i = 0; i < length; i++) out += pieces[Math.floor(next() * pieces.length)];
    return out;
  });
}

describe('the byte writer against the plain reference', () => {
  it('writes exactly the reference rows for generated spans', () => {
    const spans = generateSpans({ traces: 300, seed: 5 });
    const encoded = encodeSpans(spans, 42);
    expect(encoded.count).toBe(spans.length);
    expect(encoded.rows.toString('utf8')).toBe(spans.map((s) => referenceRow(s, 42)).join(''));
  });

  it('writes exactly the reference rows for hostile strings and odd values', () => {
    const strings = hostileStrings(7, 4000);
    let at = 0;
    const take = (): string => strings[at++ % strings.length] as string;
    const odd = [NaN, -5, 1.5, 1e21, Number.MAX_SAFE_INTEGER + 2, 0, Infinity, 1_700_000_000_000_123];
    const spans: Span[] = [];
    for (let i = 0; i < 400; i++) {
      const tags: Record<string, string> = {};
      for (let t = 0; t < i % 6; t++) tags[take()] = take();
      if (i % 7 === 0) Object.assign(tags, { '10': 'ten', '2': 'two', '007': 'bond', b: 'B', a: 'A' });
      spans.push({
        traceId: take(),
        id: take(),
        ...(i % 3 === 0 ? {} : { parentId: take() }),
        ...(i % 5 === 0 ? {} : { kind: (['CLIENT', 'SERVER', 'PRODUCER', 'CONSUMER', 'WEIRD'] as const)[i % 5] as Span['kind'] }),
        ...(i % 4 === 0 ? {} : { name: take() + 'MiXeD' }),
        ...(i % 6 === 0 ? {} : { timestamp: odd[i % odd.length] }),
        ...(i % 8 === 0 ? {} : { duration: odd[(i + 3) % odd.length] }),
        ...(i % 9 === 0 ? { debug: true } : {}),
        ...(i % 10 === 0 ? { shared: true } : {}),
        ...(i % 11 === 0 ? {} : { localEndpoint: i % 2 === 0 ? { serviceName: take() + 'Svc', ipv4: '10.0.0.1', port: 80 } : { ipv6: take() } }),
        ...(i % 3 === 1 ? { remoteEndpoint: i % 2 === 0 ? {} : { serviceName: take(), port: odd[i % odd.length] as number } } : {}),
        ...(i % 4 === 2 ? {} : { annotations: [{ timestamp: 9, value: take() }, { timestamp: 3, value: take() }, { timestamp: 9, value: take() }] }),
        ...(i % 12 === 0 ? {} : { tags }),
      });
    }
    // Compared as UTF-8 bytes: that is what ClickHouse receives (a lone surrogate becomes U+FFFD there).
    // (latin1 shows each byte as one character, so the strings compare byte for byte.)
    const bytes = (text: string): string => Buffer.from(text, 'utf8').toString('latin1');
    for (const span of spans) expect(encodeSpans([span], 77).rows.toString('latin1')).toBe(bytes(referenceRow(span, 77)));
    expect(encodeSpans(spans, 77).rows.toString('latin1')).toBe(bytes(spans.map((s) => referenceRow(s, 77)).join('')));
  });

  it('gives back the payloads of encoded rows as one JSON v2 list', () => {
    const spans = [span, { ...span, id: 'b'.repeat(16), name: 'q"\\\t\u00e9' }];
    const list = JSON.parse(spansJsonOf([encodeSpans(spans.slice(0, 1)), encodeSpans(spans.slice(1))]).toString('utf8')) as Span[];
    expect(list.map((s) => JSON.stringify(s))).toEqual(spans.map((s) => canonicalJson(s)));
    expect(list[1]?.name).toBe('q"\\\t\u00e9');
  });

  it('refuses a span without ids instead of writing a broken row', () => {
    expect(() => encodeSpans([{ traceId: 'a'.repeat(16) } as Span])).toThrow(/no traceId or id/);
  });
});

describe('RowWriter.number', () => {
  it('writes every safe integer as String() does, and anything else as JSON would', () => {
    const values = [0, 1, 9, 10, 99_999_999, 100_000_000, 100_000_001, 1_700_000_000_000_123, Number.MAX_SAFE_INTEGER, 1.5, -5, 1e21, NaN, Infinity];
    let state = 3;
    for (let i = 0; i < 5_000; i++) {
      state = (state * 48271) % 2147483647;
      values.push(Math.floor((state / 2147483647) * Number.MAX_SAFE_INTEGER) % 10 ** (1 + (i % 16)));
    }
    for (const value of values) {
      const writer = new RowWriter(8);
      writer.number(value);
      expect(writer.buffer.toString('latin1', 0, writer.length)).toBe(JSON.stringify(value));
    }
  });
});
