// Fuzz test of the decoder: random and mutated bodies from a seeded PRNG (set
// FUZZ_SEED to reproduce or vary a run). Whatever comes in, decodeSpans must
// return (never throw, never hang), a failed body must carry a known reason
// and a message, and whatever it accepts must be valid spans that survive
// both encoders and decode back unchanged.
import { describe, it, expect } from 'vitest';
import { decodeSpans, encodeJsonV2, encodeProto3, normalizeSpan, type Span } from './index.js';
import { fuzzBodies } from './fixtures/fuzz-corpus.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261128);
const nextBody = fuzzBodies(SEED);

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
