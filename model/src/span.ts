/**
 * The Zipkin v2 span model (shared/reference/zipkin2-api.yaml, definition `Span`).
 * Every span that leaves `@tracehouse/model` has passed validation and
 * normalisation: ids are lower-case hex, empty strings are absent, and
 * timestamps and durations are whole microseconds.
 */

export const SPAN_KINDS = ['CLIENT', 'SERVER', 'PRODUCER', 'CONSUMER'] as const;
export type SpanKind = (typeof SPAN_KINDS)[number];

export interface Endpoint {
  /** Lower-case service name, as Zipkin stores it. */
  serviceName?: string;
  ipv4?: string;
  ipv6?: string;
  port?: number;
}

export interface Annotation {
  /** Epoch microseconds. */
  timestamp: number;
  value: string;
}

export interface Span {
  /** 16 or 32 lower-case hex characters. */
  traceId: string;
  /** 16 lower-case hex characters. */
  id: string;
  parentId?: string;
  name?: string;
  kind?: SpanKind;
  /** Epoch microseconds when the span started. */
  timestamp?: number;
  /** Microseconds. */
  duration?: number;
  debug?: boolean;
  shared?: boolean;
  localEndpoint?: Endpoint;
  remoteEndpoint?: Endpoint;
  annotations?: Annotation[];
  tags?: Record<string, string>;
}
