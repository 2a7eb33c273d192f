/**
 * OpenTelemetry `ReadableSpan` -> the Zipkin JSON v2 bytes of that span, in
 * one pass with no intermediate Zipkin object and no intermediate string.
 *
 * The bytes are exactly `Buffer.from(JSON.stringify(new
 * ZipkinSpanConverter(options).convert(span)))`: zipkin-conversion.ts stays
 * the reference, and zipkin-json-encoder.test.ts compares the two on many
 * varied spans. Spans whose tags the reference would reorder or override
 * (attribute keys that are array indexes or repeat a resource tag or a tag
 * the mapping adds) or whose fields have unexpected types take the reference
 * path instead; so do all spans of a resource whose tags hold such keys.
 *
 * Why hand-written: this runs once per span on the host's event loop, and
 * `JSON.stringify` of the converted span then `Buffer.from` was most of the
 * exporter's cost per span. This path costs about 0.35x that one, conversion
 * included (benchmark figures in wire-format.ts), mostly by copying cached
 * bytes (see the caches below).
 */
import { SpanStatusCode, type AttributeValue, type Attributes } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import {
  DEFAULT_RESOURCE_TAG_KEYS,
  DROPPED_ATTRIBUTES_TAG,
  DROPPED_EVENTS_TAG,
  DROPPED_LINKS_TAG,
  KIND,
  MAPPING_TAG_KEYS,
  STATUS_CODE_TAG,
  STATUS_ERROR_TAG,
  ZipkinSpanConverter,
  annotation,
  durationMicros,
  findRemoteCandidate,
  peerSystem,
  hrTimeToMicros,
  isEpochMicros,
  remoteCandidates,
  remoteEndpointFrom,
  resourceView,
  setScopeTags,
  toPort,
  type RemoteCandidate,
  type ZipkinConversionOptions,
} from './zipkin-conversion.js';
import { SLAB_BYTES, type SlabTarget } from './span-buffer.js';

/** 0 for the characters of a lower-case hex id, 1 for any other byte (see #id). */
const NOT_LOWER_HEX = new Uint8Array(256).fill(1);
for (const c of '0123456789abcdef') NOT_LOWER_HEX[c.charCodeAt(0)] = 0;

/** Fresh slabs, never rewritten: what `encode` hands out views of. */
class FreshSlabs implements SlabTarget {
  slab = Buffer.allocUnsafe(SLAB_BYTES);
  tail = 0;

  grow(written: number, bytes: number): void {
    const slab = Buffer.allocUnsafe(Math.max(SLAB_BYTES, 2 * (written + bytes)));
    this.slab.copy(slab, 0, this.tail, this.tail + written);
    this.slab = slab;
    this.tail = 0;
  }
}

/**
 * Most of a span's bytes repeat from span to span: attribute keys, most of
 * their values, span names, peers. Their encodings are kept and copied with
 * one `TypedArray.set` each (about 20 ns whatever the length, where a JS loop
 * costs 2-3 ns a byte on the 2-core VM):
 * - by resource: local endpoint, resource tags (and both with the remote
 *   endpoint of a peer, for spans without events);
 * - by span name and kind: kind, name and the `timestamp` key as one chunk,
 *   and an attribute template (the attributes of a span of that name, which
 *   the next ones mostly repeat), copied a run of matching members at once;
 * - by attribute key: `"key":` and `"key":"value"` for its recent values;
 *   keys are found by following the order of the last span's keys;
 * - by peer (the attribute value a remote endpoint comes from).
 * Bounded: a map is emptied when full, a key whose values keep changing (a
 * URL, an id) stops caching them, long strings are not cached, a template
 * is rebuilt at most MAX_REBUILDS times when spans stop fitting it, and all
 * of it is emptied beyond a byte budget.
 */
const MAX_KEYS = 4096;
const MAX_CACHED_CHARS = 256;
const MAX_CACHED_BYTES = 1024 * 1024;
const MAX_VALUES_PER_KEY = 32;
const MAX_VALUE_CLEARS = 4;
const MAX_NAMES = 1024;

const QUOTE = 0x22;
const COMMA = 0x2c;
const MINUS = 0x2d;
const ZERO = 0x30;
const CLOSE_BRACE = 0x7d;

function ascii(text: string): Uint8Array {
  return Buffer.from(text, 'latin1');
}

/** Tag keys the reference does not keep in insertion order: the mapping's own (overridden or deleted in place)... */
const MAPPING_TAGS: ReadonlySet<string> = new Set([
  ...MAPPING_TAG_KEYS,
  // ...and this one: assigning it to a plain object sets the prototype instead of adding a tag.
  '__proto__',
]);

/** Whether the reference's tags object keeps `key` where it was inserted. */
function keepsOrder(key: string): boolean {
  const first = key.charCodeAt(0);
  // Array-index keys come first in an object whatever the insertion order.
  return !(first >= ZERO && first <= 0x39) && !MAPPING_TAGS.has(key);
}

/** What comes after the span id, up to the name, by `SpanKind` (unknown kinds are written as INTERNAL: no kind). */
const KIND_PREFIXES: readonly Uint8Array[] = [
  ascii('","name":'),
  ascii('","kind":"SERVER","name":'),
  ascii('","kind":"CLIENT","name":'),
  ascii('","kind":"PRODUCER","name":'),
  ascii('","kind":"CONSUMER","name":'),
];
const TRACE_ID = ascii('{"traceId":"');
const PARENT_ID = ascii('","parentId":"');
const ID = ascii('","id":"');
const TIMESTAMP = ascii(',"timestamp":');
const DURATION = ascii(',"duration":');
const PORT = ascii(',"port":');
const ANNOTATIONS = ascii(',"annotations":[');
const ANNOTATION_TIMESTAMP = ascii('{"timestamp":');
const ANNOTATION_VALUE = ascii(',"value":');
const STATUS_OK = ascii(`"${STATUS_CODE_TAG}":"OK"`);
const STATUS_ERROR = ascii(`"${STATUS_CODE_TAG}":"ERROR","${STATUS_ERROR_TAG}":`);
const DROPPED_ATTRIBUTES = ascii(`"${DROPPED_ATTRIBUTES_TAG}":`);
const DROPPED_EVENTS = ascii(`"${DROPPED_EVENTS_TAG}":`);
const DROPPED_LINKS = ascii(`"${DROPPED_LINKS_TAG}":`);

interface EncodedResource {
  /** `,"localEndpoint":{...}` */
  localEndpoint: Uint8Array;
  /** `,"tags":{` and the resource tags as JSON members (`"k":"v","k2":"v2"`). */
  tagsOpen: Uint8Array;
  /** `localEndpoint` and `tagsOpen` together: what spans without a remote endpoint or annotations have there. */
  localAndTags: Uint8Array;
  /** Whether there are resource tags (then the next tag needs a comma). */
  hasTags: boolean;
  tagKeys: ReadonlySet<string>;
  /** False when a resource tag is one the mapping overrides: its spans take the reference path. */
  fused: boolean;
}

interface AttributeKey {
  readonly key: string;
  /** `"key":` */
  readonly name: Uint8Array;
  readonly keepsOrder: boolean;
  /** The caches' generation it belongs to: a chain link to an older one is not followed. */
  readonly generation: number;
  /** The key that followed this one last time (attributes come in the same order span after span). */
  next: AttributeKey | undefined;
  /** The resource `collides` was computed for (one resource per process, normally). */
  resource: EncodedResource | undefined;
  /** The key is also a resource tag, which the attribute overrides in place. */
  collides: boolean;
  /** `"key":"value"` by value; undefined once the key's values kept changing. */
  values: Map<string | number | boolean, Uint8Array> | undefined;
  /** The value last found in `values`, and its bytes: most keys keep one value. */
  lastValue: string | number | boolean | undefined;
  lastBytes: Uint8Array | undefined;
  clears: number;
}

/**
 * The attributes of a span of some name and kind, encoded: the next spans of
 * that name and kind mostly have the same keys in the same order, and most of
 * the same values, so runs of members that match are copied at once.
 */
interface AttributeTemplate {
  /** Collisions with resource tags were checked against this resource only. */
  readonly resource: EncodedResource;
  readonly keys: readonly string[];
  /** A member matches a span's attribute when key and value are identical (`undefined`: never, e.g. an array). */
  readonly values: readonly (string | number | boolean | undefined)[];
  /** Member `i` is `bytes[starts[i], ends[i])`, members are separated by commas. */
  readonly starts: readonly number[];
  readonly ends: readonly number[];
  readonly bytes: Uint8Array;
  /** Views of runs of `bytes` by first member, and where each ends: runs break at the same places span after span. */
  readonly runs: (Uint8Array | undefined)[];
  readonly runEnds: number[];
}

/** The members #attributes wrote, for #learn: key, value (as in a template) and where each starts and ends in the piece. */
interface MemberRecord {
  readonly keys: string[];
  readonly values: (string | number | boolean | undefined)[];
  readonly starts: number[];
  readonly ends: number[];
}

/** A span name's cached bytes (`","kind":"...","name":"...","timestamp":`) and attribute template. */
interface EncodedName {
  readonly bytes: Uint8Array;
  template: AttributeTemplate | undefined;
  /** Spans written with the template since it was built. */
  uses: number;
  /** Spans whose keys departed from the template since it last fit. */
  misses: number;
  /** Templates built after departures; beyond MAX_REBUILDS the name gets no more. */
  rebuilds: number;
}

/** A remote endpoint by the attribute value it comes from. */
interface EncodedRemote {
  /** `,"remoteEndpoint":{...` without the port and the closing brace. */
  readonly open: Uint8Array;
  /** The port attribute's value `bytes` was written for. */
  readonly portValue: AttributeValue | undefined;
  /** The whole member, for that port value. */
  readonly bytes: Uint8Array;
  /** Whether the peer is named by an address only (no system asked for): its system may name it. */
  readonly address: boolean;
  /** Whether it is in the cache (else made for one span, and not worth combining). */
  readonly cached: boolean;
  /** The resource `withTags` was made for. */
  resource: EncodedResource | undefined;
  /** The resource's local endpoint, `bytes`, and the resource's tags opening, as one chunk. */
  withTags: Uint8Array | undefined;
}

/** Remote endpoints cached (by peer address or name). */
const MAX_REMOTES = 1024;

/** An attribute template is built again after this many spans whose keys departed from it... */
const REBUILD_AFTER_MISSES = 4;
/** ...at most this many times per name (a name whose spans never agree gets none)... */
const MAX_REBUILDS = 16;
/** ...and anyway after this many spans, in case it was built from an unusual one (an error status, say). */
const REFRESH_AFTER_USES = 1024;
/** Templates are not built for attributes longer than this (when encoded). */
const MAX_TEMPLATE_BYTES = 4096;

interface EncodedScope {
  name: unknown;
  version: unknown;
  /** `"otel.scope.name":"...","otel.library.name":"...",...` (see setScopeTags), or undefined when neither is set. */
  tags: Uint8Array | undefined;
  fused: boolean;
}

/** Tests only (index.ts does not export it): the bytes of scope tags an encoder keeps. */
export let scopeCacheBytes: (encoder: ZipkinJsonEncoder) => number;

export class ZipkinJsonEncoder {
  static {
    scopeCacheBytes = (encoder) => {
      let bytes = 0;
      for (const scope of encoder.#scopes.values()) bytes += scope.tags?.length ?? 0;
      return bytes;
    };
  }

  readonly #resourceTags: readonly string[] | 'all' | 'none';
  readonly #resources = new WeakMap<Resource, EncodedResource>();
  #lastResource: Resource | undefined;
  #lastEncodedResource: EncodedResource | undefined;
  readonly #keys = new Map<string, AttributeKey>();
  /** Bumped when #keys is emptied: entries of older generations are no longer linked to. */
  #generation = 0;
  /** The key the last span's attributes started with. */
  #firstKey: AttributeKey | undefined;
  /** `","kind":"...","name":"...","timestamp":` by span name, one map per `SpanKind`. */
  readonly #names: Map<string, EncodedName>[] = KIND_PREFIXES.map(() => new Map<string, EncodedName>());
  readonly #remotes = new Map<string, EncodedRemote>();
  readonly #scopes = new Map<unknown, EncodedScope>();
  /** The reference, for the spans the fused path leaves to it. */
  readonly #converter: ZipkinSpanConverter;
  readonly #fresh = new FreshSlabs();
  #target: SlabTarget = this.#fresh;
  /** The target's slab while a piece is written. */
  #slab: Buffer = this.#fresh.slab;
  /** Where the piece being written starts in the slab. */
  #start = 0;
  #pos = 0;
  #referenceSpans = 0;
  /** Bytes held by the key, value, name and remote endpoint caches. */
  #cachedBytes = 0;

  constructor(options: ZipkinConversionOptions = {}) {
    this.#resourceTags = options.resourceTags ?? DEFAULT_RESOURCE_TAG_KEYS;
    this.#converter = new ZipkinSpanConverter(options);
  }

  /** How many spans took the reference path (see the top of this file). */
  get referenceSpans(): number {
    return this.#referenceSpans;
  }

  /**
   * The JSON v2 bytes of `span` (one element of a `ListOfSpans` array,
   * without brackets), as a view of a slab that is never rewritten.
   */
  encode(span: ReadableSpan): Buffer {
    const length = this.write(span, this.#fresh);
    const slab = this.#slab;
    this.#fresh.tail = this.#start + length;
    return Buffer.from(slab.buffer, slab.byteOffset + this.#start, length);
  }

  /**
   * Writes the JSON v2 bytes of `span` at `target.tail` (moving them with
   * `target.grow` if the slab runs out) and returns their length. What the
   * target does with them next (keep them, or write over them) is up to it.
   */
  write(span: ReadableSpan, target: SlabTarget): number {
    this.#target = target;
    this.#slab = target.slab;
    this.#start = target.tail;
    this.#pos = this.#start;
    if (!this.#fused(span)) {
      this.#pos = this.#start;
      this.#referenceSpans++;
      const json = JSON.stringify(this.#converter.convert(span));
      this.#ensure(Buffer.byteLength(json, 'utf8'));
      this.#pos += this.#slab.write(json, this.#pos, 'utf8');
    }
    return this.#pos - this.#start;
  }

  #resource(resource: Resource): EncodedResource {
    if (resource === this.#lastResource) return this.#lastEncodedResource as EncodedResource;
    let encoded = this.#resources.get(resource);
    if (encoded === undefined) {
      const view = resourceView(resource, this.#resourceTags);
      // Built like the reference builds a span's tags, so order and repeats come out the same.
      const tags: Record<string, string> = {};
      for (const [key, value] of view.tags) tags[key] = value;
      const keys = Object.keys(tags);
      const members = JSON.stringify(tags).slice(1, -1);
      const localEndpoint = `,"localEndpoint":${JSON.stringify(view.localEndpoint)}`;
      encoded = {
        localEndpoint: Buffer.from(localEndpoint, 'utf8'),
        tagsOpen: Buffer.from(`,"tags":{${members}`, 'utf8'),
        localAndTags: Buffer.from(`${localEndpoint},"tags":{${members}`, 'utf8'),
        hasTags: members !== '',
        tagKeys: new Set(keys),
        fused: !keys.some((key) => MAPPING_TAGS.has(key)),
      };
      this.#resources.set(resource, encoded);
    }
    this.#lastResource = resource;
    this.#lastEncodedResource = encoded;
    return encoded;
  }

  #scope(name: unknown, version: unknown): EncodedScope {
    let scope = this.#scopes.get(name);
    if (scope !== undefined && scope.version === version) return scope;
    const tags: Record<string, unknown> = {};
    setScopeTags(tags, name, version);
    const json = JSON.stringify(tags);
    scope = {
      name,
      version,
      // Counted against the cache budget: a scope name may be any length.
      tags: json === '{}' ? undefined : this.#cached(Buffer.from(json.slice(1, -1), 'utf8')),
      // A tag value that is not a string would not be written as one.
      // (0, false, NaN: the reference path writes them as text.)
      fused: (name === undefined || name === null || typeof name === 'string') && (version === undefined || version === null || typeof version === 'string'),
    };
    if (this.#scopes.size >= MAX_NAMES) this.#scopes.clear();
    this.#scopes.set(name, scope);
    return scope;
  }

  #key(key: string, resource: EncodedResource): AttributeKey {
    let entry = this.#keys.get(key);
    if (entry === undefined) {
      if (this.#keys.size >= MAX_KEYS) this.#clearKeys();
      entry = {
        key,
        name: this.#cached(Buffer.from(`${JSON.stringify(key)}:`, 'utf8')),
        keepsOrder: keepsOrder(key),
        generation: this.#generation,
        next: undefined,
        resource: undefined,
        collides: false,
        values: new Map(),
        lastValue: undefined,
        lastBytes: undefined,
        clears: 0,
      };
      this.#keys.set(key, entry);
    }
    if (entry.resource !== resource) {
      entry.resource = resource;
      entry.collides = resource.tagKeys.has(key);
    }
    return entry;
  }

  /** Empties the key cache; links to its entries are dropped with it (bounded memory). */
  #clearKeys(): void {
    this.#keys.clear();
    this.#generation++;
    this.#firstKey = undefined;
  }

  /** Writes the span at #pos; false when it must take the reference path (what was written is dropped). */
  #fused(span: ReadableSpan): boolean {
    const context = span.spanContext();
    const resource = this.#resource(span.resource);
    if (!resource.fused) return false;
    const traceId = context.traceId;
    const id = context.spanId;
    const name = span.name;
    const parentId = span.parentSpanContext?.spanId;
    if (typeof traceId !== 'string' || typeof id !== 'string' || typeof name !== 'string') return false;
    if (parentId !== undefined && typeof parentId !== 'string') return false;
    if (traceId.length !== 32 || id.length !== 16) return false;
    if (parentId !== undefined && parentId !== '' && parentId.length !== 16) return false;
    const timestamp = hrTimeToMicros(span.startTime);
    const duration = durationMicros(span);
    // Times the collector reads (at or below 0 as absent); beyond 2^53 it refuses the span.
    if (!Number.isSafeInteger(timestamp) || !Number.isSafeInteger(duration)) return false;
    const scope = this.#scope(span.instrumentationScope.name, span.instrumentationScope.version);
    if (!scope.fused) return false;

    // Strings are opened and closed by the constant around them: `{"traceId":"` ... `","id":"`.
    // Ids as the SDK makes them (lower-case hex, not all zeros); anything else is for the reference path to judge.
    this.#chunk(TRACE_ID);
    if (!this.#id(traceId)) return false;
    if (parentId !== undefined && parentId !== '') {
      this.#chunk(PARENT_ID);
      if (!this.#id(parentId)) return false;
    }
    this.#chunk(ID);
    if (!this.#id(id)) return false;
    const kind = KIND[span.kind];
    const encodedName = this.#nameAndKind(kind === undefined ? 0 : span.kind, name);
    this.#number(timestamp);
    this.#chunk(DURATION);
    this.#number(duration);

    const attributes = span.attributes;
    const candidates = remoteCandidates(kind);
    const events = span.events;
    let tagsAt: number; // relative: #ensure may move the piece to a new slab
    if (events.length === 0) {
      this.#endpoints(resource, candidates, attributes, true);
      tagsAt = this.#pos - this.#start - resource.tagsOpen.length;
    } else {
      this.#endpoints(resource, candidates, attributes, false);
      this.#chunk(ANNOTATIONS);
      for (let i = 0; i < events.length; i++) {
        if (i > 0) this.#byte(COMMA);
        const event = annotation(events[i] as (typeof events)[number]);
        // An empty value (an event named "" without attributes) or a time at or before 0 is left out: the reference path does that.
        if (typeof event.value !== 'string' || event.value === '' || !isEpochMicros(event.timestamp)) return false;
        const value = event.value;
        this.#chunk(ANNOTATION_TIMESTAMP);
        this.#number(event.timestamp);
        this.#chunk(ANNOTATION_VALUE);
        this.#string(value);
        this.#byte(CLOSE_BRACE);
      }
      this.#byte(0x5d); // ]
      tagsAt = this.#pos - this.#start;
      this.#chunk(resource.tagsOpen);
    }

    // Tags in the reference's order: resource tags, attributes, scope, status, dropped counts.
    let empty = !resource.hasTags;
    let written: boolean | undefined;
    if (encodedName === undefined) written = this.#attributes(attributes, resource, empty);
    else {
      const template = encodedName.template;
      if (template !== undefined && template.resource === resource && encodedName.uses < REFRESH_AFTER_USES) {
        written = this.#templated(template, encodedName, attributes, resource, empty);
      } else if (template !== undefined && encodedName.uses >= REFRESH_AFTER_USES) {
        written = this.#learn(encodedName, attributes, resource, empty, false);
      } else if (encodedName.rebuilds < MAX_REBUILDS) {
        written = this.#learn(encodedName, attributes, resource, empty, true);
      } else written = this.#attributes(attributes, resource, empty);
    }
    if (written === undefined) return false;
    empty = written;
    if (scope.tags !== undefined) {
      if (!empty) this.#byte(COMMA);
      empty = false;
      this.#chunk(scope.tags);
    }
    const status = span.status;
    if (status.code === SpanStatusCode.OK) {
      if (!empty) this.#byte(COMMA);
      empty = false;
      this.#chunk(STATUS_OK);
    } else if (status.code === SpanStatusCode.ERROR) {
      const message = status.message ?? '';
      if (typeof message !== 'string') return false;
      if (!empty) this.#byte(COMMA);
      empty = false;
      this.#chunk(STATUS_ERROR);
      this.#string(message);
    }
    if (span.droppedAttributesCount > 0) {
      if (!empty) this.#byte(COMMA);
      empty = false;
      this.#chunk(DROPPED_ATTRIBUTES);
      this.#quotedNumber(span.droppedAttributesCount);
    }
    if (span.droppedEventsCount > 0) {
      if (!empty) this.#byte(COMMA);
      empty = false;
      this.#chunk(DROPPED_EVENTS);
      this.#quotedNumber(span.droppedEventsCount);
    }
    if (span.droppedLinksCount > 0) {
      if (!empty) this.#byte(COMMA);
      empty = false;
      this.#chunk(DROPPED_LINKS);
      this.#quotedNumber(span.droppedLinksCount);
    }
    if (empty) this.#pos = this.#start + tagsAt; // no tags: the field is left out
    else this.#byte(CLOSE_BRACE);
    this.#byte(CLOSE_BRACE);
    return true;
  }

  /** The entry of attribute key `key`: the one that followed `previous` last time, else from the map. */
  #follow(previous: AttributeKey | undefined, key: string, resource: EncodedResource): AttributeKey {
    const predicted = previous === undefined ? this.#firstKey : previous.next;
    if (predicted !== undefined && predicted.key === key && predicted.generation === this.#generation) {
      if (predicted.resource !== resource) {
        predicted.resource = resource;
        predicted.collides = resource.tagKeys.has(key);
      }
      return predicted;
    }
    const entry = this.#key(key, resource);
    if (previous === undefined) this.#firstKey = entry;
    else if (previous.generation === this.#generation) previous.next = entry;
    return entry;
  }

  /**
   * The span's attributes as tag members, one by one (after a comma unless
   * `empty`), each also noted in `record` when given. Returns whether the
   * tags are still empty, or undefined when the span must take the reference
   * path.
   */
  #attributes(
    attributes: Attributes,
    resource: EncodedResource,
    empty: boolean,
    record?: MemberRecord,
  ): boolean | undefined {
    let previous: AttributeKey | undefined;
    for (const key in attributes) {
      const value = attributes[key];
      if (value === undefined || value === null) continue;
      const entry = this.#follow(previous, key, resource);
      previous = entry;
      if (!entry.keepsOrder || entry.collides) return undefined;
      if (!empty) this.#byte(COMMA);
      empty = false;
      const at = this.#pos - this.#start;
      if (!this.#attribute(entry, value)) return undefined;
      if (record !== undefined) {
        record.keys.push(key);
        record.values.push(typeof value === 'object' ? undefined : value);
        record.starts.push(at);
        record.ends.push(this.#pos - this.#start);
      }
    }
    return empty;
  }

  /** As #attributes, and builds the name's template from what it writes. */
  #learn(
    name: EncodedName,
    attributes: Attributes,
    resource: EncodedResource,
    empty: boolean,
    rebuild: boolean,
  ): boolean | undefined {
    const record: MemberRecord = { keys: [], values: [], starts: [], ends: [] };
    const written = this.#attributes(attributes, resource, empty, record);
    if (written === undefined) return undefined;
    const { keys, values, starts, ends } = record;
    const from = starts[0] ?? 0;
    const to = ends[ends.length - 1] ?? 0;
    name.template =
      to - from > MAX_TEMPLATE_BYTES
        ? undefined
        : {
            resource,
            keys,
            values,
            starts: starts.map((start) => start - from),
            ends: ends.map((end) => end - from),
            bytes: this.#cached(this.#copy(from, to)),
            runs: [],
            runEnds: [],
          };
    name.uses = 0;
    name.misses = 0;
    if (rebuild) name.rebuilds++;
    return written;
  }

  /**
   * As #attributes, copying each run of attributes that match the template's
   * members (same key, same value, same order) at once; from the first key
   * the template does not have there on, one by one.
   */
  #templated(
    template: AttributeTemplate,
    name: EncodedName,
    attributes: Attributes,
    resource: EncodedResource,
    empty: boolean,
  ): boolean | undefined {
    name.uses++;
    const keys = template.keys;
    const values = template.values;
    const count = keys.length;
    let t = 0; // the template member the next attribute is compared with
    let runFrom = -1; // the first member of the current run of matches
    let departed = false;
    let previous: AttributeKey | undefined;
    for (const key in attributes) {
      const value = attributes[key];
      if (value === undefined || value === null) continue;
      const same = t < count && key === keys[t];
      if (same && value === values[t]) {
        if (runFrom < 0) runFrom = t;
        t++;
        continue;
      }
      if (runFrom >= 0) {
        if (!empty) this.#byte(COMMA);
        empty = false;
        this.#run(template, runFrom, t - 1);
        runFrom = -1;
      }
      if (same) t++;
      else {
        t = count;
        departed = true;
      }
      const entry = this.#follow(previous, key, resource);
      previous = entry;
      if (!entry.keepsOrder || entry.collides) return undefined;
      if (!empty) this.#byte(COMMA);
      empty = false;
      if (!this.#attribute(entry, value)) return undefined;
    }
    if (runFrom >= 0) {
      if (!empty) this.#byte(COMMA);
      empty = false;
      this.#run(template, runFrom, t - 1);
    }
    if (departed || t < count) {
      if (++name.misses >= REBUILD_AFTER_MISSES) name.template = undefined;
    } else name.misses = 0;
    return empty;
  }

  /**
   * `","kind":"...","name":"...","timestamp":` (the kind only for kinds that
   * have one), from the cache when seen before: one copy for three fields.
   * Returns the cache entry (undefined for names too long to cache).
   */
  #nameAndKind(kind: number, name: string): EncodedName | undefined {
    const names = this.#names[kind] as Map<string, EncodedName>;
    const cached = names.get(name);
    if (cached !== undefined) {
      this.#chunk(cached.bytes);
      return cached;
    }
    const at = this.#pos - this.#start;
    this.#chunk(KIND_PREFIXES[kind] as Uint8Array);
    this.#string(name);
    this.#chunk(TIMESTAMP);
    if (name.length > MAX_CACHED_CHARS) return undefined;
    if (names.size >= MAX_NAMES) names.clear();
    const entry: EncodedName = { bytes: this.#cached(this.#copy(at)), template: undefined, uses: 0, misses: 0, rebuilds: 0 };
    names.set(name, entry);
    return entry;
  }

  /**
   * `,"localEndpoint":{...}`, then `,"remoteEndpoint":{...}` when the span
   * has one, then with `withTags` the tags' opening and the resource tags.
   * For most spans that is one cached chunk: the remote endpoint is cached by
   * the attribute value it comes from (peers repeat), with the port written
   * apart when it is not the cached one (a caller's ephemeral port).
   */
  #endpoints(
    resource: EncodedResource,
    candidates: readonly RemoteCandidate[] | undefined,
    attributes: Attributes,
    withTags: boolean,
  ): void {
    const found = candidates === undefined ? undefined : findRemoteCandidate(candidates, attributes);
    let remote: EncodedRemote | undefined;
    let portValue: AttributeValue | undefined;
    if (found !== undefined) {
      portValue = found.portValue;
      remote = this.#remote(found.value, portValue, undefined);
      // An address alone: named by the peer's system when the span says it (see peerSystem).
      if (remote.address) {
        const system = peerSystem(candidates as readonly RemoteCandidate[], attributes);
        if (system !== undefined) remote = this.#remote(found.value, portValue, system);
      }
    } else if (candidates !== undefined) {
      const system = peerSystem(candidates, attributes);
      if (system !== undefined) remote = this.#remote('', undefined, system);
    }
    if (remote === undefined) {
      this.#chunk(withTags ? resource.localAndTags : resource.localEndpoint);
      return;
    }
    if (portValue === remote.portValue) {
      if (withTags && remote.cached) {
        if (remote.resource !== resource) {
          remote.resource = resource;
          remote.withTags = this.#cached(Buffer.concat([resource.localEndpoint, remote.bytes, resource.tagsOpen]));
        }
        this.#chunk(remote.withTags as Uint8Array);
        return;
      }
      this.#chunk(resource.localEndpoint);
      this.#chunk(remote.bytes);
    } else {
      this.#chunk(resource.localEndpoint);
      this.#chunk(remote.open);
      const port = toPort(portValue);
      if (port !== undefined) {
        this.#chunk(PORT);
        this.#number(port);
      }
      this.#byte(CLOSE_BRACE);
    }
    if (withTags) this.#chunk(resource.tagsOpen);
  }

  /**
   * The remote endpoint of peer `value` (the first remote candidate's value, '' for none) named
   * by `system` when that is given, from the cache when seen before.
   */
  #remote(value: string, portValue: AttributeValue | undefined, system: string | undefined): EncodedRemote {
    const key = system === undefined ? value : `${system}\u0000${value}`;
    let remote = this.#remotes.get(key);
    if (remote === undefined) {
      const endpoint = remoteEndpointFrom(value, undefined, system);
      const open = JSON.stringify(endpoint).slice(0, -1);
      const json = JSON.stringify(remoteEndpointFrom(value, portValue, system));
      const cached = key.length <= MAX_CACHED_CHARS;
      remote = {
        open: Buffer.from(`,"remoteEndpoint":${open}`, 'utf8'),
        portValue,
        bytes: Buffer.from(`,"remoteEndpoint":${json}`, 'utf8'),
        address: value !== '' && system === undefined && endpoint.serviceName === undefined,
        cached,
        resource: undefined,
        withTags: undefined,
      };
      if (cached) {
        if (this.#remotes.size >= MAX_REMOTES) this.#remotes.clear();
        this.#remotes.set(key, remote);
        this.#cached(remote.open);
        this.#cached(remote.bytes);
      }
    }
    return remote;
  }

  /** `"key":"value"` as `attributeToTag` stringifies the value; false for values the reference path must handle. */
  #attribute(entry: AttributeKey, value: AttributeValue): boolean {
    if (value === entry.lastValue) {
      this.#chunk(entry.lastBytes as Uint8Array);
      return true;
    }
    const values = entry.values;
    const primitive = typeof value === 'object' ? undefined : value;
    const cacheable =
      values !== undefined &&
      primitive !== undefined &&
      (typeof primitive !== 'string' || primitive.length <= MAX_CACHED_CHARS);
    if (cacheable) {
      const cached = values.get(primitive);
      if (cached !== undefined) {
        entry.lastValue = primitive;
        entry.lastBytes = cached;
        this.#chunk(cached);
        return true;
      }
    }
    const at = this.#pos - this.#start;
    this.#chunk(entry.name);
    if (typeof value === 'string') this.#string(value);
    else if (typeof value === 'number') this.#quotedNumber(value);
    else if (typeof value === 'boolean') this.#string(value ? 'true' : 'false');
    else if (Array.isArray(value)) this.#string(JSON.stringify(value));
    else return false;
    if (cacheable) {
      if (values.size >= MAX_VALUES_PER_KEY) {
        values.clear();
        if (++entry.clears >= MAX_VALUE_CLEARS) {
          entry.values = undefined;
          return true;
        }
      }
      const bytes = this.#cached(this.#copy(at));
      values.set(primitive, bytes);
      entry.lastValue = primitive;
      entry.lastBytes = bytes;
    }
    return true;
  }

  /** A number as a tag value: the JSON string of `String(value)`, as `attributeToTag` makes it. */
  #quotedNumber(value: number): void {
    if (Number.isSafeInteger(value)) {
      this.#ensure(20);
      this.#slab[this.#pos++] = QUOTE;
      if (value < 0) {
        this.#slab[this.#pos++] = MINUS;
        this.#unsigned(-value);
      } else this.#unsigned(value);
      this.#slab[this.#pos++] = QUOTE;
    } else this.#string(String(value));
  }

  /** Counts `bytes` against the cache budget; beyond it, the caches start over. */
  #cached(bytes: Uint8Array): Uint8Array {
    this.#cachedBytes += bytes.length;
    if (this.#cachedBytes > MAX_CACHED_BYTES) {
      this.#clearKeys();
      for (const names of this.#names) names.clear();
      this.#remotes.clear();
      this.#scopes.clear();
      this.#cachedBytes = bytes.length;
    }
    return bytes;
  }

  /** A copy, to keep, of what this piece holds from `at` to `end` (relative to its start; default: all written). */
  #copy(at: number, end = this.#pos - this.#start): Uint8Array {
    return new Uint8Array(this.#slab.buffer, this.#slab.byteOffset + this.#start + at, end - at).slice();
  }

  /** Template members `first` to `last`, with the commas between them. */
  #run(template: AttributeTemplate, first: number, last: number): void {
    const end = template.ends[last] as number;
    let run = template.runs[first];
    if (run === undefined || template.runEnds[first] !== end) {
      run = template.bytes.subarray(template.starts[first], end);
      template.runs[first] = run;
      template.runEnds[first] = end;
    }
    this.#chunk(run);
  }

  #ensure(bytes: number): void {
    if (this.#pos + bytes <= this.#slab.length) return;
    // The target moves what this piece has so far to a slab with room.
    const written = this.#pos - this.#start;
    const target = this.#target;
    target.grow(written, bytes);
    this.#slab = target.slab;
    this.#start = target.tail;
    this.#pos = this.#start + written;
  }

  #byte(byte: number): void {
    this.#ensure(1);
    this.#slab[this.#pos++] = byte;
  }

  /** Constant or cached bytes: one `TypedArray.set` (about as cheap as a JS loop over 8 bytes, cheaper beyond). */
  #chunk(bytes: Uint8Array): void {
    this.#ensure(bytes.length);
    this.#slab.set(bytes, this.#pos);
    this.#pos += bytes.length;
  }

  /**
   * A JSON string. Printable ASCII without `"` or `\` is copied char by char
   * (measured on span-like strings: cheaper than a regex check plus
   * `latin1Write`, or `JSON.stringify` plus `utf8Write`); anything else is
   * left to JSON.stringify, which escapes it as the reference does.
   */
  #string(text: string): void {
    this.#byte(QUOTE);
    this.#chars(text);
    this.#byte(QUOTE);
  }

  /**
   * Writes an id, checking on the way that it is lower-case hex and not all
   * zeros: the check rides on the copy's loop (a separate pass over the 64
   * characters of a span's ids cost about 10% of the span's encoding).
   */
  #id(text: string): boolean {
    const length = text.length;
    this.#ensure(length);
    const slab = this.#slab;
    let pos = this.#pos;
    let bad = 0;
    let nonZero = 0;
    for (let i = 0; i < length; i++) {
      const c = text.charCodeAt(i);
      bad |= (NOT_LOWER_HEX[c & 0xff] as number) | (c >>> 8);
      nonZero |= c ^ 0x30;
      slab[pos++] = c;
    }
    this.#pos = pos;
    return bad === 0 && nonZero !== 0;
  }

  /** The inside of a JSON string (the quotes are written by the caller). */
  #chars(text: string): void {
    const length = text.length;
    this.#ensure(length);
    const slab = this.#slab;
    let pos = this.#pos;
    for (let i = 0; i < length; i++) {
      const c = text.charCodeAt(i);
      if (c < 0x20 || c >= 0x80 || c === QUOTE || c === 0x5c) {
        this.#escaped(text);
        return;
      }
      slab[pos++] = c;
    }
    this.#pos = pos;
  }

  #escaped(text: string): void {
    const json = JSON.stringify(text);
    this.#ensure(3 * json.length); // UTF-8 needs at most 3 bytes per UTF-16 unit
    // Without the quotes: the caller writes them.
    this.#pos += this.#slab.write(json.slice(1, -1), this.#pos, 'utf8');
  }

  /** A JSON number as JSON.stringify writes it. */
  #number(value: number): void {
    if (Number.isSafeInteger(value) && value >= 0) {
      this.#ensure(16);
      this.#unsigned(value);
    } else {
      const text = JSON.stringify(value); // also non-finite as null, as the reference
      this.#ensure(text.length);
      for (let i = 0; i < text.length; i++) this.#slab[this.#pos++] = text.charCodeAt(i);
    }
  }

  /** Digits of a safe integer >= 0 (room for 16 already ensured). */
  #unsigned(value: number): void {
    if (value < 1e8) {
      this.#digits(value);
      return;
    }
    // Epoch microseconds have 16 digits: two int32 halves instead of double division.
    const high = Math.floor(value / 1e8);
    let low = value - high * 1e8;
    this.#digits(high);
    const slab = this.#slab;
    const end = this.#pos + 8;
    for (let pos = end - 1; pos >= this.#pos; pos--) {
      const next = (low / 10) | 0;
      slab[pos] = ZERO + low - next * 10;
      low = next;
    }
    this.#pos = end;
  }

  /** Digits of an integer in [0, 1e8). */
  #digits(value: number): void {
    let n = value | 0;
    let length = 1;
    for (let rest = n; rest >= 10; rest = (rest / 10) | 0) length++;
    const slab = this.#slab;
    const end = this.#pos + length;
    for (let pos = end - 1; pos >= this.#pos; pos--) {
      const next = (n / 10) | 0;
      slab[pos] = ZERO + n - next * 10;
      n = next;
    }
    this.#pos = end;
  }
}
