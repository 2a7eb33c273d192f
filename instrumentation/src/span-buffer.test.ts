// SpanBuffer reuses its slabs and message stores: no interleaving of writes,
// drops, takes, confirms, failed publishes and clears may change a byte that
// is still to be read.
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { decodeSpans } from '@tracehouse/model';
import { describe, expect, it } from 'vitest';
import { SLAB_BYTES, SpanBuffer, type Message } from './span-buffer.js';
import { spanWriter, wireFormat } from './wire-format.js';
import { ZipkinSpanConverter } from './zipkin-conversion.js';
import { seededRandom } from './seeded-random.test.helpers.js';


/** HTTP-like spans of varied sizes: some over a slab (70 KB), some over the message limit (150 KB), some not ASCII. */
function variedSpans(count: number, rand: () => number): ReadableSpan[] {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'checkout', 'service.version': '2.4.1' }),
    spanProcessors: [new SimpleSpanProcessor(memory)],
  });
  const tracer = provider.getTracer('span-buffer-test', '1.0.0');
  for (let i = 0; i < count; i++) {
    const attributes: Record<string, string | number> = {
      'http.request.method': i % 3 === 0 ? 'POST' : 'GET',
      'url.path': `/api/cart/${i}/${'p'.repeat(Math.floor(rand() * 400))}`,
      'server.address': 'inventory.internal',
      'server.port': 9000,
      'http.response.status_code': 200 + (i % 7),
    };
    if (i % 13 === 0) attributes['note'] = `naïve café ${i} "quoted" \\ 😀`;
    if (i % 97 === 0) attributes['blob'] = 'b'.repeat(70_000);
    if (i % 211 === 0) attributes['huge'] = 'h'.repeat(150_000);
    const span = tracer.startSpan(`op ${i % 50}`, { kind: i % 2 === 0 ? SpanKind.SERVER : SpanKind.CLIENT, attributes });
    if (i % 5 === 0) span.addEvent('retry', { attempt: i % 4 });
    if (i % 17 === 0) span.setStatus({ code: SpanStatusCode.ERROR, message: `failed ${i}` });
    span.end();
  }
  return memory.getFinishedSpans();
}

interface Taken {
  message: Message;
  expected: Buffer;
  ids: string[];
}

describe('SpanBuffer reusing its memory', () => {
  it.each([1, 2, 3])('never changes a byte still to be read, whatever the order of operations (seed %i)', (seed) => {
    const rand = seededRandom(seed);
    const format = wireFormat('json');
    const limits = { maxSpans: 400, maxBytes: 300_000 };
    const maxMessageBytes = 100_000;
    const buffer = new SpanBuffer(limits, format, { poisonReleased: true });
    const write = spanWriter('json');
    const converter = new ZipkinSpanConverter();
    const spans = variedSpans(6000, rand);

    // The model: what the buffer holds, oldest first, as the reference bytes of each span.
    const held: { id: string; bytes: Buffer }[] = [];
    const retries: Taken[] = [];
    const inFlight: Taken[] = [];
    const delivered: Buffer[] = [];
    const accepted = new Set<string>();
    const dropped = new Set<string>();
    const counts = { tooLarge: 0, full: 0, failed: 0, cleared: 0, storesReused: 0 };
    const stores = new Set<ArrayBufferLike>();
    let next = 0;

    const intact = (taken: Taken): void => {
      if (!taken.message.body.equals(taken.expected)) throw new Error(`message of ${taken.ids.join(',')} was overwritten`);
    };
    const take = (limit: number): void => {
      const message = buffer.take(limit);
      if (message === undefined) {
        expect(held.length + retries.length).toBe(0);
        return;
      }
      const retry = retries.shift();
      if (retry !== undefined) {
        expect(message).toBe(retry.message); // a failed message comes back first, as it was
        intact(retry);
        inFlight.push(retry);
        return;
      }
      const pieces = held.splice(0, message.count);
      const expected = Buffer.concat([Buffer.from('['), ...pieces.flatMap((p, i) => (i > 0 ? [Buffer.from(','), p.bytes] : [p.bytes])), Buffer.from(']')]);
      expect(message.body.equals(expected)).toBe(true);
      if (message.count > 1) expect(message.body.length).toBeLessThanOrEqual(limit);
      // As many spans as fit.
      const after = held[0];
      if (after !== undefined) expect(expected.length + 1 + after.bytes.length).toBeGreaterThan(limit);
      if (stores.has(message.body.buffer)) counts.storesReused++;
      stores.add(message.body.buffer);
      inFlight.push({ message, expected, ids: pieces.map((p) => p.id) });
    };
    const settle = (ok: boolean): void => {
      const taken = inFlight.splice(Math.floor(rand() * inFlight.length), 1)[0]; // confirms in any order
      if (taken === undefined) return;
      intact(taken);
      if (ok) {
        delivered.push(Buffer.from(taken.message.body)); // what the broker got
        buffer.published(taken.message);
      } else {
        counts.failed++;
        buffer.putBack(taken.message);
        retries.push(taken);
      }
    };

    while (next < spans.length) {
      // Stretches of 300 spans: the broker takes large messages; is away (nothing is taken,
      // publishes in flight fail); takes small messages; takes small messages rarely.
      const phase = Math.floor(next / 300) % 4;
      const away = phase === 1;
      const limit = phase >= 2 ? 2500 : maxMessageBytes;
      const r = rand();
      if (r < 0.6) {
        const span = spans[next++] as ReadableSpan;
        const id = span.spanContext().spanId;
        const reference = Buffer.from(JSON.stringify(converter.convert(span)), 'utf8');
        const length = write(span, buffer);
        expect(length).toBe(reference.length);
        if (format.messageBytes(1, length) > maxMessageBytes) {
          buffer.discard();
          counts.tooLarge++;
          dropped.add(id);
        } else if (buffer.commit(length)) {
          held.push({ id, bytes: reference });
          accepted.add(id);
        } else {
          // commit() discarded the piece: writing resumes where it stood.
          counts.full++;
          dropped.add(id);
        }
      } else if (r < 0.75) {
        if (!away && (phase !== 3 || rand() < 0.1)) take(limit);
      } else if (r < 0.9) settle(!away && rand() < 0.8);
      else if (r < 0.902) {
        // Shutdown gave up: what is buffered (failed messages included) is dropped; what is in flight is not.
        expect(buffer.clear()).toBe(held.length + retries.reduce((sum, t) => sum + t.message.count, 0));
        for (const piece of held.splice(0)) dropped.add(piece.id);
        for (const taken of retries.splice(0)) for (const id of taken.ids) dropped.add(id);
        counts.cleared++;
      }
      for (const taken of inFlight) intact(taken);
      for (const taken of retries) intact(taken);
      expect(buffer.length).toBe(held.length + retries.reduce((sum, t) => sum + t.message.count, 0));
      expect(buffer.bytes).toBeLessThanOrEqual(limits.maxBytes + inFlight.length * maxMessageBytes + retries.length * maxMessageBytes);
      // Bounded: without reuse, tens of MB would be held by now.
      expect(buffer.heldBytes).toBeLessThanOrEqual(8 * limits.maxBytes + 4 * SLAB_BYTES + 2 * maxMessageBytes);
    }
    while (inFlight.length > 0 || buffer.length > 0) {
      take(maxMessageBytes);
      settle(true);
    }

    // Every span accepted and not cleared reached the broker once, with the bytes the reference gives.
    const deliveredIds: string[] = [];
    for (const body of delivered) {
      const result = decodeSpans(body);
      if (!result.ok) throw new Error(result.message);
      expect(result.dropped).toEqual([]);
      deliveredIds.push(...result.spans.map((s) => s.id));
    }
    const expectedIds = [...accepted].filter((id) => !dropped.has(id));
    expect(deliveredIds.sort()).toEqual(expectedIds.sort());
    // The runs went through every path.
    expect(counts.tooLarge).toBeGreaterThan(0);
    expect(counts.full).toBeGreaterThan(0);
    expect(counts.failed).toBeGreaterThan(0);
    expect(counts.cleared).toBeGreaterThan(0);
    expect(counts.storesReused).toBeGreaterThan(0);
  });
});

describe('SpanBuffer slabs', () => {
  it('reuses a slab only once every span in it was taken, while new spans keep being written', () => {
    const format = wireFormat('json');
    const buffer = new SpanBuffer({ maxSpans: 10_000, maxBytes: 16 * 1024 * 1024 }, format, { poisonReleased: true });
    const write = spanWriter('json');
    const converter = new ZipkinSpanConverter();
    const spans = variedSpans(4000, seededRandom(7)).filter((s) => !('blob' in s.attributes) && !('huge' in s.attributes));
    const held: Buffer[] = [];
    let next = 0;
    const writeSome = (count: number): void => {
      for (let i = 0; i < count && next < spans.length; i++) {
        const span = spans[next++] as ReadableSpan;
        expect(buffer.commit(write(span, buffer))).toBe(true);
        held.push(Buffer.from(JSON.stringify(converter.convert(span)), 'utf8'));
      }
    };
    writeSome(300); // a few slabs
    const heldBefore = buffer.heldBytes;
    let written = 0;
    while (held.length > 0) {
      // One span per message, one new span after each: released slabs (poisoned) come back as new ones start.
      const message = buffer.take(1);
      expect(message?.count).toBe(1);
      const piece = held.shift() as Buffer;
      written += piece.length;
      expect(message?.body.equals(Buffer.concat([Buffer.from('['), piece, Buffer.from(']')]))).toBe(true);
      if (message !== undefined) buffer.published(message);
      writeSome(1);
    }
    expect(next).toBe(spans.length);
    // Written many times over into the same few slabs.
    expect(written).toBeGreaterThan(10 * heldBefore);
    expect(buffer.heldBytes).toBeLessThanOrEqual(heldBefore + 2 * SLAB_BYTES);
  });
});

describe('SpanBuffer with a piece larger than a slab', () => {
  const format = wireFormat('json');
  // 16 spare slabs and the one written into (no message stores are taken here but the one of `take`).
  const usual = 17 * SLAB_BYTES;

  /** A 5 MB span (discarded by the exporter as too large) and ordinary ones. */
  function spansWithLarge(): { large: ReadableSpan; normal: ReadableSpan[] } {
    const memory = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(memory)] });
    const tracer = provider.getTracer('span-buffer-test');
    tracer.startSpan('upload', { attributes: { body: 'x'.repeat(5_000_000) } }).end();
    for (let i = 0; i < 50; i++) tracer.startSpan(`op ${i}`, { attributes: { 'url.path': `/items/${i}` } }).end();
    const [large, ...normal] = memory.getFinishedSpans();
    return { large: large as ReadableSpan, normal };
  }

  /** After a large slab was let go: ordinary spans are written, taken as one valid message, and memory stays usual. */
  function expectWritingGoesOn(buffer: SpanBuffer, normal: readonly ReadableSpan[]): void {
    const write = spanWriter('json');
    for (const span of normal) expect(buffer.commit(write(span, buffer))).toBe(true);
    const message = buffer.take(500_000);
    expect(message?.count).toBe(normal.length);
    expect(decodeSpans(message?.body ?? Buffer.alloc(0)).ok).toBe(true);
    expect(buffer.heldBytes).toBeLessThanOrEqual(usual + 500_000);
  }

  it('lets go of the slab a discarded piece grew while the buffer was empty', () => {
    const buffer = new SpanBuffer({ maxSpans: 1000, maxBytes: 32 * 1024 * 1024 }, format);
    const write = spanWriter('json');
    const { large, normal } = spansWithLarge();
    write(large, buffer);
    expect(buffer.heldBytes).toBeGreaterThan(5_000_000);
    buffer.discard(); // too large
    expect(buffer.heldBytes).toBeLessThanOrEqual(usual);
    expectWritingGoesOn(buffer, normal);
  });

  it('lets go of a grown slab once every piece in it was taken, or cleared', () => {
    const write = spanWriter('json');
    const { large, normal } = spansWithLarge();
    for (const empty of ['take', 'clear'] as const) {
      const buffer = new SpanBuffer({ maxSpans: 1000, maxBytes: 32 * 1024 * 1024 }, format, { poisonReleased: true });
      // Kept (a larger message limit), then ordinary spans written after it in the same slab.
      expect(buffer.commit(write(large, buffer))).toBe(true);
      for (const span of normal) expect(buffer.commit(write(span, buffer))).toBe(true);
      expect(buffer.heldBytes).toBeGreaterThan(5_000_000);
      if (empty === 'take') {
        expect(buffer.take(10_000_000)?.count).toBe(1 + normal.length);
      } else {
        expect(buffer.clear()).toBe(1 + normal.length);
      }
      expect(buffer.length).toBe(0);
      expect(buffer.heldBytes).toBeLessThanOrEqual(usual);
      expectWritingGoesOn(buffer, normal);
    }
  });
});
