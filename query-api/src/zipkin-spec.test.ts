// The validator the API tests rely on must actually reject what the
// specification rejects.
import { describe, expect, it } from 'vitest';
import { ZipkinSpec } from './zipkin-spec.test.helpers.js';

const spec = new ZipkinSpec();
const span = { traceId: '4e441824ec2b6a44ffdc9bb9a6453df3', id: 'ffdc9bb9a6453df3', kind: 'SERVER', timestamp: 1, duration: 2, tags: { a: 'b' } };

describe('ZipkinSpec', () => {
  it('accepts conforming bodies', () => {
    expect(() => spec.assertResponse('/trace/{traceId}', 200, [span])).not.toThrow();
    expect(() => spec.assertResponse('/traces', 200, [[span], []])).not.toThrow();
    expect(() => spec.assertResponse('/services', 200, ['a'])).not.toThrow();
    expect(() => spec.assertResponse('/dependencies', 200, [{ parent: 'a', child: 'b', callCount: 1 }])).not.toThrow();
  });

  it('rejects bodies that break the Span, Trace and DependencyLink definitions', () => {
    expect(() => spec.assertResponse('/trace/{traceId}', 200, [{ ...span, id: undefined }])).toThrow(/id/);
    expect(() => spec.assertResponse('/trace/{traceId}', 200, [{ ...span, traceId: 'abc' }])).toThrow(/traceId/);
    expect(() => spec.assertResponse('/trace/{traceId}', 200, [{ ...span, kind: 'LOCAL' }])).toThrow(/kind/);
    expect(() => spec.assertResponse('/trace/{traceId}', 200, [{ ...span, duration: 0 }])).toThrow(/duration/);
    expect(() => spec.assertResponse('/trace/{traceId}', 200, [{ ...span, tags: { a: 1 } }])).toThrow(/tags/);
    expect(() => spec.assertResponse('/trace/{traceId}', 200, [{ ...span, localEndpoint: { ipv4: 'nope' } }])).toThrow(/ipv4/);
    expect(() => spec.assertResponse('/traces', 200, [span])).toThrow();
    expect(() => spec.assertResponse('/dependencies', 200, [{ parent: 'a', child: 'b' }])).toThrow(/callCount/);
    expect(() => spec.assertResponse('/services', 200, [1])).toThrow();
  });

  it('knows every path the API serves', () => {
    for (const path of ['/services', '/spans', '/remoteServices', '/traces', '/trace/{traceId}', '/traceMany', '/dependencies', '/autocompleteKeys', '/autocompleteValues']) {
      expect(() => spec.assertResponse(path, 200, [])).not.toThrow();
    }
    expect(ZipkinSpec.pathOf('/api/v2/trace/abc?x=1')).toBe('/trace/{traceId}');
  });
});
