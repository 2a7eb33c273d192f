// Zipkin JSON v1 -> v2, following the rules of Zipkin's V1SpanConverter in
// reduced form: core annotations (cs/cr, sr/ss, ms, mr) become kind,
// timestamp, duration and local endpoint; a v1 span carrying both the client
// and server side becomes two v2 spans (the server one `shared`); address
// binary annotations (ca, sa, ma) become the remote endpoint, other binary
// annotations become tags. The v2 objects then go through the same validator
// as JSON v2.
import { SpanRejection } from './results.js';

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const V2_ONLY_FIELDS = ['localEndpoint', 'remoteEndpoint', 'tags', 'kind', 'shared'];

/** True when the first span of the list is Zipkin v1 JSON. */
export function looksLikeJsonV1(list: readonly unknown[]): boolean {
  const first = list.find(isObject);
  if (first === undefined) return false;
  for (const f of V2_ONLY_FIELDS) if (first[f] !== undefined) return false;
  if (first.binaryAnnotations !== undefined) return true;
  const annotations = first.annotations;
  return Array.isArray(annotations) && annotations.some((a) => isObject(a) && a.endpoint !== undefined);
}

interface V2Draft {
  traceId: unknown;
  parentId: unknown;
  id: unknown;
  name: unknown;
  kind?: string;
  timestamp?: unknown;
  duration?: unknown;
  localEndpoint?: unknown;
  remoteEndpoint?: unknown;
  annotations: Obj[];
  tags: Record<string, string>;
  debug?: unknown;
  shared?: boolean;
}

function serviceOf(endpoint: unknown): string | undefined {
  return isObject(endpoint) && typeof endpoint.serviceName === 'string' ? endpoint.serviceName.toLowerCase() : undefined;
}

/** Converts one v1 span into one or two v2 span objects (not yet validated). */
export function v1ToV2(input: unknown): unknown[] {
  if (!isObject(input)) return [input];
  const rawAnnotations = input.annotations ?? [];
  const rawBinary = input.binaryAnnotations ?? [];
  if (!Array.isArray(rawAnnotations)) throw new SpanRejection('bad_annotation', 'annotations is not a list');
  if (!Array.isArray(rawBinary)) throw new SpanRejection('bad_tags', 'binaryAnnotations is not a list');

  const core = new Map<string, Obj>();
  const other: Obj[] = [];
  for (const a of rawAnnotations as unknown[]) {
    if (!isObject(a)) throw new SpanRejection('bad_annotation', 'an annotation is not an object');
    const value = a.value;
    if (value === 'cs' || value === 'cr' || value === 'sr' || value === 'ss' || value === 'ms' || value === 'mr') {
      if (!core.has(value)) core.set(value, a);
    } else {
      other.push(a);
    }
  }

  const base = (): V2Draft => ({
    traceId: input.traceId,
    parentId: input.parentId,
    id: input.id,
    name: input.name,
    annotations: [],
    tags: {},
  });
  const sides: V2Draft[] = [];
  const side = (kind: string, start: Obj | undefined, end: Obj | undefined): void => {
    const d = base();
    d.kind = kind;
    d.localEndpoint = (start ?? end)?.endpoint;
    if (start !== undefined) {
      d.timestamp = start.timestamp;
      if (end !== undefined && typeof end.timestamp === 'number' && typeof start.timestamp === 'number') {
        d.duration = end.timestamp - start.timestamp;
      }
    } else if (end !== undefined) {
      // Only the end was seen: keep it as an event, as Zipkin does.
      d.annotations.push({ timestamp: end.timestamp, value: end.value });
    }
    sides.push(d);
  };
  const cs = core.get('cs');
  const cr = core.get('cr');
  const sr = core.get('sr');
  const ss = core.get('ss');
  if (cs !== undefined || cr !== undefined) side('CLIENT', cs, cr);
  if (sr !== undefined || ss !== undefined) side('SERVER', sr, ss);
  if (core.has('ms')) side('PRODUCER', core.get('ms'), undefined);
  if (core.has('mr')) side('CONSUMER', core.get('mr'), undefined);
  if (sides.length === 0) sides.push(base());
  const first = sides[0]!;
  // The v1 span's own timestamp and duration belong to its first side.
  if (input.timestamp !== undefined && input.timestamp !== null) first.timestamp = input.timestamp;
  if (input.duration !== undefined && input.duration !== null) first.duration = input.duration;
  if (input.debug === true) first.debug = true;
  const server = sides.find((d) => d.kind === 'SERVER');
  if (server !== undefined && sides.length > 1 && sides[0]!.kind === 'CLIENT') {
    server.shared = true;
    server.timestamp = sr?.timestamp;
    server.duration = sr !== undefined && ss !== undefined && typeof sr.timestamp === 'number' && typeof ss.timestamp === 'number' ? ss.timestamp - sr.timestamp : undefined;
  }

  const sideFor = (endpoint: unknown): V2Draft => {
    const service = serviceOf(endpoint);
    return (service !== undefined && sides.find((d) => serviceOf(d.localEndpoint) === service)) || first;
  };
  for (const a of other) {
    const target = sideFor(a.endpoint);
    target.localEndpoint ??= a.endpoint;
    target.annotations.push({ timestamp: a.timestamp, value: a.value });
  }
  for (const b of rawBinary as unknown[]) {
    if (!isObject(b)) throw new SpanRejection('bad_tags', 'a binary annotation is not an object');
    const key = b.key;
    const value = b.value;
    if (typeof key !== 'string') throw new SpanRejection('bad_tags', 'a binary annotation has no key');
    if ((key === 'ca' || key === 'sa' || key === 'ma') && (value === true || value === 1 || value === '1' || value === 'true')) {
      const wanted = key === 'ca' ? 'SERVER' : key === 'sa' ? 'CLIENT' : undefined;
      let target = sides.find((d) => (wanted === undefined ? d.kind === 'PRODUCER' || d.kind === 'CONSUMER' : d.kind === wanted));
      if (target === undefined && first.kind === undefined) {
        // An address alone says which side this is.
        if (wanted !== undefined) first.kind = wanted;
        target = first;
      }
      if (target !== undefined) target.remoteEndpoint = b.endpoint;
      continue;
    }
    const target = sideFor(b.endpoint);
    target.localEndpoint ??= b.endpoint;
    if (typeof value === 'string') target.tags[key] = value;
    else if (typeof value === 'number' || typeof value === 'boolean') target.tags[key] = String(value);
    else throw new SpanRejection('bad_tags', `binary annotation ${JSON.stringify(key)} has a value that is not a string, number or boolean`);
  }
  return sides;
}
