/**
 * Poison messages between good ones: every bad message is either
 * dead-lettered with its reason in the headers or stored in part with its
 * invalid spans counted as drops; the collector keeps running and every good
 * message is stored.
 */
import { gzipSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import type { Options } from 'amqplib';
import { ClickHouseStore } from '@tracehouse/storage';
import type { Span } from '@tracehouse/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLICKHOUSE_URL, CollectorProcess, METRIC, Rabbit, checkStored, makeSpans, uniqueName, waitFor } from './harness.js';
import { listOfSpans } from './zipkin-proto.js';

interface Poison {
  kind: string;
  body: Buffer;
  options?: Options.Publish;
  /** Dead-lettered with this x-tracehouse-reason... */
  deadLetter?: string;
  /** ...and/or these spans dropped (by reason), counted in the metrics. */
  drops?: Record<string, number>;
  /** Good spans inside a partly bad message, which must be stored. */
  stored?: Span[];
}

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

function poisons(): Poison[] {
  const part = (): Span[] => makeSpans(3, { perTrace: 3, service: 'partial' });
  const [a, b, c, d, e, f, g, h] = [part(), part(), part(), part(), part(), part(), part(), part()];
  // As a Spring AMQP publisher sends them: numbers among the tags, the charset in content-encoding.
  const springStyle = h.map((s) => ({ ...s, tags: { ...s.tags, 'http.status_code': 200 } }));
  const one = makeSpans(1)[0]!;
  const bigSpans = makeSpans(12_000, { perTrace: 100 });
  const fiveMegabytes = json(bigSpans.map((s) => ({ ...s, tags: { ...s.tags, padding: 'x'.repeat(300) } })));
  const list: Poison[] = [
    { kind: 'truncated JSON', body: json([one]).subarray(0, 40), deadLetter: 'malformed_json' },
    { kind: 'trailing garbage after the list', body: Buffer.concat([json([one]), Buffer.from('}}garbage')]), deadLetter: 'malformed_json' },
    { kind: 'JSON object, not a list', body: json(one), deadLetter: 'not_a_list' },
    { kind: 'JSON string', body: json('a span'), deadLetter: 'unknown_encoding' },
    { kind: 'JSON null', body: Buffer.from('null'), deadLetter: 'unknown_encoding' },
    { kind: 'JSON number', body: Buffer.from('42'), deadLetter: 'unknown_encoding' },
    { kind: 'empty body', body: Buffer.alloc(0), deadLetter: 'empty' },
    { kind: 'only whitespace', body: Buffer.from(' \n\t '), deadLetter: 'empty' },
    { kind: 'binary garbage', body: Buffer.concat([Buffer.from([0xff, 0xfe, 0x00]), randomBytes(2_000)]), deadLetter: 'unknown_encoding' },
    { kind: 'a 5 MB body', body: fiveMegabytes, deadLetter: 'too_large' },
    { kind: 'gzip flag on plain bytes', body: json([one]), options: { contentEncoding: 'gzip' }, deadLetter: 'bad_gzip' },
    { kind: 'gzip bomb', body: gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x20)), options: { contentEncoding: 'gzip' }, deadLetter: 'too_large' },
    { kind: 'gzipped garbage', body: gzipSync(Buffer.concat([Buffer.from([0xff]), randomBytes(500)])), options: { contentEncoding: 'gzip' }, deadLetter: 'unknown_encoding' },
    { kind: 'unsupported content-encoding', body: json(makeSpans(1)), options: { contentEncoding: 'br' }, deadLetter: 'unknown_encoding' },
    { kind: 'truncated proto', body: listOfSpans([{ ...one, name: 'cut' }]).subarray(0, 20), deadLetter: 'malformed_proto' },
    {
      kind: 'proto span of garbage bytes',
      body: Buffer.concat([Buffer.from([0x0a, 0x06]), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff])]),
      deadLetter: 'no_valid_spans',
      drops: { bad_field_type: 1 },
    },
    { kind: 'wrong field types', body: json([{ traceId: 123, id: true, name: ['x'] }]), deadLetter: 'no_valid_spans', drops: { bad_trace_id: 1 } },
    { kind: 'list of lists', body: Buffer.from('[[1,2],[3]]'), deadLetter: 'no_valid_spans', drops: { not_an_object: 2 } },
    { kind: 'deeply nested garbage', body: Buffer.from('['.repeat(100_000) + ']'.repeat(100_000)), deadLetter: 'no_valid_spans', drops: { not_an_object: 1 } },
    { kind: 'list of null', body: Buffer.from('[null]'), deadLetter: 'no_valid_spans', drops: { not_an_object: 1 } },
    // Stored in part: the good spans land, the bad one is counted.
    { kind: 'non-hex trace id', body: json([...a, { ...one, traceId: 'zz'.repeat(8) }]), stored: a, drops: { bad_trace_id: 1 } },
    { kind: 'unknown kind', body: json([...b, { ...one, kind: 'SIDEWAYS' }]), stored: b, drops: { bad_kind: 1 } },
    { kind: '32-character span id', body: json([...c, { ...one, id: 'ab'.repeat(16) }]), stored: c, drops: { bad_id: 1 } },
    { kind: 'timestamp as text', body: json([...d, { ...one, timestamp: 'yesterday' }]), stored: d, drops: { bad_timestamp: 1 } },
    { kind: 'annotations not a list', body: json([...e, { ...one, annotations: 'boom' }]), stored: e, drops: { bad_annotation: 1 } },
    { kind: 'boolean tag values', body: json([...f, { ...one, tags: { retried: true } }]), stored: f, drops: { bad_tags: 1 } },
    // Stored whole, as Zipkin's collector stores them.
    { kind: 'number tags, UTF-8 as content-encoding', body: json(springStyle), options: { contentEncoding: 'UTF-8' }, stored: h },
    { kind: 'span without ids', body: json([...g, { name: 'orphan' }]), stored: g, drops: { missing_trace_id: 1 } },
  ];
  expect(fiveMegabytes.length).toBeGreaterThan(5_000_000);
  // Dead letters are matched to their kind by body, so bodies must differ.
  expect(new Set(list.map((p) => p.body.toString('base64'))).size).toBe(list.length);
  return list;
}

describe('poison messages', () => {
  const queue = uniqueName('th_poison');
  const database = uniqueName('th_poison');
  let rabbit: Rabbit;
  let store: ClickHouseStore;
  let collector: CollectorProcess;

  beforeAll(async () => {
    rabbit = await Rabbit.open();
    store = await ClickHouseStore.open({ url: CLICKHOUSE_URL, database });
    collector = await CollectorProcess.spawn({ queue, database, env: { TRACEHOUSE_LOG_LEVEL: 'warn', TRACEHOUSE_COLLECTOR_BATCH_AGE_MS: '200' } });
    await collector.waitReady();
  });

  afterAll(async () => {
    await collector.stop();
    await store.dropDatabase().catch(() => undefined);
    await store.close();
    await rabbit.deleteCollectorTopology(queue);
    await rabbit.close();
  });

  it('dead-letters or partly stores every bad message, stores every good one, and keeps running', async () => {
    const bad = poisons();
    expect(bad.length).toBeGreaterThanOrEqual(20);
    const good: Span[] = [];
    let goodMessages = 0;
    const publishGood = async (i: number): Promise<void> => {
      const spans = makeSpans(20, { perTrace: 5, service: 'good' });
      good.push(...spans);
      goodMessages++;
      if (i % 3 === 0) await rabbit.publish(queue, Buffer.from(JSON.stringify(spans)));
      else if (i % 3 === 1) await rabbit.publish(queue, listOfSpans(spans));
      else await rabbit.publish(queue, gzipSync(JSON.stringify(spans)), { contentEncoding: 'gzip' });
    };
    for (let i = 0; i < bad.length; i++) {
      await publishGood(i);
      await rabbit.publish(queue, bad[i]!.body, bad[i]!.options);
    }
    await publishGood(bad.length);

    const total = bad.length + goodMessages;
    await waitFor(async () => (await collector.metrics()).value(METRIC.acked) >= total, {
      timeoutMs: 60_000,
      what: `all ${total} messages acked; logs:\n${collector.logs.slice(-10).join('\n')}`,
      intervalMs: 200,
    });
    expect(collector.running).toBe(true);
    expect((await collector.ready())?.status).toBe(200);

    // Dead letters: exactly the expected messages, bodies unchanged, reason and error in the headers.
    const expectedDead = bad.filter((p) => p.deadLetter !== undefined);
    const dead = await rabbit.getAll(`${queue}.dlq`);
    expect(dead).toHaveLength(expectedDead.length);
    for (const p of expectedDead) {
      const match = dead.find((m) => m.content.equals(p.body));
      expect(match, p.kind).toBeDefined();
      expect(match!.headers['x-tracehouse-reason'], p.kind).toBe(p.deadLetter);
      expect(String(match!.headers['x-tracehouse-error']).length, p.kind).toBeGreaterThan(0);
      expect(match!.headers['x-tracehouse-queue']).toBe(queue);
    }

    const metrics = await collector.metrics();
    const byReason = new Map<string, number>();
    for (const p of expectedDead) byReason.set(p.deadLetter!, (byReason.get(p.deadLetter!) ?? 0) + 1);
    for (const [reason, n] of byReason) expect(metrics.value(METRIC.deadLettered, { reason }), reason).toBe(n);

    const drops = new Map<string, number>();
    for (const p of bad) for (const [reason, n] of Object.entries(p.drops ?? {})) drops.set(reason, (drops.get(reason) ?? 0) + n);
    for (const [reason, n] of drops) expect(metrics.value(METRIC.dropped, { reason }), reason).toBe(n);
    expect(metrics.value(METRIC.dropped)).toBe([...drops.values()].reduce((x, y) => x + y, 0));

    const partial = bad.flatMap((p) => p.stored ?? []);
    const check = await checkStored(store.reader, [...good, ...partial]);
    expect(check).toEqual({ expected: good.length + partial.length, missing: 0, duplicates: 0, unexpected: 0 });
    expect(metrics.value(METRIC.stored)).toBe(good.length + partial.length);
    expect(await rabbit.messageCount(queue)).toBe(0);
  });
});
