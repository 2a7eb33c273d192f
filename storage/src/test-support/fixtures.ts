import type { Span } from '@tracehouse/model';

/** Engines every integration suite runs against. */
export const ENGINES = [
  { name: 'ClickHouse server over HTTP', url: process.env.TRACEHOUSE_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123' },
  { name: 'embedded current engine (chdb)', url: 'chdb:' },
] as const;

export function uniqueDatabase(prefix: string): string {
  return `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
}

/**
 * A small, fully known data set: two traces around `baseMs`.
 *
 * Trace A (32-char id): frontend SERVER root "get /checkout" → frontend CLIENT
 * "post /pay" to payment, whose SERVER half shares the id (Zipkin shared span)
 * and carries an error tag → payment CLIENT "query" to mysql (uninstrumented).
 * Trace B (16-char id): inventory SERVER "get /stock", slow, tag region=eu.
 */
export function fixtureTraces(baseMs: number): { traceA: Span[]; traceB: Span[]; traceAId: string; traceBId: string } {
  const t = baseMs * 1000;
  const traceAId = '5af7183fb1d4cf5f0123456789abcdef';
  const traceBId = 'b7ad6b7169203331';
  const traceA: Span[] = [
    {
      traceId: traceAId,
      id: '1000000000000001',
      kind: 'SERVER',
      name: 'get /checkout',
      timestamp: t,
      duration: 150_000,
      localEndpoint: { serviceName: 'frontend', ipv4: '10.0.0.1' },
      remoteEndpoint: { ipv4: '192.168.1.9' },
      tags: { 'http.method': 'GET', 'http.path': '/checkout' },
    },
    {
      traceId: traceAId,
      parentId: '1000000000000001',
      id: '1000000000000002',
      kind: 'CLIENT',
      name: 'post /pay',
      timestamp: t + 1_000,
      duration: 100_000,
      localEndpoint: { serviceName: 'frontend' },
      remoteEndpoint: { serviceName: 'payment' },
      annotations: [{ timestamp: t + 1_500, value: 'retry' }],
      tags: { 'http.method': 'POST' },
    },
    {
      traceId: traceAId,
      parentId: '1000000000000001',
      id: '1000000000000002',
      kind: 'SERVER',
      shared: true,
      name: 'post /pay',
      timestamp: t + 2_000,
      duration: 90_000,
      localEndpoint: { serviceName: 'payment' },
      tags: { 'http.method': 'POST', error: 'card declined' },
    },
    {
      traceId: traceAId,
      parentId: '1000000000000002',
      id: '1000000000000003',
      kind: 'CLIENT',
      name: 'query',
      timestamp: t + 3_000,
      duration: 20_000,
      localEndpoint: { serviceName: 'payment' },
      remoteEndpoint: { serviceName: 'mysql', port: 3306 },
      tags: { 'db.statement': "SELECT * FROM cards WHERE id = 'x'" },
    },
  ];
  const traceB: Span[] = [
    {
      traceId: traceBId,
      id: '2000000000000001',
      kind: 'SERVER',
      name: 'get /stock',
      timestamp: t + 10_000,
      duration: 2_000_000,
      localEndpoint: { serviceName: 'inventory' },
      tags: { region: 'eu' },
    },
  ];
  return { traceA, traceB, traceAId, traceBId };
}

/** Spans sorted the same way whatever order they were read in. */
export function sortSpans(spans: readonly Span[]): Span[] {
  return [...spans].sort((a, b) =>
    a.id === b.id ? String(a.kind).localeCompare(String(b.kind)) : a.id.localeCompare(b.id),
  );
}
