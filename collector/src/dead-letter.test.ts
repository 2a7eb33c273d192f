import { describe, expect, it } from 'vitest';
import { ERROR_HEADER, PUBLISH_ID_HEADER, REASON_HEADER, deadLetterOptions, publishIdOf, withPublishId } from './dead-letter.js';

describe('deadLetterOptions', () => {
  const info = { reason: 'malformed_json', error: 'Unexpected end of JSON input', queue: 'zipkin', collector: 'host:1', now: new Date(0) };

  it('keeps the original headers and encoding and adds why', () => {
    const options = deadLetterOptions({ headers: { 'x-app': 'shop' }, contentEncoding: 'gzip', contentType: 'application/json' }, info);
    expect(options).toMatchObject({
      persistent: true,
      // Returned by the broker, not confirmed and dropped, when it routes to no queue.
      mandatory: true,
      contentEncoding: 'gzip',
      contentType: 'application/json',
      headers: {
        'x-app': 'shop',
        [REASON_HEADER]: 'malformed_json',
        [ERROR_HEADER]: 'Unexpected end of JSON input',
        'x-tracehouse-queue': 'zipkin',
        'x-tracehouse-collector': 'host:1',
        'x-tracehouse-dead-lettered-at': '1970-01-01T00:00:00.000Z',
      },
    });
  });

  it('works for a message with no properties at all, as Zipkin sends them', () => {
    const options = deadLetterOptions(undefined, info);
    expect(options.contentEncoding).toBeUndefined();
    expect((options.headers as Record<string, unknown>)[REASON_HEADER]).toBe('malformed_json');
  });

  it('bounds the error text', () => {
    const options = deadLetterOptions(undefined, { ...info, error: 'x'.repeat(100_000) });
    expect(((options.headers as Record<string, unknown>)[ERROR_HEADER] as string).length).toBeLessThanOrEqual(1_001);
  });

  it('tags each publish in a header and keeps the original message id', () => {
    const options = withPublishId(deadLetterOptions({ messageId: 'original', headers: { 'x-app': 'shop' } }, info), 'host:1:1:7');
    expect(options.messageId).toBe('original');
    expect(options.headers).toMatchObject({ 'x-app': 'shop', [PUBLISH_ID_HEADER]: 'host:1:1:7', [REASON_HEADER]: 'malformed_json' });
    expect(publishIdOf({ headers: options.headers as Record<string, unknown> })).toBe('host:1:1:7');
    expect(publishIdOf({ headers: {} })).toBeUndefined();
    expect(publishIdOf(undefined)).toBeUndefined();
  });
});
