import type { Span } from '@tracehouse/model';
import { describe, expect, it } from 'vitest';
import { mergeTrace } from './trace-merge.js';

const frontend = { serviceName: 'frontend', ipv4: '127.0.0.1', port: 8080 };
const backend = { serviceName: 'backend', ipv4: '192.168.99.101', port: 9000 };
const TRACE = '86154a4ba6e91385';
const TRACE128 = '4d1e00c0db9010db' + TRACE;

const client: Span = {
  traceId: TRACE,
  parentId: '0000000000000001',
  id: '0000000000000002',
  kind: 'CLIENT',
  name: 'get',
  timestamp: 1_472_470_996_199_000,
  duration: 207_000,
  localEndpoint: frontend,
  remoteEndpoint: backend,
};
const server: Span = {
  traceId: TRACE,
  parentId: '0000000000000001',
  id: '0000000000000002',
  kind: 'SERVER',
  name: 'get',
  timestamp: 1_472_470_996_250_000,
  duration: 150_000,
  localEndpoint: backend,
  remoteEndpoint: frontend,
  shared: true,
};

describe('mergeTrace', () => {
  it('returns an empty or single-span trace as is', () => {
    expect(mergeTrace([])).toEqual([]);
    expect(mergeTrace([client])).toEqual([client]);
  });

  it('keeps client and server halves of a shared span apart, client first', () => {
    expect(mergeTrace([server, client])).toEqual([client, server]);
  });

  it('marks the server half shared when the instrumentation did not', () => {
    const { shared: _shared, ...unflagged } = server;
    expect(mergeTrace([unflagged, client])).toEqual([client, server]);
  });

  it("gives a shared server span without a parent id the client's", () => {
    const { parentId: _parentId, ...orphan } = server;
    expect(mergeTrace([client, orphan])).toEqual([client, server]);
  });

  it('merges a span reported in pieces by the same host', () => {
    const start: Span = {
      traceId: TRACE,
      id: '0000000000000003',
      name: 'query',
      timestamp: 100,
      localEndpoint: { serviceName: 'backend' },
      annotations: [{ timestamp: 110, value: 'b' }],
      tags: { z: '1', a: 'first' },
    };
    const finish: Span = {
      traceId: TRACE,
      id: '0000000000000003',
      name: 'ignored',
      duration: 50,
      localEndpoint: { serviceName: 'backend' },
      remoteEndpoint: { serviceName: 'db', port: 5432 },
      annotations: [
        { timestamp: 105, value: 'a' },
        { timestamp: 110, value: 'b' },
      ],
      tags: { a: 'second' },
      debug: true,
    };
    expect(mergeTrace([start, finish])).toEqual([
      {
        traceId: TRACE,
        id: '0000000000000003',
        name: 'query',
        timestamp: 100,
        duration: 50,
        localEndpoint: { serviceName: 'backend' },
        remoteEndpoint: { serviceName: 'db', port: 5432 },
        annotations: [
          { timestamp: 105, value: 'a' },
          { timestamp: 110, value: 'b' },
        ],
        tags: { a: 'second', z: '1' },
        debug: true,
      },
    ]);
  });

  it('fills a piece\'s endpoint from a later piece of the same host', () => {
    // Zipkin orders the piece with more endpoint detail first; its fields win.
    const bare: Span = { traceId: TRACE, id: '0000000000000005', name: 'bare', localEndpoint: { serviceName: 'backend' } };
    const rich: Span = { traceId: TRACE, id: '0000000000000005', duration: 9, localEndpoint: { serviceName: 'backend', ipv4: '10.0.0.1' } };
    expect(mergeTrace([bare, rich])).toEqual([
      { traceId: TRACE, id: '0000000000000005', name: 'bare', duration: 9, localEndpoint: { serviceName: 'backend', ipv4: '10.0.0.1' } },
    ]);
  });

  it('attaches a late piece without an endpoint to the span with that id', () => {
    const late: Span = { traceId: TRACE, id: client.id, tags: { error: 'timeout' } };
    const merged = mergeTrace([client, late]);
    expect(merged).toEqual([{ ...client, tags: { error: 'timeout' } }]);
  });

  it('keeps a tag named "__proto__" when merging pieces, as an own property', () => {
    // JSON.parse makes "__proto__" an own key, as storage reads it; an assignment would set the prototype instead.
    const first = JSON.parse(`{"traceId":"${TRACE}","id":"0000000000000006","name":"a","tags":{"__proto__":"p","z":"1"}}`) as Span;
    const second = JSON.parse(`{"traceId":"${TRACE}","id":"0000000000000006","duration":3,"tags":{"b":"2"}}`) as Span;
    for (const pieces of [
      [first, second],
      [second, first],
    ]) {
      const [merged] = mergeTrace(pieces);
      const tags = merged?.tags as Record<string, string>;
      expect(Object.keys(tags)).toEqual(['__proto__', 'b', 'z']);
      expect(Object.getOwnPropertyDescriptor(tags, '__proto__')?.value).toBe('p');
      expect(Object.getPrototypeOf(tags)).toBe(Object.prototype);
      expect(JSON.stringify(tags)).toBe('{"__proto__":"p","b":"2","z":"1"}');
    }
  });

  it('does not merge spans with the same id from different hosts', () => {
    const a: Span = { traceId: TRACE, id: '0000000000000004', name: 'a', localEndpoint: { serviceName: 'one' } };
    const b: Span = { traceId: TRACE, id: '0000000000000004', name: 'b', localEndpoint: { serviceName: 'two' } };
    expect(mergeTrace([b, a])).toEqual([a, b]);
  });

  it('does not merge a shared span into a non-shared one', () => {
    const merged = mergeTrace([client, server]);
    expect(merged).toHaveLength(2);
  });

  it('gives every span the 128-bit trace id when some have only its lower half', () => {
    const root: Span = { traceId: TRACE128, id: '0000000000000001', name: 'root', localEndpoint: frontend };
    const merged = mergeTrace([client, root, server]);
    expect(merged.map((span) => span.traceId)).toEqual([TRACE128, TRACE128, TRACE128]);
    expect(merged.map((span) => span.id)).toEqual(['0000000000000001', '0000000000000002', '0000000000000002']);
  });

  it('keeps a 128-bit trace id that differs from the chosen one only in its high half (Zipkin replaces ids of the other width only)', () => {
    // Met when trace ids are matched on their low 64 bits (strictTraceId false).
    const other = '0000000000000abc' + TRACE;
    const root: Span = { traceId: TRACE128, id: '0000000000000001', name: 'root', localEndpoint: frontend };
    const sibling: Span = { traceId: other, id: '0000000000000003', name: 'sibling', localEndpoint: frontend };
    const merged = mergeTrace([root, sibling, { ...client, traceId: TRACE }]);
    expect(merged.map((span) => [span.id, span.traceId])).toEqual([
      ['0000000000000001', TRACE128],
      ['0000000000000002', TRACE128],
      ['0000000000000003', other],
    ]);
  });

  it('orders by span id and does not modify its input', () => {
    const spans: Span[] = [
      { traceId: TRACE, id: '000000000000000b', localEndpoint: frontend },
      { traceId: TRACE, id: '000000000000000a', localEndpoint: frontend },
    ];
    const copy = structuredClone(spans);
    expect(mergeTrace(spans).map((span) => span.id)).toEqual(['000000000000000a', '000000000000000b']);
    expect(spans).toEqual(copy);
  });
});
