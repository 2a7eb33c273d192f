/**
 * Merges the spans of one trace the way Zipkin's zipkin2.internal.Trace.merge
 * does, so that a trace reads the same here as on a Zipkin server:
 *
 * - spans are ordered by span id, then non-shared before shared (and, when
 *   neither is shared, CLIENT first), then by local endpoint (absent first);
 * - every span takes the trace's longest (128-bit) trace id;
 * - consecutive spans with the same id, the same `shared` flag and compatible
 *   local endpoints are pieces of one span reported in parts: they are merged
 *   (the first piece's fields win, missing ones are filled from the later
 *   piece, annotations are united, tags are united with later pieces winning);
 * - a SERVER span sharing its id with the preceding CLIENT span is marked
 *   `shared` when the instrumentation forgot to, and a shared span without a
 *   parent id takes the client's.
 *
 * This is an independent implementation of that behaviour.
 */
import type { Annotation, Endpoint, Span } from '@tracehouse/model';

function compareNullable(left: string | undefined, right: string | undefined): number {
  // Present values sort before absent ones (Zipkin's nullSafeCompareTo).
  if (left === undefined) return right === undefined ? 0 : 1;
  if (right === undefined) return -1;
  return left < right ? -1 : left > right ? 1 : 0;
}

function compareShared(left: Span, right: Span): number {
  const leftShared = left.shared === true;
  const rightShared = right.shared === true;
  if (leftShared && rightShared) return 0;
  if (leftShared) return 1;
  if (rightShared) return -1;
  const leftClient = left.kind === 'CLIENT';
  const rightClient = right.kind === 'CLIENT';
  if (leftClient === rightClient) return 0;
  return leftClient ? -1 : 1;
}

function compareEndpoint(left: Endpoint | undefined, right: Endpoint | undefined): number {
  // Absent endpoints first, so late pieces attach to the first span with that id.
  if (left === undefined) return right === undefined ? 0 : -1;
  if (right === undefined) return 1;
  return (
    compareNullable(left.serviceName, right.serviceName) ||
    compareNullable(left.ipv4, right.ipv4) ||
    compareNullable(left.ipv6, right.ipv6)
  );
}

/** The order Trace.merge works in. Exported for tests. */
export function compareForMerge(left: Span, right: Span): number {
  if (left.id !== right.id) return left.id < right.id ? -1 : 1;
  return compareShared(left, right) || compareEndpoint(left.localEndpoint, right.localEndpoint);
}

/** Tracks the identity of a local endpoint reported in pieces. */
class EndpointTracker {
  private serviceName: string | undefined;
  private ipv4: string | undefined;
  private ipv6: string | undefined;
  private port: number | undefined;

  /** False when `endpoint` contradicts what was seen so far (a different host). */
  tryMerge(endpoint: Endpoint | undefined): boolean {
    if (endpoint === undefined) return true;
    if (conflicts(this.serviceName, endpoint.serviceName)) return false;
    if (conflicts(this.ipv4, endpoint.ipv4)) return false;
    if (conflicts(this.ipv6, endpoint.ipv6)) return false;
    if (conflicts(this.port, endpoint.port)) return false;
    this.serviceName ??= endpoint.serviceName;
    this.ipv4 ??= endpoint.ipv4;
    this.ipv6 ??= endpoint.ipv6;
    this.port ??= endpoint.port;
    return true;
  }
}

function conflicts<T>(seen: T | undefined, next: T | undefined): boolean {
  return seen !== undefined && next !== undefined && seen !== next;
}

function mergeEndpoint(base: Endpoint | undefined, source: Endpoint | undefined): Endpoint | undefined {
  if (base === undefined) return source;
  if (source === undefined) return base;
  const merged: Endpoint = {};
  const serviceName = base.serviceName ?? source.serviceName;
  const ipv4 = base.ipv4 ?? source.ipv4;
  const ipv6 = base.ipv6 ?? source.ipv6;
  const port = base.port ?? source.port;
  if (serviceName !== undefined) merged.serviceName = serviceName;
  if (ipv4 !== undefined) merged.ipv4 = ipv4;
  if (ipv6 !== undefined) merged.ipv6 = ipv6;
  if (port !== undefined) merged.port = port;
  return merged;
}

/** Annotations sorted by timestamp then value, without exact duplicates (as a built zipkin2.Span holds them). */
function mergeAnnotations(base: Annotation[] | undefined, source: Annotation[] | undefined): Annotation[] | undefined {
  const all = [...(base ?? []), ...(source ?? [])];
  if (all.length === 0) return undefined;
  all.sort((a, b) => a.timestamp - b.timestamp || (a.value < b.value ? -1 : a.value > b.value ? 1 : 0));
  return all.filter((a, i) => {
    const previous = all[i - 1];
    return previous === undefined || previous.timestamp !== a.timestamp || previous.value !== a.value;
  });
}

function mergeTags(
  base: Record<string, string> | undefined,
  source: Record<string, string> | undefined,
): Record<string, string> | undefined {
  if (base === undefined && source === undefined) return undefined;
  const union: Record<string, string> = { ...base, ...source };
  // fromEntries defines each key as an own property: a tag named "__proto__" stays a tag, where
  // an assignment would reach Object.prototype's setter and drop it.
  return Object.fromEntries(Object.keys(union).sort().map((key) => [key, union[key] as string]));
}

/** zipkin2.Span.Builder.merge: `base`'s fields win, absent ones come from `source`. */
export function mergeSpanPieces(base: Span, source: Span): Span {
  const merged: Span = { traceId: base.traceId, id: base.id };
  const parentId = base.parentId ?? source.parentId;
  if (parentId !== undefined) merged.parentId = parentId;
  const kind = base.kind ?? source.kind;
  if (kind !== undefined) merged.kind = kind;
  const name = base.name ?? source.name;
  if (name !== undefined) merged.name = name;
  const timestamp = base.timestamp || source.timestamp;
  if (timestamp) merged.timestamp = timestamp;
  const duration = base.duration || source.duration;
  if (duration) merged.duration = duration;
  const localEndpoint = mergeEndpoint(base.localEndpoint, source.localEndpoint);
  if (localEndpoint !== undefined) merged.localEndpoint = localEndpoint;
  const remoteEndpoint = mergeEndpoint(base.remoteEndpoint, source.remoteEndpoint);
  if (remoteEndpoint !== undefined) merged.remoteEndpoint = remoteEndpoint;
  const annotations = mergeAnnotations(base.annotations, source.annotations);
  if (annotations !== undefined) merged.annotations = annotations;
  const tags = mergeTags(base.tags, source.tags);
  if (tags !== undefined) merged.tags = tags;
  if (base.debug === true || source.debug === true) merged.debug = true;
  if (base.shared === true || source.shared === true) merged.shared = true;
  return merged;
}

/** Merges the spans of one trace (see the module comment). Returns a new array; the input is not modified. */
export function mergeTrace(spans: readonly Span[]): Span[] {
  if (spans.length <= 1) return [...spans];
  const result = [...spans].sort(compareForMerge);

  // The longest trace id wins (a 128-bit id over its 64-bit lower half).
  let traceId = (result[0] as Span).traceId;
  for (let i = 1; i < result.length; i++) {
    if (traceId.length !== 32) traceId = (result[i] as Span).traceId;
  }

  let last: Span | undefined;
  for (let i = 0; i < result.length; i++) {
    let span = result[i] as Span;
    let spanShared = span.shared === true;
    // Only an id of the other width is replaced: two 128-bit ids that share their low half
    // (matched so when trace ids are not strict) stay as reported, as in Zipkin.
    if (span.traceId.length !== traceId.length) span = { ...span, traceId };

    // Pieces of the same span reported separately by the same host.
    let tracker: EndpointTracker | undefined;
    while (i + 1 < result.length) {
      const next = result[i + 1] as Span;
      if (next.id !== span.id) break;
      if (tracker === undefined) {
        tracker = new EndpointTracker();
        tracker.tryMerge(span.localEndpoint);
      }
      if (spanShared !== (next.shared === true) || !tracker.tryMerge(next.localEndpoint)) break;
      span = mergeSpanPieces(span, { ...next, traceId });
      result.splice(i + 1, 1);
    }

    // Client and server halves of one RPC share a span id; the client sorts first.
    if (last !== undefined && last.id === span.id) {
      if (last.kind === 'CLIENT' && span.kind === 'SERVER' && !spanShared) {
        spanShared = true;
        span = { ...span, shared: true };
      }
      if (spanShared && span.parentId === undefined && last.parentId !== undefined) {
        span = { ...span, parentId: last.parentId };
      }
    }

    result[i] = span;
    last = span;
  }
  return result;
}
