import { describe, expect, it } from 'vitest';
import { DependencyLinker, type LinkSpan } from './dependency-linker.js';
import type { DependencyLink } from './trace-reader.js';

function span(partial: Partial<LinkSpan> & Pick<LinkSpan, 'id'>): LinkSpan {
  return { traceId: 't', parentId: '', kind: '', service: '', remoteService: '', error: false, ...partial };
}

/**
 * A row shaped as Zipkin's DependencyLinkerTest builds its spans: (trace, parent, id, kind, local
 * service, remote service, error); null stands for "absent", as it does there.
 */
function z(
  traceId: string,
  parentId: string | null,
  id: string,
  kind: LinkSpan['kind'] | null,
  service: string | null,
  remoteService: string | null,
  error: boolean,
): LinkSpan {
  return { traceId, id, parentId: parentId ?? '', kind: kind ?? '', service: service ?? '', remoteService: remoteService ?? '', error };
}

function linksOf(...traces: LinkSpan[][]): DependencyLink[] {
  const linker = new DependencyLinker();
  for (const trace of traces) linker.putTrace(trace);
  return linker.links();
}

/** A link as DependencyLinker.links() returns it: errorCount left out when zero. */
function link(parent: string, child: string, callCount: number, errorCount = 0): DependencyLink {
  return errorCount > 0 ? { parent, child, callCount, errorCount } : { parent, child, callCount };
}

describe('DependencyLinker', () => {
  it('counts a client/server call once, from either reporting style', () => {
    const linker = new DependencyLinker();
    // Shared span: client and server halves with the same id.
    linker.putTrace([
      span({ id: 'a', kind: 'SERVER', service: 'web' }),
      span({ id: 'b', parentId: 'a', kind: 'CLIENT', service: 'web', remoteService: 'api' }),
      span({ id: 'b', parentId: 'a', kind: 'SERVER', service: 'api' }),
    ]);
    // Child-span style: the server half has its own id under the client span.
    linker.putTrace([
      span({ traceId: 'u', id: 'c', kind: 'CLIENT', service: 'web' }),
      span({ traceId: 'u', id: 'd', parentId: 'c', kind: 'SERVER', service: 'api', error: true }),
    ]);
    expect(linker.links()).toEqual([{ parent: 'web', child: 'api', callCount: 2, errorCount: 1 }]);
  });

  it('links an uninstrumented callee from the client span remote service', () => {
    const linker = new DependencyLinker();
    linker.putTrace([
      span({ id: 'a', kind: 'SERVER', service: 'api' }),
      span({ id: 'b', parentId: 'a', kind: 'CLIENT', service: 'api', remoteService: 'mysql', error: true }),
    ]);
    expect(linker.links()).toEqual([{ parent: 'api', child: 'mysql', callCount: 1, errorCount: 1 }]);
  });

  it('links a producer to its broker and the broker to its consumer', () => {
    const linker = new DependencyLinker();
    // The consumer is a child of the producer: both halves link, each to the broker.
    linker.putTrace([
      span({ id: 'p', kind: 'PRODUCER', service: 'orders', remoteService: 'rabbitmq' }),
      span({ id: 'c', parentId: 'p', kind: 'CONSUMER', service: 'billing', remoteService: 'rabbitmq', error: true }),
    ]);
    expect(linker.links()).toEqual([
      { parent: 'orders', child: 'rabbitmq', callCount: 1 },
      { parent: 'rabbitmq', child: 'billing', callCount: 1, errorCount: 1 },
    ]);
  });

  it('keeps one of two parentless spans under one id, as Zipkin tree building does', () => {
    // Producer and consumer halves under one id, neither a server: Zipkin takes the first root
    // (in span order: the consumer's service sorts first) and drops the other from the tree.
    expect(
      linksOf([
        span({ id: 'm', kind: 'PRODUCER', service: 'orders', remoteService: 'rabbitmq' }),
        span({ id: 'm', kind: 'CONSUMER', service: 'billing', remoteService: 'rabbitmq' }),
      ]),
    ).toEqual([link('rabbitmq', 'billing', 1)]);
  });

  it('attaches spans whose parent is missing to the root, and links self-calls', () => {
    expect(
      linksOf([
        span({ id: 'p', kind: 'PRODUCER', service: 'orders' }),
        span({ id: 'c', parentId: 'p', kind: 'CONSUMER', service: 'billing' }),
        span({ id: 's', parentId: 'c', kind: 'SERVER', service: 'billing' }),
        span({ id: 'o', parentId: 'missing', kind: 'SERVER', service: 'lonely' }),
      ]),
    ).toEqual([link('billing', 'billing', 1), link('orders', 'lonely', 1)]);
  });

  it('uses the server span remote service as the caller when given', () => {
    const linker = new DependencyLinker();
    linker.putTrace([span({ id: 'a', kind: 'SERVER', service: 'api', remoteService: 'mobile' })]);
    expect(linker.links()).toEqual([{ parent: 'mobile', child: 'api', callCount: 1 }]);
  });

  describe('merges the pieces of one span before linking (Trace.merge)', () => {
    it('counts a server half reported in two pieces once, with the late piece’s error', () => {
      const pieces = [
        span({ id: 'a', kind: 'SERVER', service: 'frontend' }),
        span({ id: 'b', parentId: 'a', kind: 'CLIENT', service: 'frontend', remoteService: 'backend' }),
        span({ id: 'b', parentId: 'a', kind: 'SERVER', service: 'backend' }),
        span({ id: 'b', parentId: 'a', kind: 'SERVER', service: 'backend', remoteService: 'frontend', error: true }),
      ];
      expect(linksOf(pieces)).toEqual([link('frontend', 'backend', 1, 1)]);
      // Child-span style: the server's own id, in two pieces.
      expect(
        linksOf([
          span({ id: 'c', kind: 'CLIENT', service: 'frontend' }),
          span({ id: 'd', parentId: 'c', kind: 'SERVER', service: 'backend' }),
          span({ id: 'd', parentId: 'c', kind: 'SERVER', service: 'backend', remoteService: 'frontend-lb', error: true }),
        ]),
      ).toEqual([link('frontend', 'backend', 1, 1)]);
    });

    it('merges a late piece that carries neither kind nor parent into its span', () => {
      expect(
        linksOf([
          span({ id: 'a', kind: 'SERVER', service: 'frontend' }),
          span({ id: 'b', parentId: 'a', kind: 'CLIENT', service: 'frontend', remoteService: 'mysql' }),
          span({ id: 'b', service: 'frontend', error: true }),
        ]),
      ).toEqual([link('frontend', 'mysql', 1, 1)]);
    });

    it('merges a kind-less piece naming the server of a shared id into the server half', () => {
      expect(
        linksOf([
          span({ id: 'a', kind: 'SERVER', service: 'frontend' }),
          span({ id: 'b', parentId: 'a', kind: 'CLIENT', service: 'frontend', remoteService: 'backend' }),
          span({ id: 'b', parentId: 'a', kind: 'SERVER', service: 'backend' }),
          span({ id: 'b', service: 'backend', error: true }),
        ]),
      ).toEqual([link('frontend', 'backend', 1, 1)]);
    });

    it('counts a trace read twice (a replay) once', () => {
      const trace = [
        span({ id: 'a', kind: 'SERVER', service: 'frontend' }),
        span({ id: 'b', parentId: 'a', kind: 'CLIENT', service: 'frontend', remoteService: 'backend', error: true }),
        span({ id: 'c', parentId: 'b', kind: 'SERVER', service: 'backend' }),
        span({ id: 'd', parentId: 'c', kind: 'CLIENT', service: 'backend', remoteService: 'mysql' }),
      ];
      expect(linksOf([...trace, ...trace])).toEqual(linksOf(trace));
      expect(linksOf(trace)).toEqual([link('backend', 'mysql', 1), link('frontend', 'backend', 1, 1)]);
    });

    it('names the caller of a server from its remote ancestor, not its own remote endpoint', () => {
      expect(
        linksOf([
          span({ id: 'a', kind: 'SERVER', service: 'frontend' }),
          span({ id: 'b', parentId: 'a', kind: 'CLIENT', service: 'frontend' }),
          span({ id: 'c', parentId: 'b', kind: 'SERVER', service: 'backend', remoteService: 'frontend-lb' }),
        ]),
      ).toEqual([link('frontend', 'backend', 1)]);
    });

    it('counts a client-side error only when the server is a child span, not a shared one', () => {
      const client = span({ id: 'b', parentId: 'a', kind: 'CLIENT', service: 'frontend', error: true });
      const root = span({ id: 'a', kind: 'SERVER', service: 'frontend' });
      // Separate ids: the server's parent is the erroring client.
      expect(linksOf([root, client, span({ id: 'c', parentId: 'b', kind: 'SERVER', service: 'backend' })])).toEqual([
        link('frontend', 'backend', 1, 1),
      ]);
      // Shared id: the server's parent is the client's parent, so the client's error is not looked at.
      expect(linksOf([root, client, span({ id: 'b', parentId: 'a', kind: 'SERVER', service: 'backend' })])).toEqual([
        link('frontend', 'backend', 1),
      ]);
    });

    it('ignores a span whose parent id is its own id as the parent link', () => {
      expect(
        linksOf([
          span({ id: 'a', parentId: 'a', kind: 'SERVER', service: 'frontend' }),
          span({ id: 'b', parentId: 'a', kind: 'CLIENT', service: 'frontend', remoteService: 'db' }),
        ]),
      ).toEqual([link('frontend', 'db', 1)]);
    });
  });

  // Zipkin's DependencyLinkerTest (zipkin2.internal), each case with the links it asserts. Its
  // `shared` flags are left out: span_index keeps none, so the linker infers them (see there).
  describe("Zipkin's DependencyLinkerTest", () => {
    // Reported in reverse order, as is more likely.
    const TRACE = [
      z('a', 'b', 'c', 'CLIENT', 'app', 'db', true),
      z('a', 'a', 'b', 'SERVER', 'app', 'web', false),
      z('a', 'a', 'b', 'CLIENT', 'web', 'app', false),
      z('a', null, 'a', 'SERVER', 'web', null, false),
    ];

    it('baseCase', () => {
      expect(new DependencyLinker().links()).toEqual([]);
    });

    it('linksSpans', () => {
      expect(linksOf(TRACE)).toEqual([link('app', 'db', 1, 1), link('web', 'app', 1)]);
    });

    it('traceIdIsOpaque', () => {
      expect(linksOf(TRACE.map((s) => ({ ...s, traceId: '123' })))).toEqual(linksOf(TRACE));
    });

    it('linksSpans_serverMissingParentId', () => {
      const trace = [
        z('a', null, 'a', 'SERVER', 'arn', null, false),
        z('a', 'a', 'b', 'CLIENT', 'arn', 'link', false),
        // the server's parent id was not propagated
        z('a', null, 'b', 'SERVER', 'link', 'arn', false),
      ].reverse();
      expect(linksOf(trace)).toEqual([link('arn', 'link', 1)]);
    });

    it('lateParentIdInSharedSpan', () => {
      const withLateParent = [...TRACE];
      withLateParent[2] = { ...TRACE[2]!, parentId: '' };
      expect(linksOf(withLateParent)).toEqual([link('app', 'db', 1, 1), link('web', 'app', 1)]);
    });

    it('lostChildAndNoParentIdInSharedSpan', () => {
      const lostClientOrphan = [...TRACE];
      lostClientOrphan[2] = { ...TRACE[2]!, parentId: '' };
      lostClientOrphan.splice(1, 1);
      expect(linksOf(lostClientOrphan)).toEqual([link('app', 'db', 1, 1), link('web', 'app', 1)]);
    });

    it('messagingSpansDontLinkWithoutBroker_consumer', () => {
      const trace = [z('a', null, 'a', 'PRODUCER', 'producer', null, false), z('a', 'a', 'b', 'CONSUMER', 'consumer', 'kafka', false)];
      expect(linksOf(trace)).toEqual([link('kafka', 'consumer', 1)]);
    });

    it('messagingSpansDontLinkWithoutBroker_producer', () => {
      const trace = [z('a', null, 'a', 'PRODUCER', 'producer', 'kafka', false), z('a', 'a', 'b', 'CONSUMER', 'consumer', null, false)];
      expect(linksOf(trace)).toEqual([link('producer', 'kafka', 1)]);
    });

    it('messagingWithBroker_both_sides_same', () => {
      const trace = [z('a', null, 'a', 'PRODUCER', 'producer', 'kafka', false), z('a', 'a', 'b', 'CONSUMER', 'consumer', 'kafka', false)];
      expect(linksOf(trace)).toEqual([link('kafka', 'consumer', 1), link('producer', 'kafka', 1)]);
    });

    it('messagingWithBroker_different', () => {
      const trace = [z('a', null, 'a', 'PRODUCER', 'producer', 'kafka1', false), z('a', 'a', 'b', 'CONSUMER', 'consumer', 'kafka2', false)];
      expect(linksOf(trace)).toEqual([link('kafka2', 'consumer', 1), link('producer', 'kafka1', 1)]);
    });

    it('messagingWithoutBroker_noLinks', () => {
      const trace = [z('a', null, 'a', 'PRODUCER', 'producer', null, false), z('a', 'a', 'b', 'CONSUMER', 'consumer', null, false)];
      expect(linksOf(trace)).toEqual([]);
    });

    it('producerLinksToServer_childSpan', () => {
      const trace = [z('a', null, 'a', 'PRODUCER', 'producer', null, false), z('a', 'a', 'b', 'SERVER', 'server', null, false)];
      expect(linksOf(trace)).toEqual([link('producer', 'server', 1)]);
    });

    it('clientDoesntLinkToConsumer_child', () => {
      const trace = [z('a', null, 'a', 'CLIENT', 'client', null, false), z('a', 'a', 'b', 'CONSUMER', 'consumer', null, false)];
      expect(linksOf(trace)).toEqual([]);
    });

    it('linksSpansDirectedByKind', () => {
      for (const root of [z('a', null, 'a', 'SERVER', 'server', 'client', false), z('a', null, 'a', 'CLIENT', 'client', 'server', false)]) {
        expect(linksOf([root])).toEqual([link('client', 'server', 1)]);
      }
    });

    it('callsAgainstTheSameLinkIncreasesCallCount_span', () => {
      const trace = [
        z('a', null, 'a', 'SERVER', 'client', null, false),
        z('a', 'a', 'b', 'CLIENT', null, 'server', false),
        z('a', 'a', 'c', 'CLIENT', null, 'server', false),
      ];
      expect(linksOf(trace)).toEqual([link('client', 'server', 2)]);
    });

    it('callsAgainstTheSameLinkIncreasesCallCount_trace', () => {
      const trace = [z('a', null, 'a', 'SERVER', 'client', null, false), z('a', 'a', 'b', 'CLIENT', null, 'server', false)];
      expect(linksOf(trace, trace)).toEqual([link('client', 'server', 2)]);
    });

    it('singleHostSpansResultInASingleCallCount', () => {
      const trace = [z('a', null, 'a', 'CLIENT', 'client', null, false), z('a', 'a', 'b', 'SERVER', 'server', null, false)];
      expect(linksOf(trace)).toEqual([link('client', 'server', 1)]);
    });

    it('singleHostSpansResultInASingleErrorCount', () => {
      const trace = [z('a', null, 'a', 'CLIENT', 'client', null, true), z('a', 'a', 'b', 'SERVER', 'server', null, true)];
      expect(linksOf(trace)).toEqual([link('client', 'server', 1, 1)]);
    });

    it('singleHostSpansResultInASingleErrorCount_sameId', () => {
      const trace = [z('a', null, 'a', 'CLIENT', 'client', null, true), z('a', null, 'a', 'SERVER', 'server', null, true)];
      expect(linksOf(trace)).toEqual([link('client', 'server', 1, 1)]);
    });

    it('singleHostSpansResultInASingleCallCount_defersNameToServer', () => {
      const trace = [z('a', null, 'a', 'CLIENT', 'client', 'server', false), z('a', 'a', 'b', 'SERVER', 'server', null, false)];
      expect(linksOf(trace)).toEqual([link('client', 'server', 1)]);
    });

    it('singleHostSpans_multipleChildren', () => {
      const trace = [
        z('a', null, 'a', 'CLIENT', 'client', null, false),
        z('a', 'a', 'b', 'SERVER', 'server', 'client', true),
        z('a', 'a', 'c', 'SERVER', 'server', 'client', false),
      ];
      expect(linksOf(trace)).toEqual([link('client', 'server', 2, 1)]);
    });

    it('singleHostSpans_multipleChildren_defersNameToServer', () => {
      const trace = [
        z('a', null, 'a', 'CLIENT', 'client', 'server', false),
        z('a', 'a', 'b', 'SERVER', 'server', null, false),
        z('a', 'a', 'c', 'SERVER', 'server', null, false),
      ];
      expect(linksOf(trace)).toEqual([link('client', 'server', 2)]);
    });

    it('intermediatedClientSpansMissingLocalServiceNameLinkToNearestServer', () => {
      const trace = [
        z('a', null, 'a', 'SERVER', 'client', null, false),
        z('a', 'a', 'b', null, null, null, false),
        // possibly a local fan-out span
        z('a', 'b', 'c', 'CLIENT', 'server', null, false),
        z('a', 'b', 'd', 'CLIENT', 'server', null, false),
      ];
      expect(linksOf(trace)).toEqual([link('client', 'server', 2)]);
    });

    it('errorsOnUninstrumentedLinks', () => {
      const trace = [
        z('a', null, 'a', 'SERVER', 'client', null, false),
        z('a', 'a', 'b', null, null, null, false),
        // no remote here, so no error count
        z('a', 'b', 'c', 'CLIENT', 'server', null, true),
        z('a', 'b', 'd', 'CLIENT', 'server', null, true),
      ];
      expect(linksOf(trace)).toEqual([link('client', 'server', 2)]);
    });

    it('errorsOnInstrumentedLinks', () => {
      const trace = [
        z('a', null, 'a', 'SERVER', 'foo', null, false),
        z('a', 'a', 'b', null, null, null, false),
        z('a', 'b', 'c', 'CLIENT', 'bar', 'baz', true),
        z('a', 'b', 'd', 'CLIENT', 'bar', 'baz', false),
      ];
      expect(linksOf(trace)).toEqual([link('bar', 'baz', 2, 1), link('foo', 'bar', 2)]);
    });

    it('linkWithErrorIsLogged (the error link it logs)', () => {
      expect(linksOf([z('a', 'b', 'c', 'CLIENT', 'foo', 'bar', true)])).toEqual([link('foo', 'bar', 1, 1)]);
    });

    it('linksLoopbackSpans', () => {
      for (const root of [z('a', null, 'a', 'SERVER', 'service', 'service', false), z('b', null, 'b', 'CLIENT', 'service', 'service', false)]) {
        expect(linksOf([root])).toEqual([link('service', 'service', 1)]);
      }
    });

    it('noSpanKindTreatedSameAsClient', () => {
      const trace = [
        z('a', null, 'a', null, 'some-client', 'web', false),
        z('a', 'a', 'b', null, 'web', 'app', false),
        z('a', 'b', 'c', null, 'app', 'db', false),
      ];
      expect(linksOf(trace)).toEqual([link('app', 'db', 1), link('some-client', 'web', 1), link('web', 'app', 1)]);
    });

    it('noSpanKindWithError', () => {
      const trace = [
        z('a', null, 'a', null, 'some-client', 'web', false),
        z('a', 'a', 'b', null, 'web', 'app', true),
        z('a', 'b', 'c', null, 'app', 'db', false),
      ];
      expect(linksOf(trace)).toEqual([link('app', 'db', 1), link('some-client', 'web', 1), link('web', 'app', 1, 1)]);
    });

    it('cannotLinkSingleSpanWithoutBothServiceNames', () => {
      for (const root of [
        z('a', null, 'a', 'SERVER', null, null, false),
        z('a', null, 'a', 'SERVER', 'server', null, false),
        z('a', null, 'a', 'SERVER', null, 'client', false),
        z('a', null, 'a', 'CLIENT', null, null, false),
        z('a', null, 'a', 'CLIENT', 'client', null, false),
        z('a', null, 'a', 'CLIENT', null, 'server', false),
      ]) {
        expect(linksOf([root])).toEqual([]);
      }
    });

    it('doesntLinkUnrelatedSpansWhenMissingRootSpan', () => {
      const trace = [z('a', 'a', 'b', 'SERVER', 'service1', null, false), z('a', 'a', 'c', 'SERVER', 'service2', null, false)];
      expect(linksOf(trace)).toEqual([]);
    });

    it('linksRelatedSpansWhenMissingRootSpan', () => {
      const trace = [z('a', 'a', 'b', 'SERVER', 'service1', null, false), z('a', 'b', 'c', 'SERVER', 'service2', null, false)];
      expect(linksOf(trace)).toEqual([link('service1', 'service2', 1)]);
    });

    it('linksSingleHostSpans', () => {
      const trace = [z('a', null, 'a', 'CLIENT', 'web', null, false), z('a', 'a', 'b', 'SERVER', 'app', null, false)];
      expect(linksOf(trace)).toEqual([link('web', 'app', 1)]);
    });

    it('linksSingleHostSpans_errorOnClient', () => {
      const trace = [z('a', null, 'a', 'CLIENT', 'web', null, true), z('a', 'a', 'b', 'SERVER', 'app', null, false)];
      expect(linksOf(trace)).toEqual([link('web', 'app', 1, 1)]);
    });

    it('missingSpan', () => {
      const trace = [z('a', null, 'a', 'SERVER', 'web', null, false), z('a', 'a', 'b', 'CLIENT', 'app', null, false)];
      expect(linksOf(trace)).toEqual([link('web', 'app', 1)]);
    });
  });
});
