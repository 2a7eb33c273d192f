/**
 * Large answers written as JSON a slice at a time, with a turn of the event
 * loop between slices. The response schema's serializer wrote the 120 000
 * spans (50 MB) of one trace in a single synchronous block of seconds, during
 * which every other request waited. Small answers keep that serializer.
 */
import { Readable } from 'node:stream';
import type { Span } from '@tracehouse/model';

/** Answers with more spans than this are streamed. */
export const STREAM_MIN_SPANS = 2_000;

/** Characters of JSON produced per turn of the event loop. */
const SLICE_CHARS = 256 * 1024;

/** The JSON of one trace: an array of spans. */
function* traceJson(trace: readonly Span[]): Generator<string> {
  yield '[';
  for (let i = 0; i < trace.length; i++) {
    // A stored span holds only the fields of the Zipkin v2 model, so JSON.stringify
    // writes what the response schema would.
    yield i === 0 ? JSON.stringify(trace[i]) : `,${JSON.stringify(trace[i])}`;
  }
  yield ']';
}

/** The JSON of a list of traces. */
function* traceListJson(traces: readonly (readonly Span[])[]): Generator<string> {
  yield '[';
  for (let i = 0; i < traces.length; i++) {
    if (i > 0) yield ',';
    yield* traceJson(traces[i]!);
  }
  yield ']';
}

/** A readable stream of the pieces, SLICE_CHARS at a time, each slice in its own turn of the event loop. */
function sliced(pieces: Iterator<string>): Readable {
  let done = false;
  return new Readable({
    read() {
      setImmediate(() => {
        if (done || this.destroyed) return;
        let slice = '';
        while (slice.length < SLICE_CHARS) {
          const next = pieces.next();
          if (next.done === true) {
            done = true;
            break;
          }
          slice += next.value;
        }
        if (slice.length > 0) this.push(slice);
        if (done) this.push(null);
      });
    },
  });
}

/** Counts the spans of an answer to choose between the schema's serializer and a stream. */
export function spanCount(traces: readonly (readonly Span[])[]): number {
  let count = 0;
  for (const trace of traces) count += trace.length;
  return count;
}

export function streamTrace(trace: readonly Span[]): Readable {
  return sliced(traceJson(trace));
}

export function streamTraceList(traces: readonly (readonly Span[])[]): Readable {
  return sliced(traceListJson(traces));
}
