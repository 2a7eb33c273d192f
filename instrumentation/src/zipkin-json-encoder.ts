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
 * exporter's cost per span. This path costs about 0.5x that one, conversion
 * included (benchmark figures in wire-format.ts).
 */
import { SpanStatusCode, type AttributeValue } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { Endpoint } from '@tracehouse/model';
import {
  DEFAULT_RESOURCE_TAG_KEYS,
  DROPPED_ATTRIBUTES_TAG,
  DROPPED_EVENTS_TAG,
  DROPPED_LINKS_TAG,
  KIND,
  SCOPE_NAME_TAG,
  SCOPE_VERSION_TAG,
  STATUS_CODE_TAG,
  STATUS_ERROR_TAG,
  ZipkinSpanConverter,
  annotation,
  hrTimeToMicros,
  remoteEndpointOf,
  resourceView,
  type ZipkinConversionOptions,
} from './zipkin-conversion.js';

/** Size of the slabs pieces are written into (here and in span-buffer.ts). */
export const SLAB_BYTES = 64 * 1024;

/**
 * Where `write` puts a span's bytes: at `tail` in `slab`. A piece that
 * outgrows the slab is moved by `grow` to a slab with room for `bytes` more
 * after the `written` bytes it carries over (`slab` and `tail` then name the
 * new place). The exporter's SpanBuffer is one: it recycles its slabs.
 */
export interface SlabTarget {
  readonly slab: Buffer;
  readonly tail: number;
  grow(written: number, bytes: number): void;
}

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
 * their values, span names. Their encodings are kept and copied with one
 * `TypedArray.set` each (measured on the benchmark's keys and values: 30-50%
 * less than encoding them char by char again). Bounded: a map is emptied when
 * full, a key whose values keep changing (a URL, an id) stops caching them,
 * long strings are not cached, and all of it is emptied beyond a byte budget.
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

/** Tags the mapping itself adds: an attribute with one of these keys is overridden (or deleted) in place. */
const MAPPING_TAGS: ReadonlySet<string> = new Set([
  STATUS_CODE_TAG,
  STATUS_ERROR_TAG,
  SCOPE_NAME_TAG,
  SCOPE_VERSION_TAG,
  DROPPED_ATTRIBUTES_TAG,
  DROPPED_EVENTS_TAG,
  DROPPED_LINKS_TAG,
  // Assigning it to a plain object sets the prototype instead of adding a tag.
  '__proto__',
]);

/** Whether the reference's tags object keeps `key` where it was inserted. */
function keepsOrder(key: string): boolean {
  const first = key.charCodeAt(0);
  // Array-index keys come first in an object whatever the insertion order.
  return !(first >= ZERO && first <= 0x39) && !MAPPING_TAGS.has(key);
}

const KIND_BYTES: Readonly<Record<string, Uint8Array>> = {
  SERVER: ascii('","kind":"SERVER","name":'),
  CLIENT: ascii('","kind":"CLIENT","name":'),
  PRODUCER: ascii('","kind":"PRODUCER","name":'),
  CONSUMER: ascii('","kind":"CONSUMER","name":'),
};
const NO_KIND = ascii('","name":');
const TRACE_ID = ascii('{"traceId":"');
const PARENT_ID = ascii('","parentId":"');
const ID = ascii('","id":"');
const TIMESTAMP = ascii(',"timestamp":');
const DURATION = ascii(',"duration":');
const REMOTE_ENDPOINT = ascii(',"remoteEndpoint":{');
const SERVICE_NAME = ascii('"serviceName":');
const IPV4 = ascii('"ipv4":');
const IPV6 = ascii('"ipv6":');
const PORT = ascii('"port":');
const ANNOTATIONS = ascii(',"annotations":[');
const ANNOTATION_TIMESTAMP = ascii('{"timestamp":');
const ANNOTATION_VALUE = ascii(',"value":');
const TAGS = ascii(',"tags":{');
const STATUS_OK = ascii(`"${STATUS_CODE_TAG}":"OK"`);
const STATUS_ERROR = ascii(`"${STATUS_CODE_TAG}":"ERROR","${STATUS_ERROR_TAG}":`);
const DROPPED_ATTRIBUTES = ascii(`"${DROPPED_ATTRIBUTES_TAG}":`);
const DROPPED_EVENTS = ascii(`"${DROPPED_EVENTS_TAG}":`);
const DROPPED_LINKS = ascii(`"${DROPPED_LINKS_TAG}":`);

interface EncodedResource {
  /** `,"localEndpoint":{...}` */
  localEndpoint: Uint8Array;
  /** The resource tags as JSON members (`"k":"v","k2":"v2"`), empty when none. */
  tags: Uint8Array;
  tagKeys: ReadonlySet<string>;
  /** False when a resource tag is one the mapping overrides: its spans take the reference path. */
  fused: boolean;
}

interface AttributeKey {
  /** `"key":` */
  name: Uint8Array;
  keepsOrder: boolean;
  /** The resource `collides` was computed for (one resource per process, normally). */
  resource: EncodedResource | undefined;
  /** The key is also a resource tag, which the attribute overrides in place. */
  collides: boolean;
  /** `"key":"value"` by value; undefined once the key's values kept changing. */
  values: Map<string | number | boolean, Uint8Array> | undefined;
  clears: number;
}

interface EncodedScope {
  name: unknown;
  version: unknown;
  /** `"otel.scope.name":"...","otel.scope.version":"..."`, or undefined when neither is set. */
  tags: Uint8Array | undefined;
  fused: boolean;
}

export class ZipkinJsonEncoder {
  readonly #resourceTags: readonly string[] | 'all' | 'none';
  readonly #resources = new WeakMap<Resource, EncodedResource>();
  #lastResource: Resource | undefined;
  #lastEncodedResource: EncodedResource | undefined;
  readonly #keys = new Map<string, AttributeKey>();
  /** `"name"` of span names, by name. */
  readonly #names = new Map<string, Uint8Array>();
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
  /** Bytes held by the key, value and name caches. */
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
      encoded = {
        localEndpoint: Buffer.from(`,"localEndpoint":${JSON.stringify(view.localEndpoint)}`, 'utf8'),
        tags: Buffer.from(JSON.stringify(tags).slice(1, -1), 'utf8'),
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
    if (name) tags[SCOPE_NAME_TAG] = name;
    if (version) tags[SCOPE_VERSION_TAG] = version;
    const json = JSON.stringify(tags);
    scope = {
      name,
      version,
      tags: json === '{}' ? undefined : Buffer.from(json.slice(1, -1), 'utf8'),
      // A tag value that is not a string would not be written as one.
      fused: (!name || typeof name === 'string') && (!version || typeof version === 'string'),
    };
    if (this.#scopes.size >= MAX_NAMES) this.#scopes.clear();
    this.#scopes.set(name, scope);
    return scope;
  }

  #key(key: string, resource: EncodedResource): AttributeKey {
    let entry = this.#keys.get(key);
    if (entry === undefined) {
      if (this.#keys.size >= MAX_KEYS) this.#keys.clear();
      entry = {
        name: this.#cached(Buffer.from(`${JSON.stringify(key)}:`, 'utf8')),
        keepsOrder: keepsOrder(key),
        resource: undefined,
        collides: false,
        values: new Map(),
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
    const scope = this.#scope(span.instrumentationScope.name, span.instrumentationScope.version);
    if (!scope.fused) return false;

    // Strings are opened and closed by the constant around them: `{"traceId":"` ... `","id":"`.
    this.#raw(TRACE_ID);
    this.#chars(traceId);
    if (parentId !== undefined && parentId !== '') {
      this.#raw(PARENT_ID);
      this.#chars(parentId);
    }
    this.#raw(ID);
    this.#chars(id);
    const kind = KIND[span.kind];
    this.#raw(kind === undefined ? NO_KIND : (KIND_BYTES[kind] as Uint8Array));
    this.#name(name);
    this.#raw(TIMESTAMP);
    this.#number(hrTimeToMicros(span.startTime));
    this.#raw(DURATION);
    // As the reference: whole microseconds, at least 1.
    this.#number(Math.max(1, hrTimeToMicros(span.duration)));
    this.#chunk(resource.localEndpoint);

    const attributes = span.attributes;
    const remote = remoteEndpointOf(kind, attributes);
    if (remote !== undefined) this.#endpoint(remote);

    const events = span.events;
    if (events.length > 0) {
      this.#raw(ANNOTATIONS);
      for (let i = 0; i < events.length; i++) {
        if (i > 0) this.#byte(COMMA);
        const { timestamp, value } = annotation(events[i] as (typeof events)[number]);
        if (typeof value !== 'string') return false;
        this.#raw(ANNOTATION_TIMESTAMP);
        this.#number(timestamp);
        this.#raw(ANNOTATION_VALUE);
        this.#string(value);
        this.#byte(CLOSE_BRACE);
      }
      this.#byte(0x5d); // ]
    }

    // Tags in the reference's order: resource tags, attributes, scope, status, dropped counts.
    const tagsAt = this.#pos - this.#start; // relative: #ensure may move the piece to a new slab
    this.#raw(TAGS);
    let empty = resource.tags.length === 0;
    if (!empty) this.#chunk(resource.tags);
    for (const key in attributes) {
      const value = attributes[key];
      if (value === undefined || value === null) continue;
      const entry = this.#key(key, resource);
      if (!entry.keepsOrder || entry.collides) return false;
      if (!empty) this.#byte(COMMA);
      empty = false;
      if (!this.#attribute(entry, value)) return false;
    }
    if (scope.tags !== undefined) {
      if (!empty) this.#byte(COMMA);
      empty = false;
      this.#chunk(scope.tags);
    }
    const status = span.status;
    if (status.code === SpanStatusCode.OK) {
      if (!empty) this.#byte(COMMA);
      empty = false;
      this.#raw(STATUS_OK);
    } else if (status.code === SpanStatusCode.ERROR) {
      const message = status.message ?? '';
      if (typeof message !== 'string') return false;
      if (!empty) this.#byte(COMMA);
      empty = false;
      this.#raw(STATUS_ERROR);
      this.#string(message);
    }
    if (span.droppedAttributesCount > 0) {
      if (!empty) this.#byte(COMMA);
      empty = false;
      this.#raw(DROPPED_ATTRIBUTES);
      this.#countTag(span.droppedAttributesCount);
    }
    if (span.droppedEventsCount > 0) {
      if (!empty) this.#byte(COMMA);
      empty = false;
      this.#raw(DROPPED_EVENTS);
      this.#countTag(span.droppedEventsCount);
    }
    if (span.droppedLinksCount > 0) {
      if (!empty) this.#byte(COMMA);
      empty = false;
      this.#raw(DROPPED_LINKS);
      this.#countTag(span.droppedLinksCount);
    }
    if (empty) this.#pos = this.#start + tagsAt; // no tags: the field is left out
    else this.#byte(CLOSE_BRACE);
    this.#byte(CLOSE_BRACE);
    return true;
  }

  /** `"name"` (after `,"name":`), from the cache when seen before. */
  #name(name: string): void {
    const cached = this.#names.get(name);
    if (cached !== undefined) {
      this.#chunk(cached);
      return;
    }
    const at = this.#pos - this.#start;
    this.#string(name);
    if (name.length > MAX_CACHED_CHARS) return;
    if (this.#names.size >= MAX_NAMES) this.#names.clear();
    this.#names.set(name, this.#cached(this.#copy(at)));
  }

  /** `"key":"value"` as `attributeToTag` stringifies the value; false for values the reference path must handle. */
  #attribute(entry: AttributeKey, value: AttributeValue): boolean {
    const values = entry.values;
    const primitive = typeof value === 'object' ? undefined : value;
    const cacheable =
      values !== undefined &&
      primitive !== undefined &&
      (typeof primitive !== 'string' || primitive.length <= MAX_CACHED_CHARS);
    if (cacheable) {
      const cached = values.get(primitive);
      if (cached !== undefined) {
        this.#chunk(cached);
        return true;
      }
    }
    const at = this.#pos - this.#start;
    this.#chunk(entry.name);
    if (typeof value === 'string') this.#string(value);
    else if (typeof value === 'number') {
      if (Number.isSafeInteger(value)) {
        this.#ensure(20);
        this.#slab[this.#pos++] = QUOTE;
        if (value < 0) {
          this.#slab[this.#pos++] = MINUS;
          this.#unsigned(-value);
        } else this.#unsigned(value);
        this.#slab[this.#pos++] = QUOTE;
      } else this.#string(String(value));
    } else if (typeof value === 'boolean') this.#string(value ? 'true' : 'false');
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
      values.set(primitive, this.#cached(this.#copy(at)));
    }
    return true;
  }

  #countTag(count: number): void {
    if (Number.isSafeInteger(count)) {
      this.#ensure(20);
      this.#slab[this.#pos++] = QUOTE;
      this.#unsigned(count); // > 0 here
      this.#slab[this.#pos++] = QUOTE;
    } else this.#string(String(count));
  }

  #endpoint(endpoint: Endpoint): void {
    // The reference sets one of serviceName, ipv4 and ipv6, then maybe the port: that is the JSON order.
    this.#raw(REMOTE_ENDPOINT);
    let empty = true;
    if (endpoint.serviceName !== undefined) {
      this.#raw(SERVICE_NAME);
      this.#string(endpoint.serviceName);
      empty = false;
    }
    if (endpoint.ipv4 !== undefined) {
      if (!empty) this.#byte(COMMA);
      this.#raw(IPV4);
      this.#string(endpoint.ipv4);
      empty = false;
    }
    if (endpoint.ipv6 !== undefined) {
      if (!empty) this.#byte(COMMA);
      this.#raw(IPV6);
      this.#string(endpoint.ipv6);
      empty = false;
    }
    if (endpoint.port !== undefined) {
      if (!empty) this.#byte(COMMA);
      this.#raw(PORT);
      this.#number(endpoint.port);
    }
    this.#byte(CLOSE_BRACE);
  }

  /** Counts `bytes` against the cache budget; beyond it, the caches start over. */
  #cached(bytes: Uint8Array): Uint8Array {
    this.#cachedBytes += bytes.length;
    if (this.#cachedBytes > MAX_CACHED_BYTES) {
      this.#keys.clear();
      this.#names.clear();
      this.#cachedBytes = bytes.length;
    }
    return bytes;
  }

  /** A copy, to keep, of what this piece holds from `at` (relative to its start) on. */
  #copy(at: number): Uint8Array {
    const from = this.#start + at;
    return new Uint8Array(this.#slab.buffer, this.#slab.byteOffset + from, this.#pos - from).slice();
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

  /** Short constants: a JS loop (for a few bytes, no dearer than a call). */
  #raw(bytes: Uint8Array): void {
    const length = bytes.length;
    this.#ensure(length);
    const slab = this.#slab;
    let pos = this.#pos;
    for (let i = 0; i < length; i++) slab[pos++] = bytes[i] as number;
    this.#pos = pos;
  }

  /** Longer or cached bytes: one `TypedArray.set`. */
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
