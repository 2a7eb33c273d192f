/**
 * OpenTelemetry `ReadableSpan` -> Zipkin v2 span, following the OpenTelemetry
 * specification's "OpenTelemetry to Zipkin Transformation" and the generic
 * mapping to non-OTLP formats (dropped counts, instrumentation scope).
 *
 * This runs once per span on the host's event loop, so it avoids per-span
 * allocations it can share: what depends only on the resource (local
 * endpoint, resource tags) is computed once per resource and cached.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { SpanKind, SpanStatusCode, type AttributeValue, type Attributes, type HrTime } from '@opentelemetry/api';
import { defaultServiceName, type Resource } from '@opentelemetry/resources';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace-base';
import { normalizeSpan, type Annotation, type Endpoint, type Span, type SpanKind as ZipkinKind } from '@tracehouse/model';

export const STATUS_CODE_TAG = 'otel.status_code';
export const STATUS_ERROR_TAG = 'error';
export const SCOPE_NAME_TAG = 'otel.scope.name';
export const SCOPE_VERSION_TAG = 'otel.scope.version';
/**
 * The scope's deprecated aliases, which the specification's mapping to non-OTLP formats says
 * MUST still be reported, with the same values: older Zipkin dashboards and queries use them.
 */
export const LIBRARY_NAME_TAG = 'otel.library.name';
export const LIBRARY_VERSION_TAG = 'otel.library.version';
export const DROPPED_ATTRIBUTES_TAG = 'otel.dropped_attributes_count';
export const DROPPED_EVENTS_TAG = 'otel.dropped_events_count';
export const DROPPED_LINKS_TAG = 'otel.dropped_links_count';

/** Every tag `convert` itself writes (or deletes): an attribute with one of these keys is overridden in place. */
export const MAPPING_TAG_KEYS: readonly string[] = Object.freeze([
  STATUS_CODE_TAG,
  STATUS_ERROR_TAG,
  SCOPE_NAME_TAG,
  SCOPE_VERSION_TAG,
  LIBRARY_NAME_TAG,
  LIBRARY_VERSION_TAG,
  DROPPED_ATTRIBUTES_TAG,
  DROPPED_EVENTS_TAG,
  DROPPED_LINKS_TAG,
]);

/** Resource attributes copied to every span as tags unless configured otherwise. */
export const DEFAULT_RESOURCE_TAG_KEYS: readonly string[] = Object.freeze([
  'service.namespace',
  'service.version',
  'service.instance.id',
  'deployment.environment',
  'deployment.environment.name',
]);

export interface ZipkinConversionOptions {
  /**
   * Resource attributes (other than `service.name`) added to every span's
   * tags: a list of keys, `'all'`, or `'none'`. The specification leaves the
   * resource mapping open; copying every attribute (host, process, ...) to
   * every span multiplies the wire size, so the default is a short list
   * ({@link DEFAULT_RESOURCE_TAG_KEYS}). `service.namespace` must be a tag.
   */
  resourceTags?: readonly string[] | 'all' | 'none';
}

/**
 * Service name used when the resource has none: the SDK's default resource's,
 * `unknown_service:<process>` (a resource built without the defaults lacks it).
 */
const FALLBACK_SERVICE_NAME = defaultServiceName();

export const KIND: Record<SpanKind, ZipkinKind | undefined> = {
  [SpanKind.INTERNAL]: undefined,
  [SpanKind.SERVER]: 'SERVER',
  [SpanKind.CLIENT]: 'CLIENT',
  [SpanKind.PRODUCER]: 'PRODUCER',
  [SpanKind.CONSUMER]: 'CONSUMER',
};

export interface ResourceView {
  localEndpoint: Endpoint;
  /** Already stringified resource tags, copied into each span's tags first. */
  tags: readonly (readonly [string, string])[];
}

/**
 * Remote endpoint candidates for spans that call out (CLIENT, PRODUCER) or read from a broker (CONSUMER), in
 * the specification's rank order: the first with a non-empty string value
 * gives the endpoint (an IP literal as `ipv4`/`ipv6`, anything else as the
 * lower-cased service name) and `portKey`, when set, its port.
 */
export interface RemoteCandidate {
  readonly key: string;
  readonly portKey: string | undefined;
}

const OUTGOING_CANDIDATES: readonly RemoteCandidate[] = [
  { key: 'peer.service', portKey: undefined },
  { key: 'server.address', portKey: 'server.port' },
  { key: 'net.peer.name', portKey: 'net.peer.port' },
  { key: 'network.peer.address', portKey: 'network.peer.port' },
  { key: 'server.socket.domain', portKey: 'server.socket.port' },
  { key: 'server.socket.address', portKey: 'server.socket.port' },
  { key: 'net.sock.peer.name', portKey: 'net.sock.peer.port' },
  { key: 'net.sock.peer.addr', portKey: 'net.sock.peer.port' },
  { key: 'peer.hostname', portKey: undefined },
  { key: 'peer.address', portKey: 'peer.port' },
  { key: 'db.name', portKey: undefined },
  // Not in the specification's table (old HTTP conventions' peer IP): only after every ranked one.
  { key: 'net.peer.ip', portKey: 'net.peer.port' },
];

/** The attributes naming the system an outgoing span calls, newest conventions first. */
const PEER_SYSTEM_KEYS: readonly string[] = ['db.system.name', 'db.system', 'messaging.system'];

/**
 * For a SERVER span the remote side is the caller: `server.address` /
 * `net.host.*` describe this very service there, so only the peer's own
 * attributes qualify. (A CONSUMER span's `server.address` is the broker it
 * read from, its remote side as for a PRODUCER: it takes the outgoing list.)
 */
const INCOMING_CANDIDATES: readonly RemoteCandidate[] = [
  { key: 'peer.service', portKey: undefined },
  { key: 'network.peer.address', portKey: 'network.peer.port' },
  { key: 'client.address', portKey: 'client.port' },
  { key: 'net.sock.peer.addr', portKey: 'net.sock.peer.port' },
  { key: 'net.peer.ip', portKey: 'net.peer.port' },
  { key: 'net.peer.name', portKey: 'net.peer.port' },
  { key: 'peer.hostname', portKey: undefined },
  { key: 'peer.address', portKey: 'peer.port' },
];

/** Stringifies an attribute value as the specification asks: primitives as text, arrays as a JSON list. */
export function attributeToTag(value: AttributeValue): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

/** Whole microseconds (rounded, also for an hrtime whose seconds have a fraction). */
export function hrTimeToMicros(time: HrTime): number {
  // Each part rounded on its own: summing first would round through a double's 0.25 µs steps.
  return Math.round(time[0] * 1_000_000) + Math.round(time[1] / 1000);
}

/** What the collector takes as a time: whole, positive microseconds below 2^53. */
export function isEpochMicros(micros: number): boolean {
  return Number.isSafeInteger(micros) && micros > 0;
}

/**
 * A span the collector would refuse (ids that are not hex, all zeros, times
 * beyond 2^53 microseconds, ...): dropped here and counted as a conversion
 * error rather than published, counted as exported, and dropped there.
 */
export class ZipkinConversionError extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'ZipkinConversionError';
  }
}

/** A scope name or version as text (a tag value is a string), when it is set. */
function textOf(value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return JSON.stringify(value) ?? typeof value;
}

/** A finished span's duration in whole microseconds; Zipkin reads a zero duration as "unknown", so at least 1. */
export function durationMicros(span: ReadableSpan): number {
  return Math.max(1, hrTimeToMicros(span.duration));
}

/** Adds the instrumentation scope's tags, and their deprecated aliases: name and version, each when set (not empty). */
export function setScopeTags<T>(tags: Record<string, T>, name: T | undefined, version: T | undefined): void {
  if (name) tags[SCOPE_NAME_TAG] = name;
  if (version) tags[SCOPE_VERSION_TAG] = version;
  if (name) tags[LIBRARY_NAME_TAG] = name;
  if (version) tags[LIBRARY_VERSION_TAG] = version;
}

/** The port an attribute value names, if it is one (a number or a numeric string in 1-65535). */
export function toPort(value: AttributeValue | undefined): number | undefined {
  const port = typeof value === 'string' ? Number(value) : value;
  return typeof port === 'number' && Number.isInteger(port) && port > 0 && port <= 65535 ? port : undefined;
}

type AddressKind = { ipv4: string } | { ipv6: string } | null;

/**
 * Peers repeat (a handful of upstreams and downstreams), and the IP-literal
 * checks are regular expressions: remember recent answers. Bounded: emptied
 * when full.
 */
const addressKinds = new Map<string, AddressKind>();
const ADDRESS_CACHE_SIZE = 1024;

/** Longer values (no address, a host name at most 253) are not kept: the cache stays small whatever the values. */
const MAX_CACHED_ADDRESS_CHARS = 256;

/** Tests only (index.ts does not export it): the characters of the addresses the cache keeps. */
export function addressCacheChars(): number {
  let chars = 0;
  for (const address of addressKinds.keys()) chars += address.length;
  return chars;
}

function addressKind(address: string): AddressKind {
  let kind = addressKinds.get(address);
  if (kind !== undefined) return kind;
  // IPv4-mapped IPv6 (as Node reports for dual-stack sockets) is an IPv4 peer.
  const mapped = address.startsWith('::ffff:') ? address.slice(7) : address;
  kind = isIPv4(mapped) ? { ipv4: mapped } : isIPv6(address) ? { ipv6: address } : null;
  if (address.length > MAX_CACHED_ADDRESS_CHARS) return kind;
  if (addressKinds.size >= ADDRESS_CACHE_SIZE) addressKinds.clear();
  addressKinds.set(address, kind);
  return kind;
}

/** The endpoint a remote candidate's `value` and port attribute give. */
export function remoteEndpointFrom(value: string, portValue: AttributeValue | undefined, system?: string): Endpoint {
  const endpoint: Endpoint = {};
  const kind = value === '' ? undefined : addressKind(value);
  if (kind === null) {
    endpoint.serviceName = value.toLowerCase();
  } else {
    // Only an address (or nothing) names the peer: its system does, as the service to link to.
    if (system !== undefined) endpoint.serviceName = system.toLowerCase();
    if (kind !== undefined && 'ipv4' in kind) endpoint.ipv4 = kind.ipv4;
    else if (kind !== undefined) endpoint.ipv6 = kind.ipv6;
  }
  const port = toPort(portValue);
  if (port !== undefined) endpoint.port = port;
  return endpoint;
}

/**
 * What kind of peer an outgoing span calls, by the semantic conventions'
 * system attributes: `postgresql`, `redis`, `rabbitmq`, ... JS instrumentations
 * do not set `peer.service`, and a database or broker reached by IP address
 * would otherwise have an endpoint without a service name, which Zipkin's
 * dependency graph cannot link (and a broker hop would vanish from it); Brave
 * names such peers by their system too. Not for SERVER spans (undefined).
 */
export function peerSystem(candidates: readonly RemoteCandidate[], attributes: Attributes): string | undefined {
  if (candidates !== OUTGOING_CANDIDATES) return undefined;
  for (let i = 0; i < PEER_SYSTEM_KEYS.length; i++) {
    const value = attributes[PEER_SYSTEM_KEYS[i] as string];
    if (typeof value === 'string' && value !== '') return value;
  }
  return undefined;
}

/** The candidates for the remote endpoint of a span of Zipkin kind `kind` (none for INTERNAL). */
export function remoteCandidates(kind: ZipkinKind | undefined): readonly RemoteCandidate[] | undefined {
  if (kind === undefined) return undefined;
  return kind === 'SERVER' ? INCOMING_CANDIDATES : OUTGOING_CANDIDATES;
}

/**
 * The span's events as annotations. An event named "" without attributes
 * would be an annotation with an empty value, which Zipkin's proto3 form
 * cannot carry, and one at time 0 or before (an event given `new Date(0)`)
 * has no time Zipkin can hold: tracehouse's collector would leave either
 * out, so they are left out here, and counted with the events the SDK
 * dropped (`otel.dropped_events_count`).
 */
function annotationsOf(events: readonly TimedEvent[]): Annotation[] | undefined {
  const annotations: Annotation[] = [];
  for (const event of events) {
    const converted = annotation(event);
    if (converted.value !== '' && isEpochMicros(converted.timestamp)) annotations.push(converted);
  }
  return annotations.length > 0 ? annotations : undefined;
}

export function annotation(event: TimedEvent): Annotation {
  const timestamp = hrTimeToMicros(event.time);
  const attributes = event.attributes;
  const dropped = event.droppedAttributesCount;
  const droppedSome = typeof dropped === 'number' && dropped > 0;
  const keys = attributes === undefined ? [] : Object.keys(attributes);
  if (keys.length === 0 && !droppedSome) return { timestamp, value: event.name };
  // The specification's form: "event-name": {"key1":"value1", ...}
  const values: Record<string, string> = {};
  for (const key of keys) {
    const value = attributes?.[key];
    if (value !== undefined && value !== null) values[key] = attributeToTag(value);
  }
  // Attributes the SDK's limits dropped are counted on the event itself, as on the span.
  if (droppedSome) values[DROPPED_ATTRIBUTES_TAG] = String(dropped);
  return { timestamp, value: `${JSON.stringify(event.name)}:${JSON.stringify(values)}` };
}

/** The local endpoint and resource tags of every span of `resource`. */
export function resourceView(resource: Resource, resourceTags: readonly string[] | 'all' | 'none'): ResourceView {
  const attributes = resource.attributes;
  const name = attributes['service.name'];
  const serviceName = typeof name === 'string' && name !== '' ? name : FALLBACK_SERVICE_NAME;
  const keys = resourceTags === 'all' ? Object.keys(attributes) : resourceTags === 'none' ? [] : resourceTags;
  const tags: (readonly [string, string])[] = [];
  for (const key of keys) {
    if (key === 'service.name') continue;
    const value = attributes[key];
    if (value !== undefined && value !== null) tags.push([key, attributeToTag(value)]);
  }
  return { localEndpoint: Object.freeze({ serviceName }), tags: Object.freeze(tags) };
}

/** What the first remote candidate with a value found: that value and its port attribute's value. */
export interface RemoteCandidateMatch {
  readonly value: string;
  readonly portValue: AttributeValue | undefined;
}

/** The first of `candidates` (in rank order) whose attribute is a non-empty string, if any. */
export function findRemoteCandidate(
  candidates: readonly RemoteCandidate[],
  attributes: Attributes,
): RemoteCandidateMatch | undefined {
  for (let i = 0; i < candidates.length; i++) {
    const candidate = candidates[i] as RemoteCandidate;
    const value = attributes[candidate.key];
    if (typeof value !== 'string' || value === '') continue;
    return { value, portValue: candidate.portKey === undefined ? undefined : attributes[candidate.portKey] };
  }
  return undefined;
}

/**
 * The remote endpoint of a span of Zipkin kind `kind` (none for INTERNAL): from
 * the first ranked attribute, named by the peer's system when that gives only an
 * address or nothing (see peerSystem).
 */
export function remoteEndpointOf(kind: ZipkinKind | undefined, attributes: Attributes): Endpoint | undefined {
  const candidates = remoteCandidates(kind);
  if (candidates === undefined) return undefined;
  const found = findRemoteCandidate(candidates, attributes);
  const system = peerSystem(candidates, attributes);
  if (found === undefined) return system === undefined ? undefined : remoteEndpointFrom('', undefined, system);
  return remoteEndpointFrom(found.value, found.portValue, system);
}

/** Converts SDK spans to Zipkin v2 spans; one instance per exporter (it caches per-resource work). */
export class ZipkinSpanConverter {
  readonly #resourceTags: readonly string[] | 'all' | 'none';
  readonly #resources = new WeakMap<Resource, ResourceView>();

  constructor(options: ZipkinConversionOptions = {}) {
    this.#resourceTags = options.resourceTags ?? DEFAULT_RESOURCE_TAG_KEYS;
  }

  #resourceView(resource: Resource): ResourceView {
    let view = this.#resources.get(resource);
    if (view === undefined) {
      view = resourceView(resource, this.#resourceTags);
      this.#resources.set(resource, view);
    }
    return view;
  }

  convert(span: ReadableSpan): Span {
    const context = span.spanContext();
    const resource = this.#resourceView(span.resource);
    const attributes = span.attributes;

    const tags: Record<string, string> = {};
    for (const [key, value] of resource.tags) tags[key] = value;
    for (const key in attributes) {
      const value = attributes[key];
      if (value !== undefined && value !== null) tags[key] = attributeToTag(value);
    }
    const scope = span.instrumentationScope;
    setScopeTags(tags, textOf(scope.name), textOf(scope.version));
    const status = span.status;
    // The status alone decides both tags: Zipkin shows any span with an `error` tag as failed, so the
    // specification has no `error` for OK and UNSET, and no `otel.status_code` for UNSET, whatever the
    // attributes say (an instrumentation reports a failure through the status).
    if (status.code === SpanStatusCode.OK) {
      tags[STATUS_CODE_TAG] = 'OK';
      delete tags[STATUS_ERROR_TAG];
    } else if (status.code === SpanStatusCode.ERROR) {
      tags[STATUS_CODE_TAG] = 'ERROR';
      tags[STATUS_ERROR_TAG] = status.message ?? '';
    } else {
      delete tags[STATUS_CODE_TAG];
      delete tags[STATUS_ERROR_TAG];
    }
    if (span.droppedAttributesCount > 0) tags[DROPPED_ATTRIBUTES_TAG] = String(span.droppedAttributesCount);
    const annotations = span.events.length > 0 ? annotationsOf(span.events) : undefined;
    const eventsLeftOut = span.events.length - (annotations?.length ?? 0);
    if (span.droppedEventsCount + eventsLeftOut > 0) tags[DROPPED_EVENTS_TAG] = String(span.droppedEventsCount + eventsLeftOut);
    if (span.droppedLinksCount > 0) tags[DROPPED_LINKS_TAG] = String(span.droppedLinksCount);

    const kind = KIND[span.kind];
    const parentId = span.parentSpanContext?.spanId;
    const remote = remoteEndpointOf(kind, attributes);
    let hasTags = false;
    for (const _ in tags) {
      hasTags = true;
      break;
    }
    // One object literal in Zipkin's field order: every span gets the same
    // hidden class (fast to build and to serialize). Absent fields are
    // undefined, which JSON leaves out, as the specification's "Request
    // Payload" section asks.
    const zipkin: Span = {
      traceId: context.traceId,
      parentId: parentId === '' ? undefined : parentId,
      id: context.spanId,
      kind,
      name: typeof span.name === 'string' ? span.name : String(span.name),
      timestamp: hrTimeToMicros(span.startTime),
      duration: durationMicros(span),
      localEndpoint: resource.localEndpoint,
      remoteEndpoint: remote,
      annotations,
      tags: hasTags ? tags : undefined,
    };
    // The collector's own rules, on what the fast path leaves to this one (odd input only).
    const checked = normalizeSpan(zipkin);
    if (!checked.ok) throw new ZipkinConversionError(checked.reason, `span ${String(context.spanId)} would be refused: ${checked.message}`);
    return zipkin;
  }
}
