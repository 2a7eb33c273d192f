// Fuzz test of the decoder: random and mutated bodies from a seeded PRNG (set
// FUZZ_SEED to reproduce or vary a run). Whatever comes in, decodeSpans must
// return (never throw, never hang), a failed body must carry a known reason
// and a message, and whatever it accepts must be valid spans that survive
// both encoders and decode back unchanged.
import { describe, it, expect } from 'vitest';
import { gzipSync } from 'node:zlib';
import { decodeSpans, encodeJsonV2, encodeProto3, normalizeSpan, type DecodeOptions, type Span } from './index.js';
import { prng, realisticSpans } from './bench/realistic-spans.js';
import { V1_CLIENT_AND_SERVER } from './fixtures/zipkin-examples.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261128);
const rand = prng(SEED);
const int = (n: number) => Math.floor(rand() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;

const FAILURE_REASONS = ['empty', 'too_large', 'bad_gzip', 'unknown_encoding', 'malformed_json', 'not_a_list', 'malformed_proto'];
const SPAN_REASONS = [
  'not_an_object',
  'missing_trace_id',
  'bad_trace_id',
  'missing_id',
  'bad_id',
  'bad_parent_id',
  'bad_kind',
  'bad_timestamp',
  'bad_duration',
  'bad_endpoint',
  'bad_annotation',
  'bad_tags',
  'bad_field_type',
];

const seedSpans = realisticSpans(40, SEED);
const seedJson = encodeJsonV2(seedSpans);
const seedProto = encodeProto3(seedSpans);

function randomBytes(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = int(256);
  return b;
}

function deepNesting(depth: number, open: string, close: string): string {
  return open.repeat(depth) + close.repeat(depth);
}

const WEIRD_VALUES: (() => unknown)[] = [
  () => null,
  () => true,
  () => 0,
  () => -1,
  () => 1.5,
  () => 2 ** 64,
  () => Number.MAX_VALUE,
  () => -Number.MAX_VALUE,
  () => '',
  () => 'x'.repeat(int(5000)),
  () => '\u0000\uD800\uFFFF😀',
  () => randomBytes(int(40)).toString('latin1'),
  () => randomBytes(8).toString('hex').toUpperCase(),
  () => '0'.repeat(int(40)),
  () => [],
  () => [1, 'a', null],
  () => ({}),
  () => ({ __proto__: 'x', constructor: 'y' }),
  () => ({ serviceName: 5, ipv4: [], port: 'x' }),
  () => [{ timestamp: 'x' }, { value: 1 }],
  () => JSON.parse(deepNesting(1 + int(2000), '[', ']')) as unknown,
  () => ({ nested: JSON.parse(deepNesting(1 + int(500), '{"a":', '}').replace(/\{"a":\}/, '{}')) as unknown }),
];
const FIELDS = ['traceId', 'id', 'parentId', 'kind', 'name', 'timestamp', 'duration', 'localEndpoint', 'remoteEndpoint', 'annotations', 'tags', 'debug', 'shared', '__proto__', 'extra'];

const isObj = (v: unknown): v is object => typeof v === 'object' && v !== null;

/** A span object with some fields replaced by wrong types, or deleted. */
function mutatedSpanObject(): unknown {
  const span = structuredClone(pick(seedSpans)) as unknown as Record<string, unknown>;
  const edits = 1 + int(4);
  for (let i = 0; i < edits; i++) {
    const field = pick(FIELDS);
    const choice = int(10);
    if (choice === 0) delete span[field];
    else if (choice === 1 && isObj(span.tags)) (span.tags as Record<string, unknown>)[pick(['k', 'error', ''])] = pick(WEIRD_VALUES)();
    else if (choice === 2 && isObj(span.localEndpoint)) (span.localEndpoint as Record<string, unknown>)[pick(['serviceName', 'ipv4', 'ipv6', 'port'])] = pick(WEIRD_VALUES)();
    else if (choice === 3 && Array.isArray(span.annotations)) (span.annotations as unknown[]).push(pick(WEIRD_VALUES)());
    else span[field] = pick(WEIRD_VALUES)();
  }
  return span;
}

type Body = { label: string; body: Uint8Array; options?: DecodeOptions };

function nextBody(i: number): Body {
  switch (i % 12) {
    case 0:
      if (int(8) === 0) return { label: 'empty or blank', body: Buffer.from(pick(['', ' ', '\n\r\t ', '\uFEFF'])) };
      return { label: 'random bytes', body: randomBytes(int(2000)) };
    case 1: {
      const b = randomBytes(1 + int(500));
      b[0] = pick([0x5b, 0x0a, 0x7b, 0x1f]);
      return { label: 'random bytes behind a plausible first byte', body: b };
    }
    case 2: {
      const src = pick([seedJson, seedProto]);
      return { label: 'truncation', body: src.subarray(0, int(src.length)) };
    }
    case 3: {
      const b = Buffer.from(pick([seedJson, seedProto]));
      const flips = 1 + int(12);
      for (let k = 0; k < flips; k++) b[int(b.length)] = int(256);
      return { label: 'byte flips', body: b };
    }
    case 4: {
      if (int(3) === 0) {
        // Zipkin v1 with wrong types in annotations and binary annotations.
        const v1 = (JSON.parse(V1_CLIENT_AND_SERVER) as Record<string, unknown>[])[0]!;
        const edits = 1 + int(4);
        for (let k = 0; k < edits; k++) {
          const list = int(2) === 0 ? v1.annotations : v1.binaryAnnotations;
          const entry: unknown = Array.isArray(list) ? list[int(list.length)] : undefined;
          if (isObj(entry)) (entry as Record<string, unknown>)[pick(['timestamp', 'value', 'endpoint', 'key'])] = pick(WEIRD_VALUES)();
          if (int(4) === 0) v1[pick(['timestamp', 'duration', 'annotations', 'binaryAnnotations', 'debug'])] = pick(WEIRD_VALUES)();
        }
        return { label: 'wrong types in fields (JSON v1)', body: Buffer.from(JSON.stringify([v1, v1])) };
      }
      const list = Array.from({ length: 1 + int(6) }, () => (int(3) === 0 ? pick(seedSpans) : mutatedSpanObject()));
      return { label: 'wrong types in fields (JSON)', body: Buffer.from(JSON.stringify(list)) };
    }
    case 5: {
      const list = Array.from({ length: 1 + int(4) }, () => pick(WEIRD_VALUES)());
      return { label: 'a list of non-spans', body: Buffer.from(JSON.stringify(list) ?? 'null') };
    }
    case 6: {
      const depth = pick([10, 1000, 20_000, 100_000]);
      const text = pick([deepNesting(depth, '[', ']'), `[{"traceId":"1","id":"2","tags":${deepNesting(depth, '{"a":', '}').replace(/\{"a":\}/, '"x"')}}]`, '['.repeat(depth)]);
      return { label: 'deep nesting', body: Buffer.from(text) };
    }
    case 7: {
      const n = pick(['1e400', '-1e400', '99999999999999999999999', '9007199254740993', '-0', '1E+15', '0.0000001', '1' + '0'.repeat(400)]);
      const field = pick(['timestamp', 'duration', 'port', 'kind', 'id']);
      const text =
        field === 'port'
          ? `[{"traceId":"1","id":"2","localEndpoint":{"port":${n}}}]`
          : `[{"traceId":"1","id":"2","${field}":${n},"annotations":[{"timestamp":${n},"value":"v"}]}]`;
      return { label: 'huge numbers', body: Buffer.from(text) };
    }
    case 8: {
      const garbage = int(2) === 0 ? randomBytes(int(3000)) : Buffer.from(JSON.stringify([mutatedSpanObject()]));
      const gz = gzipSync(garbage);
      const body = int(3) === 0 ? gz.subarray(0, int(gz.length)) : gz;
      return { label: 'gzip of garbage', body, options: { contentEncoding: pick(['gzip', 'x-gzip', 'deflate', 'GZIP', 'br', '']) } };
    }
    case 9: {
      // Proto3 framing around random span bytes, and random lengths.
      const parts: Buffer[] = [];
      const count = 1 + int(5);
      for (let k = 0; k < count; k++) {
        const inner = int(2) === 0 ? randomBytes(int(60)) : encodeProto3([pick(seedSpans)]).subarray(2 + int(2));
        const len = int(5) === 0 ? int(2 ** 31) : inner.length;
        const varint: number[] = [];
        let v = len;
        while (v >= 128) {
          varint.push((v % 128) | 128);
          v = Math.floor(v / 128);
        }
        varint.push(v);
        parts.push(Buffer.from([0x0a, ...varint]), inner);
      }
      return { label: 'proto3 with random span bytes', body: Buffer.concat(parts) };
    }
    case 10: {
      const max = 1 + int(4000);
      return { label: 'tiny maxBodyBytes', body: pick([seedJson, seedProto, gzipSync(seedJson)]), options: { maxBodyBytes: max, contentEncoding: int(2) ? 'gzip' : undefined } };
    }
    default: {
      if (int(10) === 0) {
        // Many junk items: each must cost little (256 KiB of them here).
        const unit = pick(['{},', '1,', 'null,', '"x",', '{"traceId":"x","id":"1"},', '[],']);
        return { label: 'many junk items', body: Buffer.from(`[${unit.repeat(Math.floor(262_144 / unit.length))}{}]`) };
      }
      // Valid JSON of the wrong shape.
      return { label: 'JSON of the wrong shape', body: Buffer.from(JSON.stringify(pick(WEIRD_VALUES)()) ?? '0') };
    }
  }
}

function checkAccepted(spans: Span[]): void {
  for (const span of spans) {
    const again = normalizeSpan(span);
    expect(again.ok, JSON.stringify(span).slice(0, 300)).toBe(true);
    if (again.ok) expect(again.span).toEqual(span);
  }
  const viaJson = decodeSpans(encodeJsonV2(spans));
  expect(viaJson.ok && viaJson.spans).toEqual(spans);
  if (spans.length > 0) {
    const viaProto = decodeSpans(encodeProto3(spans));
    expect(viaProto.ok && viaProto.spans).toEqual(spans);
  }
}

describe(`decodeSpans fuzz (FUZZ_SEED=${SEED})`, () => {
  it('1,500 random and mutated bodies: no exception, no hang, a reason for everything rejected', () => {
    const seen = new Map<string, number>();
    let slowest = 0;
    for (let i = 0; i < 1500; i++) {
      const { label, body, options } = nextBody(i);
      const started = performance.now();
      let result;
      try {
        result = decodeSpans(body, options);
      } catch (e) {
        throw new Error(`body ${i} (${label}) threw: ${String(e)}; first bytes ${Buffer.from(body).subarray(0, 40).toString('hex')}`, { cause: e });
      }
      const elapsed = performance.now() - started;
      slowest = Math.max(slowest, elapsed);
      expect(elapsed, `body ${i} (${label}) took ${elapsed} ms`).toBeLessThan(2000);
      if (!result.ok) {
        expect(FAILURE_REASONS, `body ${i} (${label})`).toContain(result.reason);
        expect(result.message.length).toBeGreaterThan(5);
        seen.set(result.reason, (seen.get(result.reason) ?? 0) + 1);
      } else {
        for (const d of result.dropped) {
          // Plain checks: expect() per item is too slow for bodies of 80,000 junk items.
          if (!SPAN_REASONS.includes(d.reason) || d.message.length <= 5 || !Number.isInteger(d.index) || d.index < 0) {
            expect.fail(`body ${i} (${label}): bad dropped entry ${JSON.stringify(d)}`);
          }
          seen.set(`dropped:${d.reason}`, (seen.get(`dropped:${d.reason}`) ?? 0) + 1);
        }
        checkAccepted(result.spans);
        seen.set(`ok:${result.encoding}`, (seen.get(`ok:${result.encoding}`) ?? 0) + 1);
      }
    }
    // The generators reach every whole-body failure and most span reasons.
    const tally = JSON.stringify(Object.fromEntries(seen));
    for (const reason of FAILURE_REASONS) expect(seen.get(reason) ?? 0, `never produced ${reason}: ${tally}`).toBeGreaterThan(0);
    for (const encoding of ['JSON_V2', 'JSON_V1', 'PROTO3']) expect(seen.get(`ok:${encoding}`) ?? 0, `no ${encoding} body read: ${tally}`).toBeGreaterThan(0);
    const spanReasons = SPAN_REASONS.filter((r) => seen.has(`dropped:${r}`));
    expect(spanReasons.length, tally).toBeGreaterThanOrEqual(10);
    expect(slowest).toBeLessThan(2000);
  }, 60_000);
});
