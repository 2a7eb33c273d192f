// HTTP-layer behaviour that a real ClickHouse cannot be made to show on demand
// (slow queries, a store that is down) or that does not involve it (auth, CORS,
// routing, parameter errors). Reads against real ClickHouse are in
// api.integration.test.ts.
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { gunzipSync } from 'node:zlib';
import fastifyCompress from '@fastify/compress';
import type { Span } from '@tracehouse/model';
import { StorageError, type DependencyLink, type TraceQuery, type TraceReader } from '@tracehouse/storage';
import { afterEach, describe, expect, it } from 'vitest';
import Fastify from 'fastify';
import { buildApp, queryApi, queryApiFrameworkErrors, type AppConfig, type QueryApp } from './app.js';

const config: AppConfig = {
  defaultLimit: 10,
  maxLimit: 100,
  defaultLookbackMs: 86_400_000,
  maxLookbackMs: 7 * 86_400_000,
  queryTimeoutMs: 300,
  corsOrigins: '*',
  bearerToken: undefined,
};
const NOW = 1_700_000_000_000;

/** Records what the app asked for and answers with fixed data. */
class RecordingReader implements TraceReader {
  calls: Array<[string, unknown]> = [];
  delayMs = 0;
  failWith: Error | undefined;
  /** Told of each call as it is recorded. */
  onCall: (() => void) | undefined;
  /** When set, every call waits for it before answering. */
  gate: Promise<void> | undefined;
  constructor(private readonly traces: Span[][] = []) {}
  private async answer<T>(method: string, arg: unknown, value: T): Promise<T> {
    this.calls.push([method, arg]);
    this.onCall?.();
    if (this.gate !== undefined) await this.gate;
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    if (this.failWith !== undefined) throw this.failWith;
    return value;
  }
  getServiceNames() {
    return this.answer('getServiceNames', undefined, ['backend', 'frontend']);
  }
  getSpanNames(serviceName: string) {
    return this.answer('getSpanNames', serviceName, ['get']);
  }
  getRemoteServiceNames(serviceName: string) {
    return this.answer('getRemoteServiceNames', serviceName, ['db']);
  }
  getTraces(query: TraceQuery) {
    return this.answer('getTraces', query, this.traces);
  }
  getTrace(traceId: string) {
    return this.answer('getTrace', traceId, this.traces.find((t) => t[0]?.traceId === traceId) ?? []);
  }
  getTraceMany(traceIds: readonly string[]) {
    return this.answer('getTraceMany', traceIds, this.traces.filter((t) => traceIds.includes(t[0]?.traceId ?? '')));
  }
  getDependencies(options: { endTs: number; lookback: number }) {
    const links: DependencyLink[] = [{ parent: 'frontend', child: 'backend', callCount: 2, errorCount: 1 }];
    return this.answer('getDependencies', options, links);
  }
  getAutocompleteKeys() {
    return this.answer('getAutocompleteKeys', undefined, ['http.method']);
  }
  getAutocompleteValues(key: string) {
    return this.answer('getAutocompleteValues', key, ['GET']);
  }
}

/** A promise with its resolve and reject (Promise.withResolvers needs Node 22). */
function deferred(): { promise: Promise<void>; resolve: () => void; reject: (error: Error) => void } {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((onResolve, onReject) => {
    resolve = onResolve;
    reject = onReject;
  });
  return { promise, resolve, reject };
}

const TRACE = '463ac35c9f6413ad';
const spans: Span[] = [
  { traceId: TRACE, id: '0000000000000002', kind: 'SERVER', localEndpoint: { serviceName: 'backend' } },
  { traceId: TRACE, id: '0000000000000002', kind: 'CLIENT', parentId: '0000000000000001', localEndpoint: { serviceName: 'frontend' } },
];

let app: QueryApp | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function start(reader: TraceReader, overrides: Partial<AppConfig> = {}): Promise<QueryApp> {
  app = await buildApp({ reader, config: { ...config, ...overrides }, now: () => NOW });
  return app;
}

describe('buildApp', () => {
  it('passes parsed Zipkin parameters to the reader and merges what it returns', async () => {
    const reader = new RecordingReader([spans]);
    const api = await start(reader);
    const response = await api.inject({
      url: '/api/v2/traces?serviceName=Frontend&annotationQuery=error%20and%20http.method%3DGET&minDuration=5&limit=3',
    });
    expect(response.statusCode).toBe(200);
    expect(reader.calls).toEqual([
      [
        'getTraces',
        {
          serviceName: 'frontend',
          annotationQuery: [{ key: 'error' }, { key: 'http.method', value: 'GET' }],
          minDuration: 5,
          endTs: NOW,
          lookback: 86_400_000,
          limit: 3,
        },
      ],
    ]);
    const [trace] = response.json<Span[][]>();
    expect(trace?.map((span) => [span.kind, span.shared, span.parentId])).toEqual([
      ['CLIENT', undefined, '0000000000000001'],
      ['SERVER', true, '0000000000000001'],
    ]);
  });

  it('keeps the value of key=value when a bare word repeats the key (Zipkin), in what it asks the reader', async () => {
    const reader = new RecordingReader();
    const api = await start(reader);
    const response = await api.inject({ url: `/api/v2/traces?annotationQuery=${encodeURIComponent('error=500 and error')}` });
    expect(response.statusCode).toBe(200);
    expect((reader.calls[0]?.[1] as TraceQuery).annotationQuery).toEqual([{ key: 'error', value: '500' }]);
  });

  it('answers 400 naming the parameter for type errors, bounds and missing parameters', async () => {
    const api = await start(new RecordingReader());
    const cases: Array<[string, string, string]> = [
      ['/api/v2/traces?limit=abc', 'limit', 'INVALID_PARAMETER'],
      ['/api/v2/traces?limit=101', 'limit', 'INVALID_PARAMETER'],
      ['/api/v2/traces?endTs=1.5', 'endTs', 'INVALID_PARAMETER'],
      ['/api/v2/traces?lookback=-1', 'lookback', 'INVALID_PARAMETER'],
      ['/api/v2/traces?minDuration=x', 'minDuration', 'INVALID_PARAMETER'],
      ['/api/v2/spans', 'serviceName', 'MISSING_PARAMETER'],
      ['/api/v2/spans?serviceName=', 'serviceName', 'MISSING_PARAMETER'],
      ['/api/v2/remoteServices', 'serviceName', 'MISSING_PARAMETER'],
      ['/api/v2/trace/nothex', 'traceId', 'INVALID_PARAMETER'],
      ['/api/v2/traceMany?traceIds=463ac35c9f6413ad', 'traceIds', 'INVALID_PARAMETER'],
      ['/api/v2/traceMany', 'traceIds', 'MISSING_PARAMETER'],
      ['/api/v2/traceMany?traceIds=463ac35c9f6413ad,', 'traceIds', 'INVALID_PARAMETER'],
      ['/api/v2/traceMany?traceIds=,', 'traceIds', 'INVALID_PARAMETER'],
      ['/api/v2/dependencies', 'endTs', 'MISSING_PARAMETER'],
      ['/api/v2/dependencies?endTs=0', 'endTs', 'INVALID_PARAMETER'],
      ['/api/v2/autocompleteValues', 'key', 'MISSING_PARAMETER'],
      // Numbers Zipkin's Long.valueOf refuses, which a loose coercion would read.
      ['/api/v2/traces?limit=0x10', 'limit', 'INVALID_PARAMETER'],
      ['/api/v2/traces?limit=1e1', 'limit', 'INVALID_PARAMETER'],
      ['/api/v2/traces?limit=%2012', 'limit', 'INVALID_PARAMETER'],
      ['/api/v2/traces?minDuration=1.0', 'minDuration', 'INVALID_PARAMETER'],
      ['/api/v2/traces?minDuration=5&maxDuration=0b111', 'maxDuration', 'INVALID_PARAMETER'],
      ['/api/v2/dependencies?endTs=0x10', 'endTs', 'INVALID_PARAMETER'],
      ['/api/v2/dependencies?endTs=10&lookback=1e3', 'lookback', 'INVALID_PARAMETER'],
    ];
    for (const [url, parameter, code] of cases) {
      const response = await api.inject({ url });
      expect({ url, status: response.statusCode }).toEqual({ url, status: 400 });
      expect({ url, ...response.json<object>() }).toMatchObject({ url, parameter, code });
    }
  });

  it('sends only the fields the specification defines', async () => {
    const extra = { ...spans[0], internal: 'x', localEndpoint: { serviceName: 'backend', rowId: 7 } } as unknown as Span;
    const api = await start(new RecordingReader([[extra]]));
    const response = await api.inject({ url: `/api/v2/trace/${TRACE}` });
    expect(response.json()).toEqual([{ traceId: TRACE, id: '0000000000000002', kind: 'SERVER', localEndpoint: { serviceName: 'backend' } }]);
  });

  it('sends a tag named "__proto__" of a span reported in pieces', async () => {
    // As storage reads tags (JSON.parse): "__proto__" is an own key.
    const pieces = [
      `{"traceId":"${TRACE}","id":"0000000000000003","name":"q","tags":{"__proto__":"p","z":"1"}}`,
      `{"traceId":"${TRACE}","id":"0000000000000003","duration":5,"tags":{"a":"2"}}`,
    ].map((json) => JSON.parse(json) as Span);
    const api = await start(new RecordingReader([pieces]));
    const response = await api.inject({ url: `/api/v2/trace/${TRACE}` });
    expect(response.body).toBe(`[{"traceId":"${TRACE}","id":"0000000000000003","name":"q","duration":5,"tags":{"__proto__":"p","a":"2","z":"1"}}]`);
  });

  it('answers 404 for an unknown trace and an unknown route', async () => {
    const api = await start(new RecordingReader([spans]));
    const missing = await api.inject({ url: '/api/v2/trace/00000000000000ff' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ code: 'TRACE_NOT_FOUND' });
    const found = await api.inject({ url: `/api/v2/trace/${TRACE.toUpperCase()}` });
    expect(found.statusCode).toBe(200);
    // Trimmed first, as Zipkin's getTrace does.
    const spaced = await api.inject({ url: `/api/v2/trace/%20${TRACE}%20` });
    expect(spaced.statusCode).toBe(200);
    const route = await api.inject({ url: '/api/v2/nope' });
    expect(route.statusCode).toBe(404);
    expect(route.json()).toMatchObject({ code: 'NOT_FOUND' });
  });

  it("answers a Zipkin HTTP sender's POST of spans with where spans go instead", async () => {
    const api = await start(new RecordingReader([spans]));
    const posted = await api.inject({ method: 'POST', url: '/api/v2/spans', payload: [spans[0]] });
    expect(posted.statusCode).toBe(404);
    expect(posted.json()).toMatchObject({ code: 'NOT_FOUND', message: expect.stringMatching(/only reads.*RabbitMQ queue/) as unknown });
  });

  it('answers a trace id the router refuses (bad percent-escape, over 100 characters) as INVALID_PARAMETER naming traceId, with CORS headers', async () => {
    const reader = new RecordingReader([spans]);
    const cases = [
      '/api/v2/trace/%zz',
      '/api/v2/trace/ab%E0%A4%A',
      '/api/v2/trace/%zz/',
      '/api/v2/trace/%zz?limit=1',
      `/api/v2/trace/${'a'.repeat(101)}`,
      `/api/v2/trace/${'0'.repeat(200)}/`,
    ];
    for (const corsOrigins of ['*', ['http://ui.example'], 'off'] as const) {
      const api = await start(reader, { corsOrigins });
      for (const origin of ['http://ui.example', 'http://other.example']) {
        // The CORS headers of an ordinary 400 from the route are the reference.
        const reference = await api.inject({ url: '/api/v2/trace/nothex', headers: { origin } });
        expect(reference.json()).toMatchObject({ code: 'INVALID_PARAMETER', parameter: 'traceId' });
        for (const url of cases) {
          const response = await api.inject({ url, headers: { origin } });
          const context = { url, corsOrigins, origin };
          expect({ ...context, status: response.statusCode }).toEqual({ ...context, status: 400 });
          expect({ ...context, ...response.json<object>() }).toMatchObject({ ...context, code: 'INVALID_PARAMETER', parameter: 'traceId' });
          expect(response.json<{ message: string }>().message).toMatch(/^traceId: /);
          for (const header of ['access-control-allow-origin', 'vary']) {
            expect({ ...context, header, value: response.headers[header] }).toEqual({ ...context, header, value: reference.headers[header] });
          }
        }
      }
      await api.close();
    }
    app = undefined;
    expect(reader.calls).toEqual([]);
  });

  it('answers other paths the router refuses as NOT_FOUND, in the documented shape', async () => {
    const api = await start(new RecordingReader());
    for (const url of ['/api/v2/%zz', '/api/v2/trace/%zz/spans', `/api/v2/trace/${'a'.repeat(101)}/spans`, '/health/%zz']) {
      const response = await api.inject({ url, headers: { origin: 'http://ui.example' } });
      expect({ url, status: response.statusCode }).toEqual({ url, status: 404 });
      expect({ url, ...response.json<object>() }).toEqual({ url, code: 'NOT_FOUND', message: `no route GET ${url}` });
      expect(response.headers['access-control-allow-origin']).toBe('*');
    }
  });

  it('answers 504 when a read outlasts the query timeout', async () => {
    const reader = new RecordingReader();
    reader.delayMs = 2000;
    const api = await start(reader, { queryTimeoutMs: 100 });
    const started = Date.now();
    const response = await api.inject({ url: '/api/v2/services' });
    expect(response.statusCode).toBe(504);
    expect(response.json()).toMatchObject({ code: 'QUERY_TIMEOUT' });
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('maps storage errors without leaking their text', async () => {
    const reader = new RecordingReader();
    const api = await start(reader);
    reader.failWith = new StorageError({ code: 'connection', message: 'ECONNREFUSED 127.0.0.1:8123' });
    const down = await api.inject({ url: '/api/v2/services' });
    expect(down.statusCode).toBe(503);
    expect(down.json()).toMatchObject({ code: 'STORAGE_UNAVAILABLE' });
    expect(down.body).not.toContain('8123');
    reader.failWith = new StorageError({ code: 'server', message: 'Code: 62. DB::Exception: Syntax error' });
    const failed = await api.inject({ url: '/api/v2/services' });
    expect(failed.statusCode).toBe(500);
    expect(failed.body).not.toContain('DB::Exception');
  });

  it('requires the bearer token when configured, except for /health and preflight', async () => {
    const api = await start(new RecordingReader(), { bearerToken: 'tok-12345678' });
    expect((await api.inject({ url: '/api/v2/services' })).statusCode).toBe(401);
    expect((await api.inject({ url: '/api/v2/services', headers: { authorization: 'Bearer wrong-token' } })).statusCode).toBe(401);
    expect((await api.inject({ url: '/openapi.json' })).statusCode).toBe(401);
    const ok = await api.inject({ url: '/api/v2/services', headers: { authorization: 'Bearer tok-12345678' } });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual(['backend', 'frontend']);
    expect((await api.inject({ url: '/health' })).statusCode).toBe(200);
    const preflight = await api.inject({
      method: 'OPTIONS',
      url: '/api/v2/services',
      headers: { origin: 'http://ui.example', 'access-control-request-method': 'GET' },
    });
    expect(preflight.statusCode).toBe(204);
  });

  it('sends CORS headers for configured origins only, and none when off', async () => {
    const listed = await start(new RecordingReader(), { corsOrigins: ['http://ui.example'] });
    const allowed = await listed.inject({ url: '/api/v2/services', headers: { origin: 'http://ui.example' } });
    expect(allowed.headers['access-control-allow-origin']).toBe('http://ui.example');
    const other = await listed.inject({ url: '/api/v2/services', headers: { origin: 'http://evil.example' } });
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
    await listed.close();
    const any = await start(new RecordingReader());
    expect((await any.inject({ url: '/api/v2/services', headers: { origin: 'http://x.example' } })).headers['access-control-allow-origin']).toBe('*');
    await any.close();
    const off = await start(new RecordingReader(), { corsOrigins: 'off' });
    expect((await off.inject({ url: '/api/v2/services', headers: { origin: 'http://x.example' } })).headers['access-control-allow-origin']).toBeUndefined();
  });

  it('reports ClickHouse health', async () => {
    const api = await buildApp({ reader: new RecordingReader(), config, ping: () => Promise.resolve(false) });
    app = api;
    const response = await api.inject({ url: '/health' });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toEqual({ status: 'DOWN', clickhouse: 'DOWN' });
  });

  it('describes every Zipkin endpoint in /openapi.json', async () => {
    const api = await start(new RecordingReader());
    const document = (await api.inject({ url: '/openapi.json' })).json<{ openapi: string; paths: Record<string, Record<string, unknown>> }>();
    expect(document.openapi).toBe('3.0.3');
    for (const path of [
      '/api/v2/services',
      '/api/v2/spans',
      '/api/v2/remoteServices',
      '/api/v2/traces',
      '/api/v2/trace/{traceId}',
      '/api/v2/traceMany',
      '/api/v2/dependencies',
      '/api/v2/autocompleteKeys',
      '/api/v2/autocompleteValues',
      '/health',
    ]) {
      expect(document.paths[path]?.['get'], path).toBeDefined();
    }
    const schemas = (document as unknown as { components: { schemas: Record<string, unknown> } }).components.schemas;
    for (const name of ['Span', 'Endpoint', 'Annotation', 'Trace', 'ListOfTraces', 'DependencyLink', 'Error']) {
      expect(schemas[name], name).toBeDefined();
    }
    expect(JSON.stringify(document.paths['/api/v2/traces'])).toContain('#/components/schemas/ListOfTraces');
    expect(JSON.stringify(document.paths['/api/v2/trace/{traceId}'])).toContain('#/components/schemas/Trace');
    const traces = document.paths['/api/v2/traces']?.['get'] as { parameters: Array<{ name: string }> };
    expect(traces.parameters.map((p) => p.name).sort()).toEqual(
      ['annotationQuery', 'endTs', 'limit', 'lookback', 'maxDuration', 'minDuration', 'remoteServiceName', 'serviceName', 'spanName'].sort(),
    );
  });
  it('mounts as a plugin in a server of its own, under a prefix, next to other routes', async () => {
    const host = Fastify({ routerOptions: { ignoreTrailingSlash: true }, return503OnClosing: false });
    host.get('/status', () => ({ mine: true }));
    await host.register(queryApi, { prefix: '/zipkin', reader: new RecordingReader([spans]), config, now: () => NOW });
    try {
      expect((await host.inject({ url: '/status' })).json()).toEqual({ mine: true });
      expect((await host.inject({ url: '/zipkin/api/v2/services' })).json()).toEqual(['backend', 'frontend']);
      expect((await host.inject({ url: '/api/v2/services' })).statusCode).toBe(404);
      const bad = await host.inject({ url: '/zipkin/api/v2/traces?limit=0' });
      expect(bad.statusCode).toBe(400);
      expect(bad.json()).toMatchObject({ code: 'INVALID_PARAMETER', parameter: 'limit' });
      expect((await host.inject({ url: '/zipkin/api/v2/trace/463ac35c9f6413ad' })).json()).toHaveLength(2);
      const document = (await host.inject({ url: '/zipkin/openapi.json' })).json<{ paths: Record<string, unknown> }>();
      expect(document.paths['/zipkin/api/v2/services']).toBeDefined();
      expect(document.paths['/status']).toBeUndefined();
      // The API's not-found handler answers under its prefix only; the host keeps fastify's default.
      const inside = await host.inject({ url: '/zipkin/api/v2/nope' });
      expect(inside.statusCode).toBe(404);
      expect(inside.json()).toEqual({ code: 'NOT_FOUND', message: 'no route GET /zipkin/api/v2/nope' });
      const outside = await host.inject({ url: '/nope' });
      expect(outside.statusCode).toBe(404);
      expect(outside.json()).toEqual({ statusCode: 404, error: 'Not Found', message: 'Route GET:/nope not found' });
      // Its hooks (CORS here) stay inside its scope too.
      const origin = { origin: 'http://ui.example' };
      expect((await host.inject({ url: '/zipkin/api/v2/services', headers: origin })).headers['access-control-allow-origin']).toBe('*');
      expect((await host.inject({ url: '/status', headers: origin })).headers['access-control-allow-origin']).toBeUndefined();
    } finally {
      await host.close();
    }
  });

  it('gives a host server the same answers to refused trace ids under the prefix', async () => {
    const host = Fastify({
      routerOptions: { ignoreTrailingSlash: true },
      return503OnClosing: false,
      frameworkErrors: queryApiFrameworkErrors({ config, prefix: '/zipkin' }),
    });
    await host.register(queryApi, { prefix: '/zipkin', reader: new RecordingReader(), config });
    try {
      for (const url of ['/zipkin/api/v2/trace/%zz', `/zipkin/api/v2/trace/${'a'.repeat(101)}`]) {
        const response = await host.inject({ url, headers: { origin: 'http://ui.example' } });
        expect({ url, status: response.statusCode }).toEqual({ url, status: 400 });
        expect({ url, ...response.json<object>() }).toMatchObject({ url, code: 'INVALID_PARAMETER', parameter: 'traceId' });
        expect(response.headers['access-control-allow-origin']).toBe('*');
      }
      expect((await host.inject({ url: '/api/v2/trace/%zz' })).json()).toMatchObject({ code: 'NOT_FOUND' });
    } finally {
      await host.close();
    }
  });

  it('lets /health through without the bearer token under a prefix too', async () => {
    const host = Fastify();
    await host.register(queryApi, { prefix: '/zipkin', reader: new RecordingReader(), config: { ...config, bearerToken: 'tok-12345678' } });
    try {
      expect((await host.inject({ url: '/zipkin/health?probe=1' })).statusCode).toBe(200);
      expect((await host.inject({ url: '/zipkin/api/v2/services' })).statusCode).toBe(401);
    } finally {
      await host.close();
    }
  });

  it('finishes in-flight requests on close and answers later ones on the same connection with SHUTTING_DOWN', async () => {
    // Ordered by signals, not sleeps: the first read is held at a gate until the second request has been answered.
    const reader = new RecordingReader();
    const firstCall = deferred();
    const gate = deferred();
    const closing = deferred();
    const secondAnswered = deferred();
    reader.gate = gate.promise;
    reader.onCall = () => {
      if (reader.calls.length === 1) firstCall.resolve();
      // Only a request let past the SHUTTING_DOWN hook gets here: fail rather than wait at the gate.
      else secondAnswered.reject(new Error('a request sent after close() reached the reader'));
    };
    const served = await start(reader);
    // Added after the API's own preClose hook, so it runs once the API knows it is closing.
    served.addHook('preClose', (done) => {
      closing.resolve();
      done();
    });
    // HTTP/1.1 sends pipelined responses in order, so the 503 reaches the socket only after the
    // first response: wait for the server to send it instead.
    served.addHook('onSend', async (_request, reply, payload) => {
      if (reply.statusCode === 503) secondAnswered.resolve();
      return payload;
    });
    await served.listen({ port: 0, host: '127.0.0.1' });
    const { port } = served.server.address() as AddressInfo;
    // A keep-alive connection: the first request is in flight when close() begins, the second comes after.
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    const ended = new Promise((resolve) => socket.once('close', resolve));
    const request = 'GET /api/v2/services HTTP/1.1\r\nHost: x\r\n\r\n';
    socket.write(request);
    await firstCall.promise;
    const closed = served.close();
    await closing.promise;
    socket.write(request);
    try {
      await secondAnswered.promise;
    } finally {
      gate.resolve(); // on failure too, so that close() can finish
    }
    await ended;
    await closed;
    app = undefined;
    const responses = received.split(/(?=HTTP\/1\.1 )/);
    expect(responses).toHaveLength(2);
    expect(responses[0]).toMatch(/^HTTP\/1\.1 200 /);
    expect(responses[0]).toContain('["backend","frontend"]');
    expect(responses[1]).toMatch(/^HTTP\/1\.1 503 /);
    expect(JSON.parse(responses[1]?.split('\r\n\r\n')[1] ?? '')).toEqual({
      code: 'SHUTTING_DOWN',
      message: 'the server is shutting down; try again',
    });
    expect(reader.calls).toHaveLength(1);
  });
});

/** A reader whose /services answer is the names given, to size an answer to the byte. */
class NamesReader extends RecordingReader {
  constructor(private readonly names: string[]) {
    super();
  }
  override getServiceNames() {
    return Promise.resolve(this.names);
  }
}

/** One trace of `count` spans: its JSON is about 150 bytes a span. */
function bigTrace(count: number): Span[] {
  return Array.from({ length: count }, (_, i) => ({
    traceId: TRACE,
    id: (i + 16).toString(16).padStart(16, '0'),
    kind: 'SERVER',
    name: `get /items/${i}`,
    localEndpoint: { serviceName: 'backend' },
    tags: { 'http.path': `/items/${i}` },
  }));
}

/** The body as a client that sent `accept-encoding` reads it: gunzipped when the answer says gzip. */
function decoded(response: { headers: Record<string, unknown>; rawPayload: Buffer }): unknown {
  const encoding = response.headers['content-encoding'];
  if (encoding !== undefined && encoding !== 'gzip') throw new Error(`unexpected content-encoding ${JSON.stringify(encoding)}`);
  return JSON.parse((encoding === 'gzip' ? gunzipSync(response.rawPayload) : response.rawPayload).toString('utf8'));
}

const gzip = { 'accept-encoding': 'gzip' };

describe('response compression (as Zipkin: JSON answers of 2 KiB or more)', () => {
  it('gzips a /traces answer over 2 KiB for a client that accepts gzip, and it decodes to the same JSON', async () => {
    const api = await start(new RecordingReader([bigTrace(40)]));
    const plain = await api.inject({ url: '/api/v2/traces' });
    expect(plain.rawPayload.length).toBeGreaterThan(2048);
    const compressed = await api.inject({ url: '/api/v2/traces', headers: gzip });
    expect(compressed.statusCode).toBe(200);
    expect(compressed.headers['content-encoding']).toBe('gzip');
    expect(compressed.headers['content-type']).toMatch(/^application\/json/);
    expect(String(compressed.headers['vary'])).toMatch(/accept-encoding/i);
    expect(compressed.rawPayload.length).toBeLessThan(plain.rawPayload.length / 2);
    expect(gunzipSync(compressed.rawPayload).toString('utf8')).toBe(plain.body);
    expect(decoded(compressed)).toEqual(plain.json());
  });

  it('compresses from 2048 bytes on: a 2047-byte answer is sent as is', async () => {
    // ["<n characters>"] is n + 4 bytes.
    const atThreshold = await start(new NamesReader(['x'.repeat(2044)]));
    const compressed = await atThreshold.inject({ url: '/api/v2/services', headers: gzip });
    expect(compressed.headers['content-encoding']).toBe('gzip');
    expect(decoded(compressed)).toEqual(['x'.repeat(2044)]);
    await atThreshold.close();
    const below = await start(new NamesReader(['x'.repeat(2043)]));
    const small = await below.inject({ url: '/api/v2/services', headers: gzip });
    expect(small.rawPayload.length).toBe(2047);
    expect(small.headers['content-encoding']).toBeUndefined();
    expect(small.json()).toEqual(['x'.repeat(2043)]);
  });

  it('sends a small answer uncompressed, and nothing compressed to a client that does not accept it', async () => {
    const api = await start(new RecordingReader([bigTrace(40)]));
    const small = await api.inject({ url: '/api/v2/services', headers: gzip });
    expect(small.headers['content-encoding']).toBeUndefined();
    expect(small.json()).toEqual(['backend', 'frontend']);
    for (const headers of [{}, { 'accept-encoding': 'identity' }]) {
      const large = await api.inject({ url: '/api/v2/traces', headers });
      expect(large.headers['content-encoding']).toBeUndefined();
      expect(large.json<Span[][]>()[0]).toHaveLength(40);
    }
  });

  it('keeps error answers readable, small ones as is and large ones gzipped', async () => {
    const api = await start(new RecordingReader());
    const bad = await api.inject({ url: '/api/v2/traces?limit=abc', headers: gzip });
    expect(bad.statusCode).toBe(400);
    expect(bad.headers['content-encoding']).toBeUndefined();
    expect(bad.json()).toMatchObject({ code: 'INVALID_PARAMETER', parameter: 'limit' });
    // The message quotes the term, so this 400 is over 2 KiB.
    const term = `=${'x'.repeat(3000)}`;
    const large = await api.inject({ url: `/api/v2/traces?annotationQuery=${term}`, headers: gzip });
    expect(large.statusCode).toBe(400);
    expect(large.headers['content-encoding']).toBe('gzip');
    expect(decoded(large)).toMatchObject({ code: 'INVALID_PARAMETER', parameter: 'annotationQuery' });
    const missing = await api.inject({ url: `/api/v2/${'n'.repeat(3000)}`, headers: gzip });
    expect(missing.statusCode).toBe(404);
    expect(decoded(missing)).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('keeps the CORS headers on compressed answers, Vary naming both Origin and accept-encoding', async () => {
    const any = await start(new RecordingReader([bigTrace(40)]));
    const wildcard = await any.inject({ url: '/api/v2/traces', headers: { ...gzip, origin: 'http://ui.example' } });
    expect(wildcard.headers['content-encoding']).toBe('gzip');
    expect(wildcard.headers['access-control-allow-origin']).toBe('*');
    await any.close();
    const listed = await start(new RecordingReader([bigTrace(40)]), { corsOrigins: ['http://ui.example'] });
    const response = await listed.inject({ url: '/api/v2/traces', headers: { ...gzip, origin: 'http://ui.example' } });
    expect(response.headers['content-encoding']).toBe('gzip');
    expect(response.headers['access-control-allow-origin']).toBe('http://ui.example');
    const vary = String(response.headers['vary']).toLowerCase().split(/\s*,\s*/);
    expect(vary).toEqual(expect.arrayContaining(['origin', 'accept-encoding']));
    expect(decoded(response)).toEqual([bigTrace(40)]);
  });

  it('answers HEAD with no body and the headers of the uncompressed answer, whatever the client accepts', async () => {
    // fastify's HEAD route drops the body before the compression hook sees it: the headers then
    // describe the identity answer, which HTTP allows.
    const api = await start(new RecordingReader([bigTrace(40)]));
    const get = await api.inject({ url: '/api/v2/traces' });
    for (const headers of [gzip, {}]) {
      const head = await api.inject({ method: 'HEAD', url: '/api/v2/traces', headers });
      expect(head.statusCode).toBe(200);
      expect(head.rawPayload.length).toBe(0);
      expect(head.headers['content-type']).toMatch(/^application\/json/);
      expect(head.headers['content-encoding']).toBeUndefined();
      expect(head.headers['content-length']).toBe(String(get.rawPayload.length));
    }
  });

  it('compresses the routes of the plugin only, not the rest of a host server, and works beside a host that compresses itself', async () => {
    const big = { filler: 'y'.repeat(4000) };
    const host = Fastify();
    host.get('/status', () => big);
    await host.register(queryApi, { prefix: '/zipkin', reader: new RecordingReader([bigTrace(40)]), config, now: () => NOW });
    try {
      expect((await host.inject({ url: '/zipkin/api/v2/traces', headers: gzip })).headers['content-encoding']).toBe('gzip');
      const own = await host.inject({ url: '/status', headers: gzip });
      expect(own.headers['content-encoding']).toBeUndefined();
      expect(own.json()).toEqual(big);
    } finally {
      await host.close();
    }
    // A host that registered @fastify/compress itself: its settings apply, and the answer is compressed once.
    const compressing = Fastify();
    await compressing.register(fastifyCompress, { encodings: ['gzip'], threshold: 100 });
    await compressing.register(queryApi, { prefix: '/zipkin', reader: new RecordingReader([bigTrace(40)]), config, now: () => NOW });
    try {
      const response = await compressing.inject({ url: '/zipkin/api/v2/traces', headers: { 'accept-encoding': 'br, gzip' } });
      expect(response.headers['content-encoding']).toBe('gzip');
      expect(decoded(response)).toEqual([bigTrace(40)]);
      const small = await compressing.inject({ url: '/zipkin/api/v2/services', headers: gzip });
      expect(small.statusCode).toBe(200);
      expect(decoded(small)).toEqual(['backend', 'frontend']);
    } finally {
      await compressing.close();
    }
  });
});

describe('/openapi.json', () => {
  type Parameter = { name: string; schema?: { default?: unknown } };
  type Document = {
    paths: Record<string, { get: { parameters?: Parameter[]; security?: unknown } }>;
    security?: unknown;
    components: { securitySchemes?: Record<string, unknown> };
  };

  it("documents limit's default, the configured one", async () => {
    for (const defaultLimit of [10, 25]) {
      const api = await start(new RecordingReader(), { defaultLimit });
      const document = (await api.inject({ url: '/openapi.json' })).json<Document>();
      const limit = document.paths['/api/v2/traces']?.get.parameters?.find((p) => p.name === 'limit');
      expect(limit?.schema?.default).toBe(defaultLimit);
      // The documented default is the one applied.
      const reader = new RecordingReader();
      await api.close();
      const served = await start(reader, { defaultLimit });
      await served.inject({ url: '/api/v2/traces' });
      expect((reader.calls[0]?.[1] as TraceQuery).limit).toBe(defaultLimit);
      await served.close();
    }
    app = undefined;
  });

  it('declares and applies the bearer scheme when a token is configured, /health excepted, and none without one', async () => {
    const secured = await start(new RecordingReader(), { bearerToken: 'tok-12345678' });
    const document = (await secured.inject({ url: '/openapi.json', headers: { authorization: 'Bearer tok-12345678' } })).json<Document>();
    expect(document.components.securitySchemes).toEqual({ bearer: { type: 'http', scheme: 'bearer' } });
    expect(document.security).toEqual([{ bearer: [] }]);
    expect(document.paths['/health']?.get.security).toEqual([]);
    expect(document.paths['/api/v2/services']?.get.security).toBeUndefined();
    await secured.close();
    const open = await start(new RecordingReader());
    const plain = (await open.inject({ url: '/openapi.json' })).json<Document>();
    expect(plain.security).toBeUndefined();
    expect(plain.components.securitySchemes).toBeUndefined();
    expect(plain.paths['/health']?.get.security).toBeUndefined();
  });
});
