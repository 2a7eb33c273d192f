// Zipkin JSON v1 -> v2, following the rules of Zipkin's V1SpanConverter in
// reduced form: core annotations (cs/cr, sr/ss, ms, mr) become kind,
// timestamp, duration and local endpoint; a v1 span carrying both the client
// and server side becomes two v2 spans (the server one `shared`); address
// binary annotations (ca, sa, ma) become the remote endpoint, other binary
// annotations become tags. The v2 objects then go through the same validator
// as JSON v2.
import { rejectSpan } from './results.js';
import { setTag } from './set-tag.js';

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

function sameEndpoint(a: unknown, b: unknown): boolean {
  if (!isObject(a) || !isObject(b)) return false;
  return serviceOf(a) === serviceOf(b) && a.ipv4 === b.ipv4 && a.ipv6 === b.ipv6 && a.port === b.port;
}

/** Converts one v1 span into one or two v2 span objects (not yet validated). */
export function v1ToV2(input: unknown): unknown[] {
  if (!isObject(input)) return [input];
  const rawAnnotations = input.annotations ?? [];
  const rawBinary = input.binaryAnnotations ?? [];
  if (!Array.isArray(rawAnnotations)) rejectSpan('bad_annotation', 'annotations is not a list');
  if (!Array.isArray(rawBinary)) rejectSpan('bad_tags', 'binaryAnnotations is not a list');

  const core = new Map<string, Obj>();
  const other: Obj[] = [];
  for (const a of rawAnnotations as unknown[]) {
    if (!isObject(a)) rejectSpan('bad_annotation', 'an annotation is not an object');
    const value = a.value;
    // A core annotation without an endpoint gets no special treatment (Zipkin).
    const isCore = value === 'cs' || value === 'cr' || value === 'sr' || value === 'ss' || value === 'ms' || value === 'mr';
    if (isCore && isObject(a.endpoint)) {
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
  const ms = core.get('ms');
  const mr = core.get('mr');
  // For messaging, "ws" after "ms" ends the producer side and "wr" before
  // "mr" starts the consumer side (Zipkin's converter); for RPC they stay
  // ordinary events.
  const ws = ms === undefined ? undefined : other.find((a) => a.value === 'ws' && serviceOf(a.endpoint) === serviceOf(ms.endpoint));
  const wr = mr === undefined ? undefined : other.find((a) => a.value === 'wr' && serviceOf(a.endpoint) === serviceOf(mr.endpoint));
  if (cs !== undefined || cr !== undefined) side('CLIENT', cs, cr);
  if (sr !== undefined || ss !== undefined) side('SERVER', sr, ss);
  if (ms !== undefined) side('PRODUCER', ms, ws);
  if (mr !== undefined) side('CONSUMER', wr ?? mr, wr === undefined ? undefined : mr);
  const events = other.filter((a) => a !== ws && a !== wr);
  if (sides.length === 0) sides.push(base());
  const first = sides[0]!;
  // The v1 span's own timestamp and duration belong to its first side.
  if (input.timestamp !== undefined && input.timestamp !== null) first.timestamp = input.timestamp;
  if (input.duration !== undefined && input.duration !== null) first.duration = input.duration;
  if (input.debug === true) first.debug = true;
  if (sides.length > 1) {
    // One v1 span holding both sides of an RPC (or messaging hop): the
    // second side shares the first one's id; its timing came from its own
    // annotations above.
    sides[1]!.shared = true;
  } else if (first.kind === 'SERVER' && (input.timestamp === undefined || input.timestamp === null)) {
    // v1 could not say "shared"; a server side without the span timestamp
    // is taken as joining a client's span, as Zipkin does.
    first.shared = true;
  }

  // Data of an endpoint no side has yet goes to the first side if that has
  // no endpoint, else to a new span of its own; data without an endpoint
  // goes to the first side (Zipkin: dataMissingEndpointGoesOnFirstSpan).
  // The first side of each service, kept as sides are added or take an endpoint: a message of
  // many annotations with as many services must not search every side for each (quadratic).
  const sideOfService = new Map<string, V2Draft>();
  const indexSide = (d: V2Draft): void => {
    const service = serviceOf(d.localEndpoint);
    if (service !== undefined && !sideOfService.has(service)) sideOfService.set(service, d);
  };
  sides.forEach(indexSide);
  const sideFor = (endpoint: unknown): V2Draft => {
    const service = serviceOf(endpoint);
    if (service === undefined) return first;
    const match = sideOfService.get(service);
    if (match !== undefined) return match;
    if (first.localEndpoint === undefined) return first;
    const extra = base();
    extra.localEndpoint = endpoint;
    sides.push(extra);
    indexSide(extra);
    return extra;
  };
  /** Data of `endpoint` goes to its side, which takes the endpoint when it has none yet. */
  const targetFor = (endpoint: unknown): V2Draft => {
    const target = sideFor(endpoint);
    if (target.localEndpoint === undefined || target.localEndpoint === null) {
      target.localEndpoint = endpoint;
      indexSide(target);
    }
    return target;
  };
  for (const a of events) {
    const target = targetFor(a.endpoint);
    target.annotations.push({ timestamp: a.timestamp, value: a.value });
  }
  const addresses = new Map<string, unknown>();
  for (const b of rawBinary as unknown[]) {
    if (!isObject(b)) rejectSpan('bad_tags', 'a binary annotation is not an object');
    const key = b.key;
    const value = b.value;
    if (typeof key !== 'string') rejectSpan('bad_tags', 'a binary annotation has no key');
    if ((key === 'ca' || key === 'sa' || key === 'ma') && (value === true || value === 1 || value === '1' || value === 'true')) {
      if (isObject(b.endpoint)) addresses.set(key, b.endpoint);
      continue;
    }
    const target = targetFor(b.endpoint);
    // An empty local-component tag only says where a local span ran.
    if (key === 'lc' && value === '') continue;
    if (typeof value === 'string') setTag(target.tags, key, value);
    else if (typeof value === 'number' || typeof value === 'boolean') setTag(target.tags, key, String(value));
    else rejectSpan('bad_tags', `binary annotation ${JSON.stringify(key)} has a value that is not a string, number or boolean`);
  }
  const ca = addresses.get('ca');
  const sa = addresses.get('sa');
  const ma = addresses.get('ma');
  if (first.kind === undefined && sides.length === 1 && ca !== undefined && sa !== undefined) {
    // Addresses of both ends and no core annotation: no kind can be told.
    first.localEndpoint ??= ca;
    if (!sameEndpoint(first.localEndpoint, sa)) first.remoteEndpoint = sa;
  } else {
    for (const [key, endpoint] of [['ca', ca], ['sa', sa], ['ma', ma]] as const) {
      if (endpoint === undefined) continue;
      const wanted = key === 'ca' ? ['SERVER'] : key === 'sa' ? ['CLIENT'] : ['PRODUCER', 'CONSUMER'];
      const matching = sides.filter((d) => d.kind !== undefined && wanted.includes(d.kind));
      if (matching.length === 0 && first.kind === undefined && key !== 'ma') {
        // An address alone says which side this is (a late flush).
        first.kind = wanted[0];
        matching.push(first);
      }
      for (const d of matching) {
        // An address equal to the local endpoint is redundant.
        if (!sameEndpoint(d.localEndpoint, endpoint)) d.remoteEndpoint = endpoint;
      }
    }
  }
  return sides;
}
