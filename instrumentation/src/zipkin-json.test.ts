import { encodeJsonV2, type Span } from '@tracehouse/model';
import { describe, expect, it } from 'vitest';
import { zipkinSpanJson } from './zipkin-json.js';

const full: Span = {
  traceId: '463ac35c9f6413ad48485a3953bb6124',
  parentId: 'a2fb4a1d1a96d312',
  id: 'a2fb4a1d1a96d313',
  kind: 'CLIENT',
  name: 'GET /päth "quoted" \\ back\nline',
  timestamp: 1_700_000_000_000_123,
  duration: 1234,
  localEndpoint: Object.freeze({ serviceName: 'checkout' }),
  remoteEndpoint: { serviceName: 'inventory', ipv4: '10.0.0.1', ipv6: '2001:db8::1', port: 9000 },
  annotations: [
    { timestamp: 1_700_000_000_000_200, value: 'sent' },
    { timestamp: 1_700_000_000_000_300, value: '"retry":{"attempt":"2"}' },
  ],
  tags: {
    'http.method': 'GET',
    'emoji 🚀': 'rocket 🚀',
    lone: 'half \ud800 surrogate',
    control: 'tab\there \u0001',
    'quote"key': 'separator \u2028 here',
    empty: '',
  },
  debug: true,
  shared: false,
};

describe('zipkinSpanJson', () => {
  it('writes exactly what JSON.stringify writes for the span in Zipkin field order', () => {
    expect(zipkinSpanJson(full)).toBe(JSON.stringify(full));
    // Twice: the second run goes through the key and endpoint caches.
    expect(zipkinSpanJson(full)).toBe(JSON.stringify(full));
  });

  it('matches the model encoder for a minimal span and leaves absent fields out', () => {
    const minimal: Span = { traceId: '463ac35c9f6413ad', id: 'a2fb4a1d1a96d313' };
    expect(`[${zipkinSpanJson(minimal)}]`).toBe(encodeJsonV2([minimal]).toString());
    const withUndefined = { ...minimal, parentId: undefined, kind: undefined, tags: undefined } as Span;
    expect(zipkinSpanJson(withUndefined)).toBe('{"traceId":"463ac35c9f6413ad","id":"a2fb4a1d1a96d313"}');
  });

  it('round-trips through JSON.parse for the model encoder too', () => {
    const { debug: _debug, shared: _shared, ...rest } = full;
    expect(JSON.parse(`[${zipkinSpanJson(rest)}]`)).toEqual(JSON.parse(encodeJsonV2([rest]).toString()));
  });
});
