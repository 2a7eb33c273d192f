// Realistic spans for benchmarks and tests: 10 tags, 2 annotations, both
// endpoints, 128-bit trace ids, as an instrumented HTTP service reports them.
import type { Span } from '../span.js';

/** Deterministic xorshift32 PRNG so generated data is reproducible. */
export function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

function hex(rand: () => number, chars: number): string {
  let s = '';
  while (s.length < chars) s += Math.floor(rand() * 4294967296).toString(16).padStart(8, '0');
  return s.slice(0, chars);
}

const ROUTES = ['/api/orders', '/api/users/{id}', '/checkout', '/api/cart', '/health'];
const SERVICES = ['frontend', 'orders', 'payments', 'inventory', 'users'];

export function realisticSpans(count: number, seed = 42): Span[] {
  const rand = prng(seed);
  const spans: Span[] = [];
  let traceId = hex(rand, 32);
  let parentId: string | undefined;
  for (let i = 0; i < count; i++) {
    if (i % 20 === 0) {
      traceId = hex(rand, 32);
      parentId = undefined;
    }
    const id = hex(rand, 16);
    const route = ROUTES[Math.floor(rand() * ROUTES.length)]!;
    const service = SERVICES[Math.floor(rand() * SERVICES.length)]!;
    const timestamp = 1_700_000_000_000_000 + Math.floor(rand() * 1e12);
    const duration = 100 + Math.floor(rand() * 500_000);
    const span: Span = {
      traceId,
      id,
      kind: i % 2 === 0 ? 'SERVER' : 'CLIENT',
      name: `get ${route}`,
      timestamp,
      duration,
      localEndpoint: { serviceName: service, ipv4: `10.0.${i % 256}.${(i * 7) % 256}`, port: 8080 },
      remoteEndpoint: { serviceName: 'gateway', ipv4: '10.1.2.3', port: 40000 + (i % 20000) },
      annotations: [
        { timestamp: timestamp + 10, value: 'wire send' },
        { timestamp: timestamp + duration - 10, value: 'wire receive' },
      ],
      tags: {
        'http.method': 'GET',
        'http.route': route,
        'http.url': `http://${service}:8080${route}?page=${i % 7}`,
        'http.status_code': String(200 + (i % 3)),
        'http.user_agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36',
        'net.peer.name': 'gateway',
        'net.peer.port': String(40000 + (i % 20000)),
        'otel.library.name': '@opentelemetry/instrumentation-http',
        'otel.library.version': '0.57.0',
        'service.version': '1.4.2',
      },
    };
    if (parentId !== undefined) span.parentId = parentId;
    parentId = id;
    spans.push(span);
  }
  return spans;
}
