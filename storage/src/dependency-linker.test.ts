import { describe, expect, it } from 'vitest';
import { DependencyLinker, type LinkSpan } from './dependency-linker.js';

function span(partial: Partial<LinkSpan> & Pick<LinkSpan, 'id'>): LinkSpan {
  return { traceId: 't', parentId: '', kind: '', service: '', remoteService: '', error: false, ...partial };
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

  it('links a producer to its broker and the broker to its consumer, as Zipkin does', () => {
    const linker = new DependencyLinker();
    // The consumer is a child of the producer: both halves still link, each to the broker.
    linker.putTrace([
      span({ id: 'p', kind: 'PRODUCER', service: 'orders', remoteService: 'rabbitmq' }),
      span({ id: 'c', parentId: 'p', kind: 'CONSUMER', service: 'billing', remoteService: 'rabbitmq', error: true }),
    ]);
    // Shared-id style: producer and consumer halves under one id.
    linker.putTrace([
      span({ traceId: 'u', id: 'm', kind: 'PRODUCER', service: 'orders', remoteService: 'rabbitmq' }),
      span({ traceId: 'u', id: 'm', kind: 'CONSUMER', service: 'billing', remoteService: 'rabbitmq' }),
    ]);
    expect(linker.links()).toEqual([
      { parent: 'orders', child: 'rabbitmq', callCount: 2 },
      { parent: 'rabbitmq', child: 'billing', callCount: 2, errorCount: 1 },
    ]);
  });

  it('links no messaging span missing the broker name, and leaves self-calls and orphans out', () => {
    const linker = new DependencyLinker();
    linker.putTrace([
      span({ id: 'p', kind: 'PRODUCER', service: 'orders' }),
      span({ id: 'c', parentId: 'p', kind: 'CONSUMER', service: 'billing' }),
      span({ id: 's', parentId: 'c', kind: 'SERVER', service: 'billing' }),
      span({ id: 'o', parentId: 'missing', kind: 'SERVER', service: 'lonely' }),
    ]);
    expect(linker.links()).toEqual([]);
  });

  it('uses the server span remote service as the caller when given', () => {
    const linker = new DependencyLinker();
    linker.putTrace([span({ id: 'a', kind: 'SERVER', service: 'api', remoteService: 'mobile' })]);
    expect(linker.links()).toEqual([{ parent: 'mobile', child: 'api', callCount: 1 }]);
  });
});
