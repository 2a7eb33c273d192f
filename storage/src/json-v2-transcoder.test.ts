// Differential test of the JSON v2 transcoder: for every body, transcodeSpans
// must give what the collector did before it, encodeSpans(decodeSpans(...)):
// the same rows byte for byte, the same count, the same drops, the same
// failure. Same corpora as the model's json-v2-fast-path.test.ts, plus cases
// of the row format (TabSeparated and array escaping, tag order, the time a
// span is filed under).
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodeSpans, encodeJsonV2, encodeProto3, type DecodeOptions, type Span } from '@tracehouse/model';
// The model's test corpora, from its build (they are not part of its API).
import { prng, realisticSpans } from '../../model/dist/bench/realistic-spans.js';
import { fuzzBodies } from '../../model/dist/fixtures/fuzz-corpus.js';
import { API_EXAMPLE, V1_CLIENT_AND_SERVER, ZIPKIN_TEST_SPANS } from '../../model/dist/fixtures/zipkin-examples.js';
import { mutatedBodies } from '../../model/dist/json-v2-fast-path-mutations.js';
import { transcodeSpans, transcoderStats } from './json-v2-transcoder.js';
import { encodeSpans } from './span-row.js';
import { generateSpans } from './span-generator.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261128);
const NOW = 1_764_000_000_123_456;

/** Transcodes `body` and compares with decode+encode; returns how many rows were written from bytes. */
function same(body: Uint8Array, options: DecodeOptions = {}, label = ''): number {
  const before = transcoderStats.rowsFromBytes;
  const actual = transcodeSpans(body, options, NOW);
  const fromBytes = transcoderStats.rowsFromBytes - before;
  const expected = decodeSpans(body, options);
  const where = `${label} ${Buffer.from(body).subarray(0, 300).toString('latin1')}`;
  if (!expected.ok) {
    expect(actual, where).toStrictEqual(expected);
    return fromBytes;
  }
  expect(actual.ok, where).toBe(true);
  if (!actual.ok) return fromBytes;
  const rows = encodeSpans(expected.spans, NOW);
  // As text first, for a readable difference; then as bytes.
  expect(actual.encoded.rows.toString('utf8'), where).toBe(rows.rows.toString('utf8'));
  expect(actual.encoded.rows.equals(rows.rows), where).toBe(true);
  expect(actual.encoded.count, where).toBe(rows.count);
  expect(actual.encoding, where).toBe(expected.encoding);
  expect(actual.dropped, where).toStrictEqual(expected.dropped);
  return fromBytes;
}

const T = '463ac35c9f6413ad48485a3953bb6124';
const I = 'a2fb4a1d1a96d312';
const P = 'b2fb4a1d1a96d312';
const span = (fields: string): string => `{"traceId":"${T}","id":"${I}"${fields === '' ? '' : ','}${fields}}`;

describe('transcodeSpans gives the rows of encodeSpans(decodeSpans(body))', () => {
  it("Zipkin's examples and JSON v1", () => {
    expect(same(Buffer.from(API_EXAMPLE))).toBeGreaterThan(0);
    expect(same(Buffer.from(ZIPKIN_TEST_SPANS))).toBeGreaterThan(0);
    expect(same(Buffer.from(V1_CLIENT_AND_SERVER))).toBe(0);
  });

  it('realistic spans, every row written from the bytes; also gzipped, proto3 and with a BOM', () => {
    for (const seed of [1, 2, 3, 42, SEED]) {
      const spans = realisticSpans(500, seed);
      const body = encodeJsonV2(spans);
      const verbatim = transcoderStats.verbatimPayloads;
      expect(same(body)).toBe(500);
      // Compact, in Zipkin's field order: the payload up to the tags is the body's text.
      expect(transcoderStats.verbatimPayloads - verbatim).toBe(500);
      expect(same(gzipSync(body), { contentEncoding: 'gzip' })).toBe(500);
      expect(same(gzipSync(body))).toBe(500);
      expect(same(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf, 0x20, 0x0a]), body]))).toBe(500);
      expect(same(encodeProto3(spans))).toBe(0);
    }
  });

  it("storage's generated spans, with tags in random orders", () => {
    const rand = prng(SEED);
    const spans = generateSpans({ traces: 100, spansPerTrace: 10, seed: SEED });
    const shuffled = spans.map((s): Span => {
      if (s.tags === undefined) return s;
      const entries = Object.entries(s.tags).sort(() => rand() - 0.5);
      return { ...s, tags: Object.fromEntries(entries) };
    });
    expect(same(encodeJsonV2(shuffled))).toBe(spans.length);
  });

  it('1,500 bodies of the fuzz corpus', () => {
    const next = fuzzBodies(SEED);
    for (let i = 0; i < 1500; i++) {
      const { label, body, options } = next(i);
      same(body, options, `fuzz body ${i} (${label})`);
    }
  }, 60_000);

  it('3,000 bodies of realistic spans with random changes of every kind', () => {
    const next = mutatedBodies(SEED);
    let fromBytes = 0;
    const verbatim = transcoderStats.verbatimPayloads;
    for (let i = 0; i < 3000; i++) {
      const { text, label } = next();
      fromBytes += same(Buffer.from(text), {}, `mutated body ${i} (${label})`);
    }
    expect(fromBytes).toBeGreaterThan(2000);
    // Both ways of writing the payload are exercised.
    const verbatimPayloads = transcoderStats.verbatimPayloads - verbatim;
    expect(verbatimPayloads).toBeGreaterThan(500);
    expect(fromBytes - verbatimPayloads).toBeGreaterThan(500);
  }, 120_000);

  const EDGE_CASES: [string, string, number][] = [
    ['empty list', '[]', 0],
    ['minimal span: filed under the fallback time', `[${span('')}]`, 1],
    ['no timestamp: filed under the first annotation', `[${span('"annotations":[{"timestamp":7,"value":"a"},{"timestamp":9,"value":"b"}]')}]`, 1],
    ['zero timestamp and duration', `[${span('"timestamp":0,"duration":0')}]`, 1],
    ['16-char trace id', `[{"traceId":"${I}","id":"${P}"}]`, 1],
    ['17-31-char trace ids with zero and non-zero high bits go the general way', `[{"traceId":"0${I}","id":"${P}"},{"traceId":"00000${I}","id":"${P}"},{"traceId":"1${I}","id":"${P}"}]`, 0],
    ['parent id, and a parent id equal to the id', `[${span(`"parentId":"${P}"`)},${span(`"parentId":"${I}"`)}]`, 2],
    ["' in values, keys, annotations and names", `[${span(`"name":"it's","tags":{"k'":"v'1","a":"''"},"annotations":[{"timestamp":1,"value":"'"}],"localEndpoint":{"serviceName":"o'neil"}`)}]`, 1],
    ["' at every place of longer texts", `[${span(`"tags":{${["abcd'", "abcde'", "abcdef'", "abcdefg'", "'abcd", "ab'cdefgh", "abcd'efgh'"].map((v, i) => `"k${i}":"${v}","${v}":"v"`).join(',')}},"annotations":[{"timestamp":1,"value":"abcde'"}]`)}]`, 1],
    ['escapes (tab, newline, backslash, quote) go the general way', `[${span('"name":"a\\tb","tags":{"k":"v\\n\\\\\\"","t\\t":"x"}')}]`, 0],
    ['non-ASCII goes the general way', `[${span('"name":"grüße","tags":{"é":"ü"}')}]`, 0],
    ['unsorted tags', `[${span('"tags":{"z":"1","b":"2","a":"3","ab":"4","a.b":"5","":"6","A":"7"}')}]`, 1],
    ['index-like tag keys', `[${span('"tags":{"b":"1","10":"2","2":"3","a":"4","01":"5"}')}]`, 0],
    ['digit-led tag keys that are not indices', `[${span('"tags":{"1a":"1","0x":"2"}')}]`, 0],
    ['repeated tag keys', `[${span('"tags":{"k":"1","j":"2","k":"3"}')}]`, 0],
    ['a tag named __proto__, alone and next to an index-like key', `[${span('"tags":{"__proto__":"x"}')},${span('"tags":{"__proto__":"x","1":"y"}')}]`, 0],
    ['empty tags and annotations', `[${span('"tags":{},"annotations":[]')}]`, 1],
    ['empty strings', `[${span('"name":"","tags":{"":""},"localEndpoint":{"serviceName":"","ipv4":"","ipv6":""},"remoteEndpoint":{}')}]`, 1],
    ['upper-case names', `[${span('"name":"GET /Api","localEndpoint":{"serviceName":"FrontEnd"},"remoteEndpoint":{"serviceName":"DB"}')}]`, 1],
    ['endpoints of one field', `[${span('"localEndpoint":{"port":8080},"remoteEndpoint":{"ipv4":"10.0.0.1"}')},${span('"localEndpoint":{"serviceName":"a"},"remoteEndpoint":{"port":0}')}]`, 2],
    ['IPv6 and unusual IPv4 go the general way', `[${span('"localEndpoint":{"ipv6":"2001:DB8::1"}')},${span('"remoteEndpoint":{"ipv4":"::ffff:10.0.0.1"}')},${span('"remoteEndpoint":{"ipv4":"not an ip"}')}]`, 0],
    ['kinds, debug and shared', `[${span('"kind":"CLIENT","shared":true,"debug":true')},${span('"kind":"SERVER","shared":true,"debug":false')},${span('"kind":"PRODUCER","shared":false')},${span('"kind":"CONSUMER","debug":true')}]`, 4],
    ['big numbers', `[${span('"timestamp":9007199254740991,"duration":1,"localEndpoint":{"port":65535},"annotations":[{"timestamp":9007199254740991,"value":"x"}]')}]`, 1],
    ['number tag and annotation values, and annotations without a time or value, go the general way', `[${span('"tags":{"http.status_code":200,"ratio":1.50},"annotations":[{"timestamp":3,"value":7},{"timestamp":0,"value":"x"},{"timestamp":4,"value":""}]')}]`, 0],
    ['odd spans among clean ones', `[${span('"name":"a"')},${span('"name":null')},5,${span('"name":"b"')},{}]`, 2],
    ['whitespace everywhere', ` \r\n[ { "traceId" : "${T}" , "id" : "${I}" , "tags" : { "b" : "1" , "a" : "2" } } ,\n${span('')} ] \n`, 2],
    ['trailing garbage', `[${span('')}] x`, 0],
    ['truncated', `[${span('')}`, 0],
    ['an object', span(''), 0],
  ];
  it.each(EDGE_CASES)('edge case: %s', (label, text, fromBytes) => {
    expect(same(Buffer.from(text), {}, label)).toBe(fromBytes);
  });

  it('spans of many tags, in reverse, shuffled or repeated order, are written from the bytes in the same order', () => {
    const keys = Array.from({ length: 5000 }, (_, i) => `k${String(i).padStart(5, '0')}`);
    const tags = (order: string[]): string => `"tags":{${order.map((k) => `"${k}":"v${k}"`).join(',')}}`;
    const shuffled = [...keys].sort((a, b) => (a.split('').reverse().join('') < b.split('').reverse().join('') ? -1 : 1));
    // Written from bytes: the keys sorted by the transcoder (beyond what an insertion sort is given).
    expect(same(Buffer.from(`[${span(tags([...keys].reverse()))}]`))).toBe(1);
    expect(same(Buffer.from(`[${span(tags(shuffled))}]`))).toBe(1);
    expect(same(Buffer.from(`[${span(tags(keys.slice(0, 65).reverse()))}]`))).toBe(1);
    // A key repeated among many: the general way (the last value wins), with the same rows.
    expect(same(Buffer.from(`[${span(tags([...keys.slice(0, 100), 'k00050']))}]`))).toBe(0);
  });

  it('a tag named __proto__ stays in the payload, as in the tag columns', () => {
    const body = Buffer.from(`[${span('"tags":{"__proto__":"x","1":"y"}')}]`);
    same(body);
    const r = transcodeSpans(body, {}, NOW);
    if (!r.ok) throw new Error(r.message);
    const fields = r.encoded.rows.toString('utf8').slice(0, -1).split('\t');
    expect(fields[9]).toBe("['1','__proto__']");
    expect(Object.entries((JSON.parse(fields[12] as string) as Span).tags ?? {})).toEqual([
      ['1', 'y'],
      ['__proto__', 'x'],
    ]);
  });

  // A span whose text before its tags is the payload's, and variants that
  // differ from it in one thing the payload drops, changes or spells
  // differently: only the base may be copied as it is.
  const BASE =
    `{"traceId":"${T}","parentId":"${P}","id":"${I}","kind":"SERVER","name":"get /x","timestamp":5,"duration":7,` +
    `"localEndpoint":{"serviceName":"a","ipv4":"10.0.0.1","port":80},"remoteEndpoint":{"serviceName":"b"},` +
    `"annotations":[{"timestamp":6,"value":"x"},{"timestamp":7,"value":"y"}],"tags":{"b":"1","a":"2"}}`;
  const VARIANTS: [string, string, number][] = [
    ['the base', BASE, 1],
    ['without tags', BASE.replace(',"tags":{"b":"1","a":"2"}', ''), 1],
    ['empty tags', BASE.replace('"tags":{"b":"1","a":"2"}', '"tags":{}'), 1],
    ['upper-case name', BASE.replace('"get /x"', '"GET /x"'), 0],
    ['upper-case service', BASE.replace('"serviceName":"b"', '"serviceName":"B"'), 0],
    ['one space', BASE.replace('"name":"get /x"', '"name": "get /x"'), 0],
    ['a space before the tags', BASE.replace(',"tags"', ', "tags"'), 0],
    ['a space before the closing brace', `${BASE.replace(',"tags":{"b":"1","a":"2"}}', '')} }`, 0],
    ['annotation keys the other way', BASE.replace('{"timestamp":6,"value":"x"}', '{"value":"x","timestamp":6}'), 0],
    ['endpoint keys the other way', BASE.replace('{"serviceName":"a","ipv4":"10.0.0.1","port":80}', '{"port":80,"serviceName":"a","ipv4":"10.0.0.1"}'), 0],
    ['span keys the other way', BASE.replace(`"parentId":"${P}","id":"${I}"`, `"id":"${I}","parentId":"${P}"`), 0],
    ['parent id equal to the id', BASE.replace(`"parentId":"${P}"`, `"parentId":"${I}"`), 0],
    ['zero timestamp', BASE.replace('"timestamp":5', '"timestamp":0'), 0],
    ['zero duration', BASE.replace('"duration":7', '"duration":0'), 0],
    ['empty name', BASE.replace('"get /x"', '""'), 0],
    ['empty annotations', BASE.replace('[{"timestamp":6,"value":"x"},{"timestamp":7,"value":"y"}]', '[]'), 0],
    ['empty endpoint', BASE.replace('{"serviceName":"b"}', '{}'), 0],
    ['empty service name', BASE.replace('"serviceName":"b"', '"serviceName":"","port":1'), 0],
    ['empty ipv4', BASE.replace('"10.0.0.1"', '""'), 0],
    ['port 0', BASE.replace('"port":80', '"port":0'), 0],
    ['empty ipv6', BASE.replace('"port":80', '"ipv6":"","port":80'), 0],
    ['debug', BASE.replace('"tags"', '"debug":true,"tags"'), 0],
    ['debug false after the tags', BASE.replace('}}', '},"debug":false}'), 0],
    ['shared on a server span', BASE.replace('}}', '},"shared":true}'), 0],
  ];
  it.each(VARIANTS)('payload copied from the body only when it is the same text: %s', (label, text, verbatim) => {
    const before = transcoderStats.verbatimPayloads;
    expect(same(Buffer.from(`[${text}]`), {}, label)).toBe(1);
    expect(transcoderStats.verbatimPayloads - before).toBe(verbatim);
  });

  it('bodies that fail to decode fail the same way', () => {
    same(Buffer.alloc(0));
    same(Buffer.from('   '));
    same(Buffer.from(`[${span('')}]`), { maxBodyBytes: 10 });
    same(gzipSync(Buffer.from(`[${span('')}]`)), { contentEncoding: 'gzip', maxBodyBytes: 20 });
    same(Buffer.from('not gzip'), { contentEncoding: 'gzip' });
    same(Buffer.from(`[${span('')}]`), { contentEncoding: 'br' });
    same(Buffer.from('[1,'));
    same(Buffer.from([0x0a, 0x02, 0x08]));
  });

  it("a message's rows stay as they were while later messages are transcoded (rows share slabs)", () => {
    const kept: { rows: Buffer; copy: Buffer }[] = [];
    const big = encodeJsonV2(realisticSpans(3000, 7)); // grows a slab
    for (let i = 0; i < 80; i++) {
      const body = i % 20 === 19 ? big : encodeJsonV2(realisticSpans(1 + (i % 50), i));
      const r = transcodeSpans(body, {}, NOW);
      if (!r.ok) throw new Error('not ok');
      kept.push({ rows: r.encoded.rows, copy: Buffer.from(r.encoded.rows) });
      // A body given up on midway writes rows it then drops.
      transcodeSpans(Buffer.from(`[${span('"name":"x"')}] x`), {}, NOW);
    }
    for (const { rows, copy } of kept) expect(rows.equals(copy)).toBe(true);
  });

  it('a body too big for a shared slab gives exactly its rows, not the rest of its own slab', () => {
    // Over 2 MiB of JSON needs a slab of its own, larger than the shared ones.
    const big = encodeJsonV2(realisticSpans(3000, 11));
    expect(big.length).toBeGreaterThan(2 * 1024 * 1024);
    same(big);
    same(encodeJsonV2(realisticSpans(20, 12))); // and the next message is back on a shared slab
  });

  it("keeps a span whose tags are numbers (as zipkin-js once sent them), as Zipkin's server does", () => {
    const r = transcodeSpans(Buffer.from(`[${span('"tags":{"http.status_code":200}')}]`), {}, NOW);
    expect(r.ok && r.dropped).toEqual([]);
    expect(r.ok && r.encoded.count).toBe(1);
    expect(r.ok && r.encoded.rows.toString('utf8')).toContain('"http.status_code":"200"');
  });

  it('the fallback time is what a span without timestamps is filed under', () => {
    const r = transcodeSpans(Buffer.from(`[${span('')}]`), {}, NOW);
    expect(r.ok && r.encoded.rows.toString('utf8').split('\t')[7]).toBe(String(NOW));
  });
});
