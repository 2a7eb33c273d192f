import type { DependencyLink } from './trace-reader.js';

/** What the linker needs of a span (one row of span_index). */
export interface LinkSpan {
  traceId: string;
  id: string;
  parentId: string;
  kind: '' | 'CLIENT' | 'SERVER' | 'PRODUCER' | 'CONSUMER';
  service: string;
  remoteService: string;
  error: boolean;
}

/**
 * Service links from parent/child relations, as Zipkin's DependencyLinker:
 * - a PRODUCER span links its service → its remote service (the broker) and a
 *   CONSUMER span links its remote service (the broker) → its service; a
 *   messaging span missing either name links nothing (no guessing from the
 *   parent: the broker is the other side of each half);
 * - a SERVER span links caller → its own service, the caller being its remote
 *   service name, else the service of the CLIENT half that shares its id, else
 *   the service of its parent span;
 * - a CLIENT span links its service → its remote service only when no SERVER
 *   span reported the other side (an uninstrumented callee), so each call is
 *   counted once;
 * - a call is an error when either side carries the `error` tag.
 * Self-links (same service both sides) are left out. Input rows must be
 * distinct (the reader reads them DISTINCT).
 */
export class DependencyLinker {
  readonly #links = new Map<string, { parent: string; child: string; callCount: number; errorCount: number }>();

  /** Adds the spans of one trace. */
  putTrace(spans: readonly LinkSpan[]): void {
    const byId = new Map<string, LinkSpan[]>();
    const childrenOf = new Map<string, LinkSpan[]>();
    for (const span of spans) {
      push(byId, span.id, span);
      if (span.parentId !== '') push(childrenOf, span.parentId, span);
    }
    for (const span of spans) {
      if (span.kind === 'PRODUCER' || span.kind === 'CONSUMER') {
        if (span.service === '' || span.remoteService === '') continue;
        if (span.kind === 'PRODUCER') this.#add(span.service, span.remoteService, span.error);
        else this.#add(span.remoteService, span.service, span.error);
      } else if (span.kind === 'SERVER') {
        if (span.service === '') continue;
        const sharedCaller = byId.get(span.id)?.find((s) => s.kind === 'CLIENT');
        const parentSpans = span.parentId === '' ? undefined : byId.get(span.parentId);
        const caller =
          span.remoteService !== ''
            ? span.remoteService
            : sharedCaller !== undefined && sharedCaller.service !== ''
              ? sharedCaller.service
              : (parentSpans?.find((s) => s.service !== '' && s.service !== span.service)?.service ??
                parentSpans?.find((s) => s.service !== '')?.service ??
                '');
        if (caller === '') continue;
        this.#add(caller, span.service, span.error || sharedCaller?.error === true);
      } else if (span.kind === 'CLIENT') {
        if (span.service === '' || span.remoteService === '') continue;
        const reported =
          byId.get(span.id)?.some((s) => s.kind === 'SERVER') === true ||
          childrenOf.get(span.id)?.some((s) => s.kind === 'SERVER') === true;
        if (reported) continue;
        this.#add(span.service, span.remoteService, span.error);
      }
    }
  }

  #add(parent: string, child: string, error: boolean): void {
    if (parent === child) return;
    const key = `${parent}\u0000${child}`;
    let link = this.#links.get(key);
    if (link === undefined) {
      link = { parent, child, callCount: 0, errorCount: 0 };
      this.#links.set(key, link);
    }
    link.callCount += 1;
    if (error) link.errorCount += 1;
  }

  /** The links so far, sorted by parent then child. */
  links(): DependencyLink[] {
    return [...this.#links.values()]
      .sort((a, b) => (a.parent === b.parent ? compare(a.child, b.child) : compare(a.parent, b.parent)))
      .map((l) => (l.errorCount > 0 ? { ...l } : { parent: l.parent, child: l.child, callCount: l.callCount }));
  }
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
