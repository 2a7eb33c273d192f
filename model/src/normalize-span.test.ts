import { describe, it, expect } from 'vitest';
import { normalizeSpan, normalizeTraceId, type SpanRejectReason } from './index.js';

const TRACE = '463ac35c9f6413ad48485a3953bb6124';
const ID = 'a2fb4a1d1a96d312';
const base = { traceId: TRACE, id: ID };

function ok(input: unknown) {
  const r = normalizeSpan(input);
  if (!r.ok) throw new Error(`expected ok, got ${r.reason}: ${r.message}`);
  return r.span;
}

describe('normalizeSpan: ids', () => {
  it('keeps valid lower-case ids as they are', () => {
    expect(ok({ ...base, parentId: 'b2fb4a1d1a96d312' })).toEqual({ ...base, parentId: 'b2fb4a1d1a96d312' });
  });

  it('lower-cases upper-case hex ids', () => {
    expect(ok({ traceId: TRACE.toUpperCase(), id: ID.toUpperCase(), parentId: 'ABCDEF0123456789' })).toEqual({
      traceId: TRACE,
      id: ID,
      parentId: 'abcdef0123456789',
    });
  });

  it("pads short ids with zeros on the left as Zipkin's builder does", () => {
    expect(ok({ traceId: 'abc', id: '1', parentId: 'f' })).toEqual({ traceId: '0000000000000abc', id: '0000000000000001', parentId: '000000000000000f' });
    expect(ok({ traceId: '1'.repeat(20), id: ID }).traceId).toBe('000000000000' + '1'.repeat(20));
  });

  it('shortens a 128-bit trace id whose high 64 bits are zero to 16 characters, as Zipkin does', () => {
    expect(ok({ traceId: '0000000000000000' + 'a2fb4a1d1a96d312', id: ID }).traceId).toBe('a2fb4a1d1a96d312');
    expect(normalizeTraceId('0000000000000000a2fb4a1d1a96d312')).toBe('a2fb4a1d1a96d312');
    expect(normalizeTraceId('A2FB4A1D1A96D312')).toBe('a2fb4a1d1a96d312');
    expect(normalizeTraceId('xyz')).toBeUndefined();
    expect(normalizeTraceId('')).toBeUndefined();
  });

  it('shortens any id of 17-31 characters whose padded high 64 bits are zero, so normalising is idempotent', () => {
    expect(normalizeTraceId('0463ac35c9f6413ad')).toBe('463ac35c9f6413ad');
    expect(ok({ traceId: '0463AC35C9F6413AD', id: ID }).traceId).toBe('463ac35c9f6413ad');
    const low = '463ac35c9f6413ad';
    for (let length = 1; length <= 32; length++) {
      // Zero high part: zeros before the low characters (or a short id).
      const zeroHigh = length <= 16 ? low.slice(16 - length) : '0'.repeat(length - 16) + low;
      // Non-zero high part: a 1 just before the 16 low characters (lengths over 16 only).
      const nonZeroHigh = length <= 16 ? undefined : '0'.repeat(length - 17) + '1' + low;
      for (const value of [zeroHigh, nonZeroHigh, zeroHigh.toUpperCase()]) {
        if (value === undefined) continue;
        const once = normalizeTraceId(value);
        expect(once, value).toBeDefined();
        expect(normalizeTraceId(once as string), value).toBe(once);
        expect(ok({ traceId: value, id: ID }).traceId, value).toBe(once);
        expect(ok({ traceId: once, id: ID }).traceId, value).toBe(once);
        expect(BigInt(`0x${once}`), value).toBe(BigInt(`0x${value}`));
        if (value === nonZeroHigh) expect(once, value).toBe('0'.repeat(15) + '1' + low);
        else expect(once, value).toBe(length >= 16 ? low : '0'.repeat(16 - length) + low.slice(16 - length));
      }
    }
  });

  it('treats an all-zero or empty parent id, or one equal to the span id, as absent', () => {
    expect(ok({ ...base, parentId: '0000000000000000' })).toEqual(base);
    expect(ok({ ...base, parentId: '' })).toEqual(base);
    expect(ok({ ...base, parentId: null })).toEqual(base);
    expect(ok({ ...base, parentId: ID })).toEqual(base);
  });

  const idCases: [string, unknown, SpanRejectReason][] = [
    ['missing traceId', { id: ID }, 'missing_trace_id'],
    ['empty traceId', { traceId: '', id: ID }, 'missing_trace_id'],
    ['null traceId', { traceId: null, id: ID }, 'missing_trace_id'],
    ['numeric traceId', { traceId: 123, id: ID }, 'bad_trace_id'],
    ['non-hex traceId', { traceId: 'g63ac35c9f6413ad', id: ID }, 'bad_trace_id'],
    ['0x-prefixed traceId', { traceId: '0x63ac35c9f6413ad', id: ID }, 'bad_trace_id'],
    ['33-char traceId', { traceId: 'a' + TRACE, id: ID }, 'bad_trace_id'],
    ['all-zero traceId', { traceId: '0'.repeat(32), id: ID }, 'bad_trace_id'],
    ['missing id', { traceId: TRACE }, 'missing_id'],
    ['empty id', { traceId: TRACE, id: '' }, 'missing_id'],
    ['17-char id', { traceId: TRACE, id: ID + '1' }, 'bad_id'],
    ['all-zero id', { traceId: TRACE, id: '0000000000000000' }, 'bad_id'],
    ['non-hex id', { traceId: TRACE, id: 'zzzz' }, 'bad_id'],
    ['object id', { traceId: TRACE, id: { a: 1 } }, 'bad_id'],
    ['17-char parentId', { ...base, parentId: '1'.repeat(17) }, 'bad_parent_id'],
    ['non-hex parentId', { ...base, parentId: 'xyz' }, 'bad_parent_id'],
    ['numeric parentId', { ...base, parentId: 5 }, 'bad_parent_id'],
  ];
  it.each(idCases)('rejects %s', (_label, input, reason) => {
    const r = normalizeSpan(input);
    expect(r).toMatchObject({ ok: false, reason });
    if (!r.ok) expect(r.message.length).toBeGreaterThan(5);
  });
});

describe('normalizeSpan: fields', () => {
  it('rejects what is not an object', () => {
    for (const input of [null, undefined, 5, 'span', [], [base], true]) {
      expect(normalizeSpan(input)).toMatchObject({ ok: false, reason: 'not_an_object' });
    }
  });

  it('accepts each kind, in any case, and treats an empty kind as absent', () => {
    for (const kind of ['CLIENT', 'SERVER', 'PRODUCER', 'CONSUMER']) {
      expect(ok({ ...base, kind }).kind).toBe(kind);
      expect(ok({ ...base, kind: kind.toLowerCase() }).kind).toBe(kind);
    }
    expect(ok({ ...base, kind: '' })).toEqual(base);
  });

  it.each([['INTERNAL'], [1], [{}], ['client ']])('rejects kind %j', (kind) => {
    expect(normalizeSpan({ ...base, kind })).toMatchObject({ ok: false, reason: 'bad_kind' });
  });

  it('lower-cases the span name and service names; empty strings are absent', () => {
    expect(ok({ ...base, name: 'GET /Api', localEndpoint: { serviceName: 'Frontend' }, remoteEndpoint: { serviceName: '' } })).toEqual({
      ...base,
      name: 'get /api',
      localEndpoint: { serviceName: 'frontend' },
    });
    expect(ok({ ...base, name: '' })).toEqual(base);
  });

  it('keeps whole positive microseconds; zero, negative (Zipkin clamps) and null are absent', () => {
    expect(ok({ ...base, timestamp: 1556604172355737, duration: 1 })).toEqual({ ...base, timestamp: 1556604172355737, duration: 1 });
    expect(ok({ ...base, timestamp: 0, duration: 0 })).toEqual(base);
    expect(ok({ ...base, timestamp: -5, duration: -1 })).toEqual(base);
    expect(ok({ ...base, timestamp: null, duration: null })).toEqual(base);
  });

  const timeCases: [string, unknown][] = [
    ['a fraction', 1.5],
    ['a string', '1556604172355737'],
    ['beyond 2^53', 2 ** 60],
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['a boolean', true],
  ];
  it.each(timeCases)('rejects a timestamp that is %s', (_label, value) => {
    expect(normalizeSpan({ ...base, timestamp: value })).toMatchObject({ ok: false, reason: 'bad_timestamp' });
  });
  it.each(timeCases)('rejects a duration that is %s', (_label, value) => {
    expect(normalizeSpan({ ...base, duration: value })).toMatchObject({ ok: false, reason: 'bad_duration' });
  });

  it('normalises endpoint addresses: canonical IPv6, mapped IPv4, either field, garbage ignored', () => {
    expect(
      ok({
        ...base,
        localEndpoint: { serviceName: 'a', ipv4: '10.0.0.1', ipv6: '2001:0DB8:0000:0000:0000:0000:0000:C001', port: 80 },
        remoteEndpoint: { ipv4: '::ffff:192.168.1.2', ipv6: 'not an ip' },
      }),
    ).toEqual({
      ...base,
      localEndpoint: { serviceName: 'a', ipv4: '10.0.0.1', ipv6: '2001:db8::c001', port: 80 },
      remoteEndpoint: { ipv4: '192.168.1.2' },
    });
    expect(ok({ ...base, localEndpoint: { ipv4: 'fe80::1%eth0' } }).localEndpoint).toEqual({ ipv6: 'fe80::1' });
    expect(ok({ ...base, localEndpoint: { ipv4: '256.1.1.1' } })).toEqual(base);
    expect(ok({ ...base, localEndpoint: { port: 0 }, remoteEndpoint: {} })).toEqual(base);
  });

  const endpointCases: [string, unknown][] = [
    ['a string', 'frontend'],
    ['an array', []],
    ['a numeric service name', { serviceName: 5 }],
    ['a port over 65535', { port: 70000 }],
    ['a fractional port', { port: 80.5 }],
    ['a string port', { port: '80' }],
    ['a numeric ipv4', { ipv4: 167772161 }],
  ];
  it.each(endpointCases)('rejects an endpoint that is (or has) %s', (_label, value) => {
    expect(normalizeSpan({ ...base, localEndpoint: value })).toMatchObject({ ok: false, reason: 'bad_endpoint' });
    expect(normalizeSpan({ ...base, remoteEndpoint: value })).toMatchObject({ ok: false, reason: 'bad_endpoint' });
  });

  it('sorts annotations by timestamp then value and removes duplicates, as Zipkin does', () => {
    expect(
      ok({
        ...base,
        annotations: [
          { timestamp: 3, value: 'c' },
          { timestamp: 1, value: 'b' },
          { timestamp: 1, value: 'a' },
          { timestamp: 3, value: 'c' },
        ],
      }).annotations,
    ).toEqual([
      { timestamp: 1, value: 'a' },
      { timestamp: 1, value: 'b' },
      { timestamp: 3, value: 'c' },
    ]);
    expect(ok({ ...base, annotations: [] })).toEqual(base);
  });

  const annotationCases: [string, unknown][] = [
    ['not a list', { timestamp: 1, value: 'a' }],
    ['an entry that is not an object', ['ws']],
  ];
  it.each(annotationCases)('rejects annotations with %s', (_label, annotations) => {
    expect(normalizeSpan({ ...base, annotations })).toMatchObject({ ok: false, reason: 'bad_annotation' });
  });

  it.each([
    ['no timestamp', { value: 'ws' }],
    ['a zero timestamp', { timestamp: 0, value: 'ws' }],
    ['a negative timestamp', { timestamp: -1, value: 'ws' }],
    ['a string timestamp', { timestamp: '1', value: 'ws' }],
    ['no value', { timestamp: 1 }],
    ['an empty value', { timestamp: 1, value: '' }],
    ['a boolean value', { timestamp: 1, value: true }],
  ])('leaves out an annotation with %s and keeps the span and its other annotations', (_label, annotation) => {
    expect(ok({ ...base, annotations: [annotation, { timestamp: 2, value: 'kept' }] }).annotations).toEqual([{ timestamp: 2, value: 'kept' }]);
    expect(ok({ ...base, annotations: [annotation] })).toEqual(base);
  });

  it("keeps an annotation's numeric value as its text, as Zipkin's reader does", () => {
    expect(ok({ ...base, annotations: [{ timestamp: 1, value: 5 }] }).annotations).toEqual([{ timestamp: 1, value: '5' }]);
  });

  it('keeps string tags, including empty values (an empty "error" tag means something); drops an empty tag map', () => {
    expect(ok({ ...base, tags: { error: '', 'http.path': '/api' } }).tags).toEqual({ error: '', 'http.path': '/api' });
    expect(ok({ ...base, tags: {} })).toEqual(base);
    expect(ok({ ...base, tags: null })).toEqual(base);
  });

  it('does not let a "__proto__" tag change the prototype of the copy', () => {
    const span = ok(JSON.parse(`{"traceId":"${TRACE}","id":"${ID}","tags":{"__proto__":"x","a":"b"}}`));
    expect(Object.getPrototypeOf(span.tags)).toBe(Object.prototype);
    expect(Object.keys(span.tags ?? {})).toEqual(['__proto__', 'a']);
  });

  it("keeps a tag's number value as its text, as Zipkin's reader does (senders such as zipkin-js have sent them)", () => {
    expect(ok({ ...base, tags: { 'http.status_code': 200, ratio: 1.5, name: 'x' } }).tags).toEqual({
      'http.status_code': '200',
      ratio: '1.5',
      name: 'x',
    });
  });

  it.each([
    ['a boolean value', { error: true }],
    ['a null value', { a: null }],
    ['an object value', { a: {} }],
    ['tags as a list', [['a', 'b']]],
    ['tags as a string', 'a=b'],
  ])('rejects tags with %s (Zipkin rejects them too)', (_label, tags) => {
    expect(normalizeSpan({ ...base, tags })).toMatchObject({ ok: false, reason: 'bad_tags' });
  });

  it('keeps debug and shared only when true, and unsets shared on a client span as Zipkin does', () => {
    expect(ok({ ...base, debug: true, shared: true, kind: 'SERVER' })).toEqual({ ...base, kind: 'SERVER', debug: true, shared: true });
    expect(ok({ ...base, debug: false, shared: false })).toEqual(base);
    expect(ok({ ...base, shared: true, kind: 'CLIENT' })).toEqual({ ...base, kind: 'CLIENT' });
  });

  it.each([
    ['debug', 'yes'],
    ['shared', 1],
    ['name', 42],
    ['name', ['get']],
  ])('rejects %s of the wrong type (%j)', (field, value) => {
    expect(normalizeSpan({ ...base, [field]: value })).toMatchObject({ ok: false, reason: 'bad_field_type' });
  });

  it('ignores unknown fields and writes fields in Zipkin order', () => {
    const span = ok({ extra: 1, tags: { a: 'b' }, name: 'n', id: ID, parentId: 'b2fb4a1d1a96d312', traceId: TRACE, kind: 'SERVER' });
    expect(Object.keys(span)).toEqual(['traceId', 'parentId', 'id', 'kind', 'name', 'tags']);
  });

  it('does not modify or alias the input', () => {
    const input = { ...base, name: 'UPPER', tags: { a: 'b' }, annotations: [{ timestamp: 2, value: 'x' }, { timestamp: 1, value: 'y' }] };
    const copy = structuredClone(input);
    const span = ok(input);
    expect(input).toEqual(copy);
    expect(span.tags).not.toBe(input.tags);
  });

  it('reports a getter that throws instead of throwing', () => {
    const evil = {
      ...base,
      get name(): string {
        throw new Error('boom');
      },
    };
    expect(normalizeSpan(evil)).toMatchObject({ ok: false, reason: 'bad_field_type' });
  });
});
