/**
 * A span too large for a message, cut down to fit: its longest tag and
 * annotation values are shortened, each marked with how much was cut. Such a
 * span is nearly always one huge value (the SQL of a bulk insert in
 * `db.statement`, a stack trace in an event); dropping it whole would hide
 * that very operation from its trace. Runs only for spans over the message
 * size, so it favours plain code over speed.
 */
import type { Annotation, Span } from '@tracehouse/model';

/** No value is cut below this many characters. */
const KEPT_CHARS = 1024;
/** Cuts tried before giving up on a span (each at least halves the excess or exhausts a value). */
const MAX_CUTS = 64;

/** The text that ends a cut value. */
export function truncationMark(cutChars: number): string {
  return `…[${cutChars} characters cut]`;
}

type Place = { kind: 'tag'; key: string } | { kind: 'annotation'; index: number };

/**
 * `span` with its longest values shortened until `bytes(span) <= maxBytes`,
 * or undefined when even values cut to KEPT_CHARS do not fit (a span of
 * thousands of tags, say). `span` is not changed.
 */
export function fitSpan(span: Span, maxBytes: number, bytes: (span: Span) => number): Span | undefined {
  const tags: Record<string, string> | undefined = span.tags === undefined ? undefined : { ...span.tags };
  const annotations: Annotation[] | undefined = span.annotations?.map((a) => ({ ...a }));
  const fitted: Span = { ...span, ...(tags === undefined ? {} : { tags }), ...(annotations === undefined ? {} : { annotations }) };
  for (let cut = 0; cut < MAX_CUTS; cut++) {
    const excess = bytes(fitted) - maxBytes;
    if (excess <= 0) return fitted;
    const place = longest(tags, annotations);
    if (place === undefined) return undefined;
    const value = place.kind === 'tag' ? (tags?.[place.key] as string) : (annotations?.[place.index] as Annotation).value;
    // Characters are at least one byte each: cutting `excess` characters plus the mark's length
    // makes the span fit unless other values must be cut too.
    const keep = Math.max(KEPT_CHARS, value.length - excess - 64);
    const shortened = value.slice(0, keep) + truncationMark(value.length - keep);
    if (place.kind === 'tag' && tags !== undefined) tags[place.key] = shortened;
    else if (place.kind === 'annotation' && annotations !== undefined) (annotations[place.index] as Annotation).value = shortened;
  }
  return undefined;
}

/** The place of the longest value that can still be cut (longer than KEPT_CHARS and not cut yet). */
function longest(tags: Record<string, string> | undefined, annotations: Annotation[] | undefined): Place | undefined {
  let best: Place | undefined;
  let bestLength = KEPT_CHARS;
  const cuttable = (value: string): boolean => value.length > bestLength && !value.endsWith(' characters cut]');
  for (const key in tags) {
    const value = tags[key] as string;
    if (cuttable(value)) {
      best = { kind: 'tag', key };
      bestLength = value.length;
    }
  }
  annotations?.forEach((annotation, index) => {
    if (cuttable(annotation.value)) {
      best = { kind: 'annotation', index };
      bestLength = annotation.value.length;
    }
  });
  return best;
}
