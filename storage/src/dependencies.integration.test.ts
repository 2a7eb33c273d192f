import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Span, SpanKind } from '@tracehouse/model';
import { ClickHouseStore } from './clickhouse-store.js';
import { ENGINES, uniqueDatabase } from './test-support/fixtures.js';

const HOUR_MS = 3_600_000;

/**
 * Dependency links read back from a real store match what Zipkin's DependencyLinker makes of the
 * same spans: the pieces of one span are merged first, and the tree decides who called whom.
 */
describe.each(ENGINES)('dependency links as Zipkin links them, on the $name', ({ url }) => {
  const database = uniqueDatabase('th_deps_zipkin');
  let store: ClickHouseStore;
  const now = Date.now();
  let slot = 0;

  beforeAll(async () => {
    store = await ClickHouseStore.open({ url, database });
  });

  afterAll(async () => {
    await store?.dropDatabase();
    await store?.close();
  });

  /**
   * A window of its own for each test, three hours apart: spans built with `at` land in it, and
   * `links` reads it alone.
   */
  function window(): { at: (offsetMicros: number) => number; links: () => ReturnType<ClickHouseStore['reader']['getDependencies']> } {
    slot += 1;
    const centreMs = now - slot * 3 * HOUR_MS;
    return {
      at: (offsetMicros) => centreMs * 1000 + offsetMicros,
      links: () => store.reader.getDependencies({ endTs: centreMs + HOUR_MS, lookback: 2 * HOUR_MS }),
    };
  }

  /** A span of trace `trace` with 16-hex ids built from short tags ('a' → 'a000000000000000'). */
  function span(
    trace: string,
    fields: {
      id: string;
      parentId?: string;
      kind?: SpanKind;
      service?: string;
      remote?: string;
      error?: boolean;
      ts: number;
      shared?: boolean;
      annotations?: Span['annotations'];
    },
  ): Span {
    const hex = (tag: string): string => tag.padEnd(16, '0');
    const result: Span = { traceId: hex(trace), id: hex(fields.id), name: 'op', timestamp: fields.ts, duration: 10 };
    if (fields.parentId !== undefined) result.parentId = hex(fields.parentId);
    if (fields.kind !== undefined) result.kind = fields.kind;
    if (fields.service !== undefined) result.localEndpoint = { serviceName: fields.service };
    if (fields.remote !== undefined) result.remoteEndpoint = { serviceName: fields.remote };
    if (fields.error === true) result.tags = { error: 'failed' };
    if (fields.shared === true) result.shared = true;
    if (fields.annotations !== undefined) result.annotations = fields.annotations;
    return result;
  }

  it('counts a server half reported in two pieces once, with the error of the late piece', async () => {
    const { at, links } = window();
    await store.writer.write([
      span('1a', { id: 'a', kind: 'SERVER', service: 'frontend', ts: at(0) }),
      span('1a', { id: 'b', parentId: 'a', kind: 'CLIENT', service: 'frontend', remote: 'backend', ts: at(10) }),
      span('1a', { id: 'b', parentId: 'a', kind: 'SERVER', service: 'backend', shared: true, ts: at(20) }),
    ]);
    // The late piece: the same span again, now with the error and the remote endpoint.
    await store.writer.write([
      span('1a', { id: 'b', parentId: 'a', kind: 'SERVER', service: 'backend', remote: 'frontend', shared: true, error: true, ts: at(20) }),
    ]);
    expect(await links()).toEqual([{ parent: 'frontend', child: 'backend', callCount: 1, errorCount: 1 }]);
  });

  it('merges a late piece that has neither kind nor parent id into its span', async () => {
    const { at, links } = window();
    await store.writer.write([
      span('1b', { id: 'a', kind: 'SERVER', service: 'frontend', ts: at(0) }),
      span('1b', { id: 'b', parentId: 'a', kind: 'CLIENT', service: 'frontend', remote: 'mysql', ts: at(10) }),
      span('1b', { id: 'b', service: 'frontend', error: true, ts: at(10) }),
    ]);
    expect(await links()).toEqual([{ parent: 'frontend', child: 'mysql', callCount: 1, errorCount: 1 }]);
  });

  it('treats a span with no kind but both service names as a client, even a root', async () => {
    const { at, links } = window();
    await store.writer.write([
      span('2a', { id: 'a', service: 'some-client', remote: 'web', ts: at(0) }),
      span('2a', { id: 'b', parentId: 'a', service: 'web', remote: 'app', error: true, ts: at(10) }),
      span('2a', { id: 'c', parentId: 'b', service: 'app', remote: 'db', ts: at(20) }),
    ]);
    expect(await links()).toEqual([
      { parent: 'app', child: 'db', callCount: 1 },
      { parent: 'some-client', child: 'web', callCount: 1 },
      { parent: 'web', child: 'app', callCount: 1, errorCount: 1 },
    ]);
  });

  it('links client spans with no local service name from the nearest server', async () => {
    const { at, links } = window();
    await store.writer.write([
      span('3a', { id: 'a', kind: 'SERVER', service: 'client', ts: at(0) }),
      span('3a', { id: 'b', parentId: 'a', kind: 'CLIENT', remote: 'server', ts: at(10) }),
      span('3a', { id: 'c', parentId: 'a', kind: 'CLIENT', remote: 'server', ts: at(20) }),
    ]);
    expect(await links()).toEqual([{ parent: 'client', child: 'server', callCount: 2 }]);
  });

  it("links Zipkin's test trace (shared server half) and leaves an annotation named error uncounted", async () => {
    const { at, links } = window();
    await store.writer.write([
      span('4a', { id: 'c', parentId: 'b', kind: 'CLIENT', service: 'app', remote: 'db', error: true, ts: at(30) }),
      span('4a', { id: 'b', parentId: 'a', kind: 'SERVER', service: 'app', remote: 'web', shared: true, ts: at(20) }),
      span('4a', { id: 'b', parentId: 'a', kind: 'CLIENT', service: 'web', remote: 'app', ts: at(10) }),
      span('4a', { id: 'a', kind: 'SERVER', service: 'web', ts: at(0) }),
      span('4b', { id: 'c', parentId: 'b', kind: 'CLIENT', service: 'foo', remote: 'bar', ts: at(40), annotations: [{ timestamp: at(41), value: 'error' }] }),
    ]);
    expect(await links()).toEqual([
      { parent: 'app', child: 'db', callCount: 1, errorCount: 1 },
      { parent: 'foo', child: 'bar', callCount: 1 },
      { parent: 'web', child: 'app', callCount: 1 },
    ]);
  });

  it('counts the same once after a replay (every span written twice)', async () => {
    const { at, links } = window();
    const trace = [
      span('5a', { id: 'a', kind: 'SERVER', service: 'frontend', ts: at(0) }),
      // A client-side error; the server half is a child span, so the call counts it.
      span('5a', { id: 'b', parentId: 'a', kind: 'CLIENT', service: 'frontend', remote: 'backend', error: true, ts: at(10) }),
      span('5a', { id: 'c', parentId: 'b', kind: 'SERVER', service: 'backend', remote: 'frontend-lb', ts: at(20) }),
      span('5a', { id: 'd', parentId: 'c', kind: 'CLIENT', service: 'backend', remote: 'mysql', ts: at(30) }),
    ];
    const expected = [
      { parent: 'backend', child: 'mysql', callCount: 1 },
      { parent: 'frontend', child: 'backend', callCount: 1, errorCount: 1 },
    ];
    await store.writer.write(trace);
    expect(await links()).toEqual(expected);
    await store.writer.write(trace);
    expect(await links()).toEqual(expected);
  });
});
