import { describe, expect, it } from 'vitest';
import { featuresFor, parseServerVersion } from './server-features.js';

describe('server features', () => {
  it('treats 18.16 as old and 20.3+ (and chdb 26.x) as modern', () => {
    expect(featuresFor(parseServerVersion('18.16.1'))).toEqual({
      serverParams: false,
      ttl: false,
      codecs: false,
      skipIndexes: false,
      lowCardinality: false,
    });
    expect(featuresFor(parseServerVersion('20.2.1.1')).serverParams).toBe(false);
    expect(featuresFor(parseServerVersion('20.3.5')).ttl).toBe(true);
    expect(featuresFor(parseServerVersion('26.7.2.1')).skipIndexes).toBe(true);
  });

  it('refuses a version it cannot read', () => {
    expect(() => parseServerVersion('banana')).toThrow(/cannot parse/);
  });
});
