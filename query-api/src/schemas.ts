/**
 * Route schemas (TypeBox) mirroring shared/reference/zipkin2-api.yaml. They
 * validate the query strings, serialise the responses (only the specification's fields),
 * and are what /openapi.json is generated from. TypeBox is imported through
 * @fastify/type-provider-typebox, which re-exports it.
 */
import { SPAN_KINDS, type SpanKind } from '@tracehouse/model';
import { Type, type Static } from '@fastify/type-provider-typebox';

export const EndpointSchema = Type.Object(
  {
    serviceName: Type.Optional(Type.String()),
    ipv4: Type.Optional(Type.String({ format: 'ipv4' })),
    ipv6: Type.Optional(Type.String({ format: 'ipv6' })),
    port: Type.Optional(Type.Integer()),
  },
  { $id: 'Endpoint', title: 'Endpoint', description: 'The network context of a node in the service graph' },
);

export const AnnotationSchema = Type.Object(
  {
    timestamp: Type.Integer({ format: 'int64', description: 'Epoch microseconds of this event.' }),
    value: Type.String(),
  },
  { $id: 'Annotation', title: 'Annotation', description: 'An event that explains latency, with its time.' },
);

const lowerHex16 = { pattern: '^[a-f0-9]{16}$', minLength: 16, maxLength: 16 } as const;

// The serialiser writes only these properties (required ones first, then this
// order), so a body never carries a field the specification does not define.
export const SpanSchema = Type.Object(
  {
    traceId: Type.String({ pattern: '^[a-f0-9]{16,32}$', minLength: 16, maxLength: 32 }),
    parentId: Type.Optional(Type.String(lowerHex16)),
    id: Type.String(lowerHex16),
    kind: Type.Optional(Type.Unsafe<SpanKind>({ type: 'string', enum: [...SPAN_KINDS] })),
    name: Type.Optional(Type.String()),
    timestamp: Type.Optional(Type.Integer({ format: 'int64', description: 'Epoch microseconds of the start of this span.' })),
    duration: Type.Optional(Type.Integer({ format: 'int64', minimum: 1, description: 'Microseconds.' })),
    localEndpoint: Type.Optional(Type.Unsafe<Static<typeof EndpointSchema>>(Type.Ref('Endpoint#'))),
    remoteEndpoint: Type.Optional(Type.Unsafe<Static<typeof EndpointSchema>>(Type.Ref('Endpoint#'))),
    annotations: Type.Optional(Type.Array(Type.Unsafe<Static<typeof AnnotationSchema>>(Type.Ref('Annotation#')))),
    tags: Type.Optional(Type.Object({}, { title: 'Tags', additionalProperties: Type.String() })),
    debug: Type.Optional(Type.Boolean()),
    shared: Type.Optional(Type.Boolean()),
  },
  { $id: 'Span', title: 'Span', description: 'A single-host view of an operation (Zipkin v2).' },
);
const SpanRef = Type.Unsafe<Static<typeof SpanSchema>>(Type.Ref('Span#'));

export const TraceSchema = Type.Array(SpanRef, { $id: 'Trace', title: 'Trace', description: 'List of spans who have the same trace ID.' });
export const TraceRef = Type.Unsafe<Static<typeof TraceSchema>>(Type.Ref('Trace#'));
export const ListOfTracesSchema = Type.Array(TraceRef, { $id: 'ListOfTraces', title: 'ListOfTraces' });
export const ListOfTracesRef = Type.Unsafe<Static<typeof ListOfTracesSchema>>(Type.Ref('ListOfTraces#'));
export const StringListSchema = Type.Array(Type.String());

export const DependencyLinkSchema = Type.Object(
  {
    parent: Type.String(),
    child: Type.String(),
    callCount: Type.Integer(),
    errorCount: Type.Optional(Type.Integer()),
  },
  { $id: 'DependencyLink', title: 'DependencyLink', description: 'The count of traced calls between two services.' },
);
export const ListOfDependencyLinksSchema = Type.Array(Type.Unsafe<Static<typeof DependencyLinkSchema>>(Type.Ref('DependencyLink#')), {
  title: 'ListOfDependencyLinks',
});

export const ErrorSchema = Type.Object(
  {
    code: Type.String({ description: 'One of the documented error codes, e.g. INVALID_PARAMETER.' }),
    message: Type.String(),
    parameter: Type.Optional(Type.String({ description: 'The parameter at fault.' })),
  },
  { $id: 'Error', title: 'Error' },
);
export const ErrorRef = Type.Unsafe<Static<typeof ErrorSchema>>(Type.Ref('Error#'));

/** The named schemas, in dependency order, for app.addSchema (they become components/schemas in /openapi.json). */
export const SHARED_SCHEMAS = [EndpointSchema, AnnotationSchema, SpanSchema, TraceSchema, ListOfTracesSchema, DependencyLinkSchema, ErrorSchema];

const serviceNameParam = Type.String({
  description: 'Lower-case label of a node in the service graph. The /services endpoint enumerates possible input values.',
});
const int64 = (description: string) => Type.Integer({ format: 'int64', description });

export const ServiceNameQuery = Type.Object({ serviceName: serviceNameParam });

/**
 * The /traces query string. Built from the configured limits, so that /openapi.json documents
 * the default limit this server applies (the reference's `default: 10` is Zipkin's default);
 * fastify's ajv fills the default in, the same value parseTracesQuery would take.
 */
export function tracesQuery(limits: { defaultLimit: number; maxLimit: number }) {
  return Type.Object({
    serviceName: Type.Optional(serviceNameParam),
    remoteServiceName: Type.Optional(Type.String({ description: 'Only traces with a span that calls this remote service.' })),
    spanName: Type.Optional(Type.String({ description: 'Only traces that contain a span with this name.' })),
    annotationQuery: Type.Optional(
      Type.String({
        description:
          "Ex. `http.uri=/foo and retried`: `key=value` constrains Span.tags, a bare word matches Span.annotations[].value or a Span.tags key. Terms are ANDed. One term per key: a later `key=value` replaces an earlier one, a bare word never replaces a `key=value`.",
      }),
    ),
    minDuration: Type.Optional(int64('Only traces with a span of at least this many microseconds.')),
    maxDuration: Type.Optional(int64('Only traces with a span of at most this many microseconds. Only valid with minDuration.')),
    endTs: Type.Optional(int64('End of the window in epoch milliseconds. Defaults to now.')),
    lookback: Type.Optional(int64('Length of the window in milliseconds. Defaults to the configured lookback (1 day), limited to the configured maximum.')),
    limit: Type.Optional(
      Type.Integer({
        default: limits.defaultLimit,
        description: `Maximum number of traces to return. Defaults to ${limits.defaultLimit}; at most ${limits.maxLimit}.`,
      }),
    ),
  });
}

export const TraceIdParams = Type.Object({
  traceId: Type.String({
    description: 'Trace identifier: 16 or 32 hex characters (64 or 128 bits).',
  }),
});

export const TraceManyQuery = Type.Object({
  traceIds: Type.String({ description: 'Comma-delimited list of at least two unique trace identifiers (16 or 32 hex characters).' }),
});

export const DependenciesQuery = Type.Object({
  endTs: int64('Only links from spans at or before this time in epoch milliseconds.'),
  lookback: Type.Optional(int64('Length of the window in milliseconds. Defaults to the configured lookback (1 day).')),
});

export const AutocompleteValuesQuery = Type.Object({
  key: Type.String({ description: 'Name of the autocomplete key from the /autocompleteKeys endpoint.' }),
});

export const HealthSchema = Type.Object({
  status: Type.Union([Type.Literal('UP'), Type.Literal('DOWN')]),
  clickhouse: Type.Union([Type.Literal('UP'), Type.Literal('DOWN')]),
});
