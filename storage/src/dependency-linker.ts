import type { DependencyLink } from './trace-reader.js';

/** What the linker needs of a span (one row of span_index). */
export interface LinkSpan {
  traceId: string;
  id: string;
  /** '' when the span has no parent. */
  parentId: string;
  kind: '' | 'CLIENT' | 'SERVER' | 'PRODUCER' | 'CONSUMER';
  /** Local service name, '' when unknown. */
  service: string;
  /** Remote service name, '' when unknown. */
  remoteService: string;
  /** The span has an `error` tag (an annotation named "error" does not count, as in Zipkin). */
  error: boolean;
}

/**
 * Service links from traces, by the rules of Zipkin's DependencyLinker (zipkin2.internal), so that
 * /api/v2/dependencies counts what Zipkin would count for the same spans. Per trace:
 *
 * 1. Pieces of one span (same id, reported separately or replayed) are merged first, as Zipkin's
 *    Trace.merge does, so a span split over several rows counts once and keeps every piece's
 *    error tag and names.
 * 2. The spans form a tree as SpanNode.Builder builds it: a server half sharing its client's id
 *    hangs under that client; the first parentless span is the root; spans whose parent is
 *    missing hang under the root (a synthetic one when no span is parentless).
 * 3. The tree is walked and each span adds at most one link (plus one "missing link" backfill):
 *    - a CLIENT span with children is left to its server side, which knows the callee's name;
 *    - a span with no kind but both service names is taken for a CLIENT;
 *    - PRODUCER links service → broker and CONSUMER broker → service, only when both are known;
 *    - a SERVER is called by its nearest ancestor that has a kind ("remote ancestor"); a
 *      CLIENT without a local service name is called from that ancestor's service too; and a
 *      CLIENT whose service differs from that ancestor's also adds ancestor → client (no error);
 *    - a root SERVER links only when its remote service names the caller;
 *    - a link is an error when its span has the `error` tag, or, for a span that is the child
 *      of a CLIENT span (separate ids), when that client has it.
 *    Loopback links (same service both sides) count, as in Zipkin.
 *
 * Rows carry no `shared` flag (span_index keeps none), so it is inferred: a SERVER piece whose id
 * also belongs to a CLIENT piece of the trace is the shared server half of that call (a B3 join,
 * which Brave flags on every piece it reports), as is a kind-less piece of that id naming the
 * server's service and not the client's. Trace.merge backfills the flag the same way for a
 * server that follows its client, so unsplit spans link alike either way.
 */
export class DependencyLinker {
  readonly #links = new Map<string, { parent: string; child: string; callCount: number; errorCount: number }>();

  /** Adds the spans of one trace (rows in any order, duplicates allowed). */
  putTrace(spans: readonly LinkSpan[]): void {
    if (spans.length === 0) return;
    const root = buildTree(mergePieces(spans));
    // Breadth-first from the root (from its children when it is synthetic). The order does not
    // change the counts: each span's link depends on its ancestors and children only.
    const queue: SpanNode[] = root.span === undefined ? [...root.children] : [root];
    for (let i = 0; i < queue.length; i++) {
      const node = queue[i] as SpanNode;
      for (const child of node.children) queue.push(child); // no spread: a node may have very many children
      this.#linkSpan(node);
    }
  }

  #linkSpan(node: SpanNode): void {
    const span = node.span;
    if (span === undefined) return;
    // A client with spans below it (its server half, most often): those link the call, under the
    // name the server gives itself; a client with none links the callee it named.
    if (span.kind === 'CLIENT' && node.children.length > 0) return;
    let kind = span.kind;
    if (kind === '') {
      if (span.service === '' || span.remoteService === '') return; // a local span
      kind = 'CLIENT';
    }
    const serverSide = kind === 'SERVER' || kind === 'CONSUMER';
    let parent = serverSide ? span.remoteService : span.service;
    const child = serverSide ? span.service : span.remoteService;
    // A root server that does not name its caller has nobody to link from.
    if (serverSide && node.parent === undefined && parent === '') return;
    let error = span.error;

    // Messaging halves link to the broker only, never to each other.
    if (kind === 'PRODUCER' || kind === 'CONSUMER') {
      if (parent !== '' && child !== '') this.#add(parent, child, error);
      return;
    }

    const ancestor = firstRemoteAncestor(node);
    if (ancestor !== undefined && ancestor.service !== '') {
      // A client whose service differs from the service above it: that hop was not reported as
      // a server span (a remote name put on the wrong side), so link it too, error unknown.
      if (kind === 'CLIENT' && span.service !== '' && span.service !== ancestor.service) {
        this.#add(ancestor.service, span.service, false);
      }
      // The tree names a server's caller better than the server's own remote endpoint (a proxy, a load balancer).
      if (kind === 'SERVER' || parent === '') parent = ancestor.service;
      // A server span that is the child of its client span (not sharing its id): the client's
      // error is the call's error too.
      if (!error && ancestor.kind === 'CLIENT' && span.parentId !== '' && span.parentId === ancestor.id) {
        error = ancestor.error;
      }
    }
    if (parent === '' || child === '') return;
    this.#add(parent, child, error);
  }

  #add(parent: string, child: string, error: boolean): void {
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

/** A span once its pieces are merged. */
interface TreeSpan {
  id: string;
  parentId: string;
  kind: LinkSpan['kind'];
  service: string;
  remoteService: string;
  error: boolean;
  /** The server half of a call that reuses its client's span id. */
  shared: boolean;
}

interface SpanNode {
  /** Undefined for the synthetic root of a trace with no parentless span. */
  span: TreeSpan | undefined;
  parent: SpanNode | undefined;
  children: SpanNode[];
}

/**
 * The spans of a trace with the pieces of each span merged, in Trace.merge's order: by id, then
 * unshared before shared and clients first, then spans without a local service name first (so
 * they join the first piece that has one), then by name.
 */
function mergePieces(rows: readonly LinkSpan[]): TreeSpan[] {
  // Per span id, the local services of its CLIENT and SERVER pieces: to tell the server half of
  // a call from its client half when both use one id.
  const sides = new Map<string, { clients: Set<string>; servers: Set<string> }>();
  for (const row of rows) {
    if (row.kind !== 'CLIENT' && row.kind !== 'SERVER') continue;
    let side = sides.get(row.id);
    if (side === undefined) sides.set(row.id, (side = { clients: new Set(), servers: new Set() }));
    (row.kind === 'CLIENT' ? side.clients : side.servers).add(row.service);
  }
  const isShared = (row: LinkSpan): boolean => {
    const side = sides.get(row.id);
    if (side === undefined || side.clients.size === 0) return false;
    // A piece without a kind belongs to the server half when it names the server's service.
    if (row.kind === '') return row.service !== '' && side.servers.has(row.service) && !side.clients.has(row.service);
    return row.kind === 'SERVER';
  };
  const spans: TreeSpan[] = rows.map((row) => ({
    id: row.id,
    // A span is never its own parent (Zipkin's span builder drops such a parent id).
    parentId: row.parentId === row.id ? '' : row.parentId,
    kind: row.kind,
    service: row.service,
    remoteService: row.remoteService,
    error: row.error,
    shared: isShared(row),
  }));
  spans.sort(pieceOrder);

  const merged: TreeSpan[] = [];
  for (let i = 0; i < spans.length; ) {
    const span = spans[i++] as TreeSpan;
    // Later pieces of the same span: same id and sharing, and no conflicting local service
    // (different services under one id are different spans: a client and its server).
    for (; i < spans.length; i++) {
      const next = spans[i] as TreeSpan;
      if (next.id !== span.id || next.shared !== span.shared) break;
      if (span.service !== '' && next.service !== '' && next.service !== span.service) break;
      // The first piece to know a field keeps it; an error on any piece is the span's.
      if (span.parentId === '') span.parentId = next.parentId;
      if (span.kind === '') span.kind = next.kind;
      if (span.service === '') span.service = next.service;
      if (span.remoteService === '') span.remoteService = next.remoteService;
      span.error ||= next.error;
    }
    const previous = merged[merged.length - 1];
    if (previous !== undefined && previous.id === span.id) {
      // The server half of a call as Trace.merge repairs it: shared when it follows its client
      // under one id, and given the client's parent when its own parent id was not propagated.
      if (previous.kind === 'CLIENT' && span.kind === 'SERVER') span.shared = true;
      if (span.shared && span.parentId === '' && previous.parentId !== '') span.parentId = previous.parentId;
    }
    merged.push(span);
  }
  return merged;
}

function pieceOrder(a: TreeSpan, b: TreeSpan): number {
  if (a.id !== b.id) return compare(a.id, b.id);
  if (a.shared !== b.shared) return a.shared ? 1 : -1;
  if (!a.shared) {
    const aClient = a.kind === 'CLIENT';
    if (aClient !== (b.kind === 'CLIENT')) return aClient ? -1 : 1;
  }
  if ((a.service === '') !== (b.service === '')) return a.service === '' ? -1 : 1;
  // Zipkin stops here and keeps the input order; rows come in any order, so the remaining
  // fields decide, and a merge does not depend on how the server happened to return them.
  return (
    compare(a.service, b.service) ||
    compare(a.kind, b.kind) ||
    compare(a.parentId, b.parentId) ||
    compare(a.remoteService, b.remoteService) ||
    Number(a.error) - Number(b.error)
  );
}

/**
 * The tree of a trace's merged spans, as SpanNode.Builder builds it. A shared server span is
 * keyed by its id and local service (a client sends one id, but retries may reach two servers)
 * and is the child of the span with its id (the client); other spans are keyed by id, under
 * their parent, or under a shared server of the same service and id when there is one (a local
 * span of that server).
 */
function buildTree(spans: readonly TreeSpan[]): SpanNode {
  const sharedKey = (id: string, service: string): string => `\u0000${id}\u0000${service}`;
  // Insertion order matters as in Zipkin's LinkedHashMap: children are attached in this order.
  const parentOf = new Map<string, string | undefined>();
  const nodeOf = new Map<string, SpanNode>();
  for (const span of spans) {
    if (span.shared) parentOf.set(sharedKey(span.id, span.service), span.id);
    else parentOf.set(span.id, span.parentId === '' ? undefined : span.parentId);
  }

  let root: SpanNode | undefined;
  for (const span of spans) {
    const key = span.shared ? sharedKey(span.id, span.service) : span.id;
    const anyServiceKey = span.shared ? sharedKey(span.id, '') : span.id;
    let parentKey: string | undefined;
    if (span.shared) {
      parentKey = span.id;
    } else if (span.parentId !== '') {
      const sharedParent = sharedKey(span.parentId, span.service);
      if (parentOf.has(sharedParent)) {
        parentKey = sharedParent;
        parentOf.set(span.id, sharedParent);
      } else {
        parentKey = span.parentId;
      }
    }
    const node: SpanNode = { span, parent: undefined, children: [] };
    if (parentKey === undefined && root === undefined) {
      // The first parentless span is the root; later ones hang under it.
      root = node;
      parentOf.delete(anyServiceKey);
    } else {
      nodeOf.set(anyServiceKey, node);
      // A shared span is also found without its service, for local spans that report none.
      if (span.shared) nodeOf.set(key, node);
    }
  }

  root ??= { span: undefined, parent: undefined, children: [] };
  for (const [childKey, parentKey] of parentOf) {
    const child = nodeOf.get(childKey);
    if (child === undefined) continue;
    // A parent that was not reported: attach to the root, so the trace still links.
    const parent = (parentKey === undefined ? undefined : nodeOf.get(parentKey)) ?? root;
    if (parent === child) continue;
    parent.children.push(child);
    child.parent = parent;
  }
  return root;
}

/** The nearest ancestor with a kind (local spans in between are skipped). */
function firstRemoteAncestor(node: SpanNode): TreeSpan | undefined {
  for (let ancestor = node.parent; ancestor !== undefined; ancestor = ancestor.parent) {
    if (ancestor.span !== undefined && ancestor.span.kind !== '') return ancestor.span;
  }
  return undefined;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
