// JSON v2 encoding: a JSON list of spans in Zipkin's field order.
import type { Endpoint, Span } from './span.js';

function endpointJson(e: Endpoint | undefined): Endpoint | undefined {
  if (e === undefined) return undefined;
  const out: Endpoint = {};
  if (e.serviceName !== undefined) out.serviceName = e.serviceName;
  if (e.ipv4 !== undefined) out.ipv4 = e.ipv4;
  if (e.ipv6 !== undefined) out.ipv6 = e.ipv6;
  if (e.port !== undefined) out.port = e.port;
  return out;
}

/** The span as a plain object with only Zipkin v2 fields, in Zipkin's order. */
function spanToJsonObject(s: Span): Span {
  const out: Span = s.parentId === undefined ? { traceId: s.traceId, id: s.id } : { traceId: s.traceId, parentId: s.parentId, id: s.id };
  if (s.kind !== undefined) out.kind = s.kind;
  if (s.name !== undefined) out.name = s.name;
  if (s.timestamp !== undefined) out.timestamp = s.timestamp;
  if (s.duration !== undefined) out.duration = s.duration;
  const local = endpointJson(s.localEndpoint);
  if (local !== undefined) out.localEndpoint = local;
  const remote = endpointJson(s.remoteEndpoint);
  if (remote !== undefined) out.remoteEndpoint = remote;
  if (s.annotations !== undefined && s.annotations.length > 0) {
    out.annotations = s.annotations.map((a) => ({ timestamp: a.timestamp, value: a.value }));
  }
  if (s.tags !== undefined) out.tags = s.tags;
  if (s.debug === true) out.debug = true;
  if (s.shared === true) out.shared = true;
  return out;
}

/**
 * Encodes spans as a Zipkin JSON v2 list (UTF-8). Spans are written as given;
 * pass them through normalizeSpan first if they may be invalid.
 */
export function encodeJsonV2(spans: readonly Span[]): Buffer {
  return Buffer.from(JSON.stringify(spans.map(spanToJsonObject)), 'utf8');
}
