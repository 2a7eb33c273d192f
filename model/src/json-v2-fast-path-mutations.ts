// Bodies for differential tests of the JSON v2 fast path (model) and of the
// row transcoder built on its scan (storage): realistic spans written as JSON
// text with random changes of every kind the fast path must notice.
import { prng, realisticSpans } from './bench/realistic-spans.js';

// A JSON text writer that can write what JSON.stringify cannot: repeated
// keys, numbers and strings in any spelling, whitespace anywhere.
export class Raw {
  constructor(readonly text: string) {}
}
export class Pairs {
  constructor(readonly entries: [string, unknown][]) {}
}

export function write(value: unknown, ws: () => string): string {
  if (value instanceof Raw) return value.text;
  if (Array.isArray(value)) return `[${ws()}${value.map((v) => write(v, ws)).join(`${ws()},${ws()}`)}${ws()}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = value instanceof Pairs ? value.entries : Object.entries(value);
    return `{${ws()}${entries.map(([k, v]) => `${JSON.stringify(k)}${ws()}:${ws()}${write(v, ws)}`).join(`${ws()},${ws()}`)}${ws()}}`;
  }
  return JSON.stringify(value);
}

const ID_VALUES = [
  'ABCDEF0123456789',
  'abc',
  '0000000000000000',
  '00000000000000000000000000000000',
  '0000000000000000a2fb4a1d1a96d312',
  '0000000000000001a2fb4a1d1a96d312',
  'a2fb4a1d1a96d3120',
  '463ac35c9f6413ad48485a3953bb612',
  '463ac35c9f6413ad48485a3953bb6124f',
  'g2fb4a1d1a96d312',
  '',
  'a2fb4a1d1a96d31 ',
];
const WEIRD_VALUES: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1,
  1.5,
  2 ** 53,
  2 ** 53 - 1,
  1e21,
  new Raw('-0'),
  new Raw('1e3'),
  new Raw('1.0'),
  new Raw('1E+15'),
  new Raw('9007199254740993'),
  new Raw('99999999999999999999'),
  new Raw('01'),
  new Raw('+1'),
  new Raw('.5'),
  '',
  'x',
  'UPPER Case',
  'server',
  'SERVER',
  'CLIENT',
  'PRODUCER',
  'consumer',
  new Raw('"a\\"b"'),
  new Raw('"\\u0041B"'),
  new Raw('"\\ud800x"'),
  new Raw('"tab\there"'),
  new Raw('"a\\/b"'),
  'é',
  '\u2028',
  '😀',
  [],
  {},
  [1, { a: [null] }],
  { a: { b: {} } },
  new Pairs([]),
  ...ID_VALUES,
];
const ZIPKIN_ORDER = ['traceId', 'parentId', 'id', 'kind', 'name', 'timestamp', 'duration', 'localEndpoint', 'remoteEndpoint', 'annotations', 'tags', 'debug', 'shared'];
const SPAN_FIELDS = ['traceId', 'id', 'parentId', 'kind', 'name', 'timestamp', 'duration', 'localEndpoint', 'remoteEndpoint', 'annotations', 'tags', 'debug', 'shared'];
const EXTRA_FIELDS = ['extra', '__proto__', 'binaryAnnotations', 'traceID', 'Id', 't', ''];
const IP_VALUES = ['10.0.0.1', '255.255.255.255', '0.0.0.0', '256.1.1.1', '01.2.3.4', '1.2.3', '1.2.3.4.5', '2001:db8::c001', '2001:DB8:0:0:0:0:0:1', '::ffff:10.1.2.3', 'fe80::1%eth0', '::', 'not-an-ip', '', '1.2.3.4 '];
const TAG_KEYS = ['http.method', 'http.route', '__proto__', 'constructor', 'toString', '0', '7', '', 'UPPER', 'error', 'a"b', 'é'];

/** Realistic spans, written as JSON text with random changes of every kind the fast path must notice. */
export function mutatedBodies(seed: number): () => { text: string; label: string } {
  const rand = prng(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T,>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const spans = realisticSpans(60, seed);
  const weird = (): unknown => (int(3) === 0 ? pick(ID_VALUES) : pick(WEIRD_VALUES));
  // An object as Pairs (a copy); anything else as an empty object.
  const pairsOf = (v: unknown): Pairs =>
    new Pairs(v instanceof Pairs ? [...v.entries] : typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Raw) ? Object.entries(v) : []);

  function mutate(span: Pairs): string {
    const entries = span.entries;
    const at = (field: string) => entries.findIndex(([k]) => k === field);
    const choice = int(11);
    const field = pick(SPAN_FIELDS);
    const i = at(field);
    switch (choice) {
      case 0:
        if (i >= 0) entries.splice(i, 1);
        return `delete ${field}`;
      case 1:
        if (i >= 0) entries[i] = [field, weird()];
        else entries.push([field, weird()]);
        return `weird ${field}`;
      case 2: {
        const copy = i >= 0 ? entries[i]![1] : weird();
        entries.splice(int(entries.length + 1), 0, [field, int(2) === 0 ? copy : weird()]);
        return `repeated ${field}`;
      }
      case 3:
        entries.splice(int(entries.length + 1), 0, [pick(EXTRA_FIELDS), weird()]);
        return 'extra field';
      case 4:
        for (let k = entries.length - 1; k > 0; k--) {
          const j = int(k + 1);
          [entries[k], entries[j]] = [entries[j]!, entries[k]!];
        }
        return 'shuffled';
      case 5: {
        const e = at(pick(['localEndpoint', 'remoteEndpoint']));
        if (e < 0) return 'no endpoint';
        const endpoint = pairsOf(entries[e]![1]);
        const key = pick(['serviceName', 'ipv4', 'ipv6', 'port', 'extra']);
        const value = pick([pick(IP_VALUES), pick(IP_VALUES), 0, -1, 65535, 65536, 1.5, null, '', 'UPPER', 'Svc', weird()]);
        if (int(3) === 0) endpoint.entries.push([key, value]);
        else {
          const j = endpoint.entries.findIndex(([k]) => k === key);
          if (j >= 0) endpoint.entries[j] = [key, value];
          else endpoint.entries.unshift([key, value]);
        }
        entries[e] = [entries[e]![0], int(6) === 0 ? null : endpoint];
        return `endpoint ${key}`;
      }
      case 6: {
        const a = at('annotations');
        const old = a < 0 ? undefined : entries[a]![1];
        if (!Array.isArray(old) || old.length === 0) return 'no annotations';
        const list = old.map(pairsOf);
        const which = int(7);
        if (which === 0) list.reverse();
        else if (which === 1) list.splice(1, 0, list[0]!); // a repeat, in order
        else if (which === 2) list.push(new Pairs([['timestamp', list[0]!.entries[0]![1]], ['value', 'a']]));
        else if (which === 3) list[0]!.entries.push([pick(['endpoint', 'value', 'timestamp', 'x']), weird()]);
        else if (which === 4) list[0]!.entries[int(2)]![1] = weird();
        else if (which === 5) list.splice(0, list.length);
        else list.push(weird() as Pairs);
        entries[a] = ['annotations', list];
        return `annotations ${which}`;
      }
      case 7: {
        const t = at('tags');
        if (t < 0) return 'no tags';
        const tags = pairsOf(entries[t]![1]);
        const key = pick(TAG_KEYS);
        const value = pick(['v', '', 'UPPER', 5, null, true, {}, [], new Raw('"a\\nb"'), 'é']);
        tags.entries.splice(int(tags.entries.length + 1), 0, [key, value]);
        entries[t] = ['tags', int(8) === 0 ? new Pairs([]) : tags];
        return `tag ${key}`;
      }
      case 8: {
        const f = pick(['traceId', 'id', 'parentId']);
        const j = at(f);
        if (j >= 0) entries[j] = [f, pick(ID_VALUES)];
        return `id ${f}`;
      }
      case 9: {
        // parentId equal to id: dropped, as Zipkin does.
        const id = entries[at('id')]?.[1];
        entries.splice(0, 0, ['parentId', id]);
        return 'parentId = id';
      }
      default:
        entries.push([pick(['debug', 'shared', 'kind', 'name']), pick([true, false, null, 'true', 1, 'CLIENT', 'Server', 'GET /Api', ''])]);
        return 'flags';
    }
  }

  return () => {
    const count = 1 + int(8);
    const items: unknown[] = [];
    const labels: string[] = [];
    for (let n = 0; n < count; n++) {
      const span = pairsOf(structuredClone(pick(spans)));
      // Half in Zipkin's field order (as Zipkin's and tracehouse's encoders write it).
      if (int(2) === 0) span.entries.sort(([a], [b]) => ZIPKIN_ORDER.indexOf(a) - ZIPKIN_ORDER.indexOf(b));
      const edits = int(4);
      for (let e = 0; e < edits; e++) labels.push(mutate(span));
      items.push(int(30) === 0 ? weird() : span);
    }
    const spaced = int(3) === 0;
    const ws = () => (spaced && int(3) === 0 ? pick([' ', '\n', '\t', '\r\n  ', '  ']) : '');
    let text = write(items, ws);
    const around = int(40);
    if (around === 0) text = ` \n${text}\t `;
    else if (around === 1) text = `${text.slice(0, -1)},]`;
    else if (around === 2) text = `${text}x`;
    else if (around === 3) text = text.slice(0, -1);
    else if (around === 4) text = `${text}]`;
    return { text, label: labels.join(', ') };
  };
}
