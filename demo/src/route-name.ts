import type { ClientRequest, IncomingMessage } from 'node:http';

/**
 * The route template of a demo request, e.g. `/price/:item` for
 * `/price/teapot?x=1`, so that span names group requests the way a person
 * searches them (`GET /price/:item`) instead of the HTTP instrumentation's bare `GET`.
 */
export function routeOf(path: string): string {
  const pathname = path.split('?')[0] ?? '/';
  return pathname.replace(/^\/(inventory|price)\/[^/]+$/, '/$1/:item');
}

/** `<METHOD> <route>` for an incoming or outgoing request of the demo services. */
export function spanNameFor(request: ClientRequest | IncomingMessage): string {
  const path = 'path' in request ? request.path : (request.url ?? '/');
  return `${request.method ?? 'GET'} ${routeOf(path)}`;
}
