// Differential test of the JSON v2 fast path: every body is decoded with the
// fast path and with the general path (JSON.parse + normalizeSpan) alone,
// and the two DecodeResults must be the same, down to property order and
// the reasons and messages of dropped spans.
import { describe, it, expect } from 'vitest';
import { decodeSpansWith } from './decode-spans.js';
import { decodeJsonV2Fast, fastPathStats } from './json-v2-fast-path.js';
import { encodeJsonV2, type DecodeOptions, type DecodeResult } from './index.js';
import { realisticSpans } from './bench/realistic-spans.js';
import { mutatedBodies } from './json-v2-fast-path-mutations.js';
import { fuzzBodies } from './fixtures/fuzz-corpus.js';
import { API_EXAMPLE, V1_CLIENT_AND_SERVER, ZIPKIN_TEST_SPANS } from './fixtures/zipkin-examples.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261128);

/** Decodes `body` both ways, expects the same result and returns it. */
function bothWays(body: Uint8Array, options: DecodeOptions = {}, label = ''): DecodeResult {
  const fast = decodeSpansWith(body, options, true);
  const general = decodeSpansWith(body, options, false);
  const where = `${label} ${Buffer.from(body).subarray(0, 300).toString('latin1')}`;
  expect(fast, where).toStrictEqual(general);
  // toStrictEqual does not look at property order; JSON text does.
  expect(JSON.stringify(fast), where).toBe(JSON.stringify(general));
  return fast;
}

/** How the fast path took a body: whole-body give-up, or the number of items it handed over. */
function fastPathOf(body: Uint8Array): 'general' | number {
  const before = fastPathStats.itemsGivenUp;
  const start = Buffer.from(body).findIndex((c) => c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09);
  const r = decodeJsonV2Fast(Buffer.from(body), start);
  return r === undefined ? 'general' : fastPathStats.itemsGivenUp - before;
}

describe('JSON v2 fast path gives the same DecodeResult as the general path', () => {
  it("Zipkin's examples (pretty-printed), taken by the fast path; JSON v1 left to the general path", () => {
    for (const text of [API_EXAMPLE, ZIPKIN_TEST_SPANS]) {
      const r = bothWays(Buffer.from(text));
      expect(r.ok && r.spans.length).toBeGreaterThan(0);
      expect(fastPathOf(Buffer.from(text))).not.toBe('general');
    }
    const v1 = bothWays(Buffer.from(V1_CLIENT_AND_SERVER));
    expect(v1.ok && v1.encoding).toBe('JSON_V1');
    expect(fastPathOf(Buffer.from(V1_CLIENT_AND_SERVER))).toBe('general');
  });

  it('realistic spans: every span read by the fast path itself', () => {
    for (const seed of [1, 2, 3, 42, SEED]) {
      const body = encodeJsonV2(realisticSpans(500, seed));
      const r = bothWays(body);
      expect(r.ok && r.spans.length).toBe(500);
      expect(fastPathOf(body)).toBe(0);
    }
  });

  it('1,500 bodies of the fuzz corpus', () => {
    const next = fuzzBodies(SEED);
    let taken = 0;
    for (let i = 0; i < 1500; i++) {
      const { label, body, options } = next(i);
      bothWays(body, options, `fuzz body ${i} (${label})`);
      if (options === undefined && body.length > 0 && fastPathOf(body) !== 'general') taken++;
    }
    // Bodies of JSON v2 spans with wrong types in fields reach the fast path.
    expect(taken).toBeGreaterThan(50);
  }, 60_000);

  it('3,000 bodies of realistic spans with random changes of every kind', () => {
    const next = mutatedBodies(SEED);
    let fastSpans = 0;
    let wholeBodies = 0;
    const before = fastPathStats.itemsGivenUp;
    for (let i = 0; i < 3000; i++) {
      const { text, label } = next();
      const body = Buffer.from(text);
      const r = bothWays(body, {}, `mutated body ${i} (${label})`);
      const how = fastPathOf(body);
      if (how === 'general') wholeBodies++;
      else if (r.ok) fastSpans += r.spans.length + r.dropped.length - how;
    }
    const givenUp = fastPathStats.itemsGivenUp - before;
    // All three ways are exercised: spans read fast, spans handed to the
    // general path, whole bodies handed to the general path.
    expect(fastSpans).toBeGreaterThan(2000);
    expect(givenUp).toBeGreaterThan(5000);
    expect(wholeBodies).toBeGreaterThan(300);
  }, 120_000);

  const T = '463ac35c9f6413ad48485a3953bb6124';
  const I = 'a2fb4a1d1a96d312';
  const EDGE_CASES: [string, string][] = [
    ['empty list', '[]'],
    ['empty list, spaces', ' [ \n ] \n'],
    ['empty object', '[{}]'],
    ['minimal span', `[{"traceId":"${T}","id":"${I}"}]`],
    ['16-char trace id', `[{"traceId":"${I}","id":"${I}"}]`],
    ['upper-case ids', `[{"traceId":"${T.toUpperCase()}","id":"${I.toUpperCase()}","parentId":"ABCDEF0123456789"}]`],
    ['32-char id with zero high bits', `[{"traceId":"0000000000000000${I}","id":"${I}"}]`],
    ['17-31-char ids with zero and non-zero high bits', `[{"traceId":"0${I}","id":"${I}"},{"traceId":"00000${I}","id":"${I}"},{"traceId":"1${I}","id":"${I}"},{"traceId":"000000000000001${I}","id":"${I}"}]`],
    ['short ids', `[{"traceId":"1","id":"2","parentId":"3"}]`],
    ['all-zero ids', `[{"traceId":"${'0'.repeat(32)}","id":"${I}"},{"traceId":"${T}","id":"${'0'.repeat(16)}"},{"traceId":"${T}","id":"${I}","parentId":"${'0'.repeat(16)}"}]`],
    ['empty strings', `[{"traceId":"${T}","id":"${I}","parentId":"","kind":"","name":"","localEndpoint":{"serviceName":"","ipv4":"","ipv6":""},"tags":{"":""}}]`],
    ['nulls', `[{"traceId":"${T}","id":"${I}","parentId":null,"kind":null,"name":null,"timestamp":null,"duration":null,"localEndpoint":null,"annotations":null,"tags":null,"debug":null,"shared":null}]`],
    ['null item', `[null,{"traceId":"${T}","id":"${I}"}]`],
    ['escapes', `[{"traceId":"${T}","id":"${I}","name":"a\\"b\\\\c\\/d\\u0041\\n","tags":{"k\\u0020":"v\\t"}}]`],
    ['lone surrogate escape', `[{"traceId":"${T}","id":"${I}","name":"\\ud800","tags":{"\\udc00":"\\ud83d"}}]`],
    ['unicode (not ASCII)', `[{"traceId":"${T}","id":"${I}","name":"grüße 😀","tags":{"é":"ü"}}]`],
    ['raw control character in a string', `[{"traceId":"${T}","id":"${I}","name":"a\u0001b"}]`],
    ['numbers', `[{"traceId":"${T}","id":"${I}","timestamp":1.5,"duration":-5},{"traceId":"${T}","id":"${I}","timestamp":1e3,"duration":-0},{"traceId":"${T}","id":"${I}","timestamp":9007199254740993},{"traceId":"${T}","id":"${I}","timestamp":9007199254740991,"duration":0}]`],
    ['huge numbers', `[{"traceId":"${T}","id":"${I}","timestamp":${'9'.repeat(400)}},{"traceId":"${T}","id":"${I}","localEndpoint":{"port":1e400}}]`],
    ['bad numbers (malformed JSON)', `[{"traceId":"${T}","id":"${I}","timestamp":01}]`],
    ['ports', `[{"traceId":"${T}","id":"${I}","localEndpoint":{"port":0},"remoteEndpoint":{"port":65535}},{"traceId":"${T}","id":"${I}","localEndpoint":{"port":65536}},{"traceId":"${T}","id":"${I}","localEndpoint":{"port":-1,"serviceName":"A"}}]`],
    ['IP forms', `[{"traceId":"${T}","id":"${I}","localEndpoint":{"ipv4":"::ffff:10.0.0.1","ipv6":"10.0.0.2"},"remoteEndpoint":{"ipv6":"2001:DB8::0:1","ipv4":"010.0.0.1"}}]`],
    ['duplicate keys', `[{"traceId":"${T}","id":"${I}","name":"a","name":"b","tags":{"k":"1","j":"2","k":"3"},"localEndpoint":{"serviceName":"x","serviceName":"y"}}]`],
    ['duplicate id keys', `[{"traceId":"${T}","id":"${I}","id":"b2fb4a1d1a96d312"}]`],
    ['integer-like tag keys', `[{"traceId":"${T}","id":"${I}","tags":{"b":"1","10":"2","2":"3","a":"4"}}]`],
    ['__proto__ keys', `[{"traceId":"${T}","id":"${I}","__proto__":{"x":1},"tags":{"__proto__":"p","constructor":"c"}}]`],
    ['whitespace everywhere', ` \r\n\t[ \n{ "traceId" : "${T}" ,\n"id"\t:\t"${I}" , "tags" : { "a" : "b" } , "annotations" : [ { "timestamp" : 5 , "value" : "v" } ] } \n, {"traceId":"${T}","id":"${I}"} ]\r\n`],
    ['nested garbage', `[{"traceId":"${T}","id":"${I}","extra":{"a":[1,{"b":[[[]]]},"]}"]}},[[{}]],"x",5,true]`],
    ['annotations out of order and repeated', `[{"traceId":"${T}","id":"${I}","annotations":[{"timestamp":2,"value":"b"},{"timestamp":1,"value":"a"},{"timestamp":2,"value":"b"}]}]`],
    ['annotations repeated in order', `[{"traceId":"${T}","id":"${I}","annotations":[{"timestamp":1,"value":"a"},{"timestamp":1,"value":"a"},{"timestamp":1,"value":"b"},{"timestamp":2,"value":"a"}]}]`],
    ['annotation with an endpoint (JSON v1)', `[{"traceId":"${T}","id":"${I}","annotations":[{"timestamp":2,"value":"cs","endpoint":{"serviceName":"a"}}]}]`],
    ['v2 field on the first span, v1 annotations after', `[{"traceId":"${T}","id":"${I}","kind":"CLIENT"},{"traceId":"${T}","id":"${I}","annotations":[{"timestamp":2,"value":"cs","endpoint":{"serviceName":"a"}}]}]`],
    ['v1 object after a non-object', `[5,{"traceId":"${T}","id":"${I}","binaryAnnotations":[]}]`],
    ['kinds', `[{"traceId":"${T}","id":"${I}","kind":"client","shared":true},{"traceId":"${T}","id":"${I}","kind":"CLIENT","shared":true},{"traceId":"${T}","id":"${I}","kind":"SERVER","shared":true,"debug":true},{"traceId":"${T}","id":"${I}","kind":"PRODUCER"},{"traceId":"${T}","id":"${I}","kind":"CONSUMER"},{"traceId":"${T}","id":"${I}","kind":"BOGUS"}]`],
    ['trace ids differing in one character from the previous span\'s', `[${[T, `${T.slice(0, 31)}5`, `7${T.slice(1)}`, `${T.slice(0, 16)}0${T.slice(17)}`, T, T.toUpperCase(), T].map((t) => `{"traceId":"${t}","id":"${I}"}`).join(',')}]`],
    ['the previous span\'s trace id without its opening quote (malformed JSON)', `[{"traceId":"${T}","id":"${I}"},{"traceId":X${T}","id":"${I}"}]`],
    ['parent id equal to id', `[{"traceId":"${T}","parentId":"${I}","id":"${I}"}]`],
    ['upper-case names', `[{"traceId":"${T}","id":"${I}","name":"GET /Api","localEndpoint":{"serviceName":"FrontEnd"}}]`],
    ['wrong types', `[{"traceId":5,"id":"${I}"},{"traceId":"${T}","id":[]},{"traceId":"${T}","id":"${I}","tags":{"a":5}},{"traceId":"${T}","id":"${I}","annotations":{}},{"traceId":"${T}","id":"${I}","debug":"true"}]`],
    ['trailing comma', `[{"traceId":"${T}","id":"${I}"},]`],
    ['trailing garbage', `[{"traceId":"${T}","id":"${I}"}] x`],
    ['truncated', `[{"traceId":"${T}","id":"${I}"`],
    ['unterminated string', `[{"traceId":"${T}","id":"${I}","name":"abc`],
    ['a list of lists', `[[{"traceId":"${T}","id":"${I}"}]]`],
    ['an object, not a list', `{"traceId":"${T}","id":"${I}"}`],
  ];
  it.each(EDGE_CASES)('edge case: %s', (label, text) => {
    bothWays(Buffer.from(text), {}, label);
  });

  it('tag keys named like properties of Object.prototype, even a setter added to it', () => {
    const span = (tags: string) => `{"traceId":"${T}","id":"${I}","tags":{${tags}}}`;
    const body = Buffer.from(`[${span('"toString":"a","hasOwnProperty":"b"')},${span('"polluted":"c"')},${span('"__proto__":"d"')}]`);
    Object.defineProperty(Object.prototype, 'polluted', { set: () => {}, configurable: true });
    try {
      const r = bothWays(body);
      expect(r.ok && r.spans.map((s) => Object.keys(s.tags ?? {}))).toEqual([['toString', 'hasOwnProperty'], ['polluted'], ['__proto__']]);
    } finally {
      delete (Object.prototype as Record<string, unknown>).polluted;
    }
  });

  it('long tag keys and long lists of tags', () => {
    const tags = Array.from({ length: 100 }, (_, i) => `"${i % 3 === 0 ? 'k'.repeat(70 + i) : `key${i}`}":"v${i}"`).join(',');
    const span = `{"traceId":"${T}","id":"${I}","tags":{${tags}}}`;
    const body = Buffer.from(`[${span},${span},${span}]`);
    const r = bothWays(body);
    expect(r.ok && Object.keys(r.spans[2]?.tags ?? {}).length).toBe(100);
    expect(fastPathOf(body)).toBe(0);
  });

  it('many junk items and many odd spans', () => {
    for (const unit of ['{},', '1,', 'null,', `{"traceId":"${T.toUpperCase()}","id":"${I}"},`, `{"traceId":"${T}","id":"${I}","timestamp":1.5},`]) {
      bothWays(Buffer.from(`[${unit.repeat(2000)}{}]`), {}, unit);
    }
    // Odd spans among good ones are handed over one by one.
    const good = `{"traceId":"${T}","id":"${I}"}`;
    const odd = `{"traceId":"${T}","id":"${I}","name":"a\\"b"}`;
    const body = Buffer.from(`[${[good, odd, good, good, odd].join(',')}]`);
    bothWays(body);
    expect(fastPathOf(body)).toBe(2);
  });
});
