import type { Span } from '@tracehouse/model';

/**
 * Generated, realistic traces for tests and benchmarks (not for production):
 * a tree of CLIENT/SERVER spans across services, 10 tags and 2 annotations per
 * span. Deterministic for a given seed.
 */
export interface GenerateOptions {
  /** Number of traces. */
  traces: number;
  /** Spans per trace (at least 1). Default 10. */
  spansPerTrace?: number;
  /** Epoch microseconds of the first trace. Default: now minus one hour. */
  startMicros?: number;
  /** Microseconds between the starts of consecutive traces. Default 1000. */
  traceSpacingMicros?: number;
  /** Service names to draw from. Default 8 services. */
  services?: readonly string[];
  /** 32-character trace ids (default) or 16. */
  traceIdLength?: 16 | 32;
  /** PRNG seed. Default 1. */
  seed?: number;
}

export const DEFAULT_SERVICES = [
  'frontend',
  'checkout',
  'payment',
  'inventory',
  'shipping',
  'user',
  'search',
  'recommendation',
] as const;

const SPAN_NAMES = ['get /api/items', 'post /api/orders', 'select', 'charge', 'reserve', 'lookup', 'render', 'publish'];
const HTTP_METHODS = ['GET', 'POST', 'PUT', 'DELETE'];
const STATUS = ['200', '200', '200', '200', '201', '404', '500'];

/** A small fast PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hex(random: () => number, chars: number): string {
  let out = '';
  while (out.length < chars) out += Math.floor(random() * 0x100000000).toString(16).padStart(8, '0');
  return out.slice(0, chars);
}

function pick<T>(random: () => number, list: readonly T[]): T {
  return list[Math.floor(random() * list.length)] as T;
}

/** Generates `traces` traces; spans of a trace are contiguous in the result. */
export function generateSpans(options: GenerateOptions): Span[] {
  const random = prng(options.seed ?? 1);
  const perTrace = Math.max(1, options.spansPerTrace ?? 10);
  const services = options.services ?? DEFAULT_SERVICES;
  const start = options.startMicros ?? (Date.now() - 3_600_000) * 1000;
  const spacing = options.traceSpacingMicros ?? 1000;
  const idLength = options.traceIdLength ?? 32;
  const spans: Span[] = [];
  for (let t = 0; t < options.traces; t++) {
    const traceId = hex(random, idLength);
    const traceStart = start + t * spacing;
    const ids: string[] = [];
    const serviceOf: string[] = [];
    for (let s = 0; s < perTrace; s++) {
      const id = hex(random, 16);
      const parentIndex = s === 0 ? -1 : Math.floor(random() * s);
      const service = s === 0 ? (services[0] as string) : pick(random, services);
      const parentService = parentIndex >= 0 ? (serviceOf[parentIndex] as string) : undefined;
      const timestamp = traceStart + s * 100;
      const duration = 50 + Math.floor(random() * 200_000);
      const status = pick(random, STATUS);
      const tags: Record<string, string> = {
        'http.method': pick(random, HTTP_METHODS),
        'http.path': `/api/v1/items/${Math.floor(random() * 1000)}`,
        'http.status_code': status,
        'http.url': `https://example.test/api/v1/items/${Math.floor(random() * 100000)}`,
        'net.host.name': `${service}.internal`,
        'peer.service': parentService ?? 'browser',
        component: 'http',
        'thread.name': `worker-${Math.floor(random() * 16)}`,
        'user.tier': pick(random, ['free', 'pro', 'enterprise']),
        region: pick(random, ['eu-west-1', 'us-east-1', 'ap-south-1']),
      };
      if (status === '500') tags.error = 'Internal Server Error';
      const span: Span = {
        traceId,
        id,
        kind: s === 0 ? 'SERVER' : random() < 0.5 ? 'SERVER' : 'CLIENT',
        name: pick(random, SPAN_NAMES),
        timestamp,
        duration,
        localEndpoint: { serviceName: service, ipv4: `10.0.${Math.floor(random() * 255)}.${Math.floor(random() * 255)}`, port: 8080 },
        annotations: [
          { timestamp: timestamp + 10, value: 'wire.send' },
          { timestamp: timestamp + duration - 10, value: 'wire.recv' },
        ],
        tags,
      };
      if (parentIndex >= 0) {
        span.parentId = ids[parentIndex];
        // A SERVER span's remote is its caller; a CLIENT span's is its callee.
        span.remoteEndpoint = { serviceName: span.kind === 'SERVER' ? (parentService) : pick(random, services) };
      }
      ids.push(id);
      serviceOf.push(service);
      spans.push(span);
    }
  }
  return spans;
}
