import { httpGet } from './http-get.js';
import { listen, sendJson, type RunningServer } from './http-server.js';
import { ITEMS } from './backend.js';

export interface FrontendOptions {
  readonly host: string;
  readonly port: number;
  /** Base URL of the backend service, e.g. `http://127.0.0.1:8081/`. */
  readonly backendUrl: string;
  readonly backendTimeoutMillis: number;
}

/**
 * The demo's `frontend` service. `GET /?item=<name>` (a random item when
 * absent) asks the backend for stock and price in parallel and answers
 * `{ item, stock, price }`, or 502 when the backend failed. `GET /health`
 * answers `{ status: "ok" }` without calling the backend.
 */
export function startFrontend(options: FrontendOptions): Promise<RunningServer> {
  const backend = (path: string) => httpGet(new URL(path, options.backendUrl).toString(), options.backendTimeoutMillis);
  return listen(options, async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://frontend');
    if (req.method !== 'GET') return sendJson(res, 405, { error: 'only GET' });
    if (url.pathname === '/health') return sendJson(res, 200, { status: 'ok' });
    if (url.pathname !== '/') return sendJson(res, 404, { error: `no route ${url.pathname}` });
    const item = url.searchParams.get('item') ?? ITEMS[Math.floor(Math.random() * ITEMS.length)] ?? 'teapot';
    if (!/^[a-z]+$/.test(item)) return sendJson(res, 400, { error: 'item: expected lower-case letters' });
    let answers;
    try {
      answers = await Promise.all([backend(`inventory/${item}`), backend(`price/${item}`)]);
    } catch (error) {
      return sendJson(res, 502, { error: `backend unreachable: ${error instanceof Error ? error.message : String(error)}` });
    }
    const [inventory, price] = answers;
    if (inventory.status !== 200 || price.status !== 200) {
      const status = inventory.status === 404 ? 404 : 502;
      return sendJson(res, status, { error: 'backend failed', inventory: inventory.status, price: price.status });
    }
    const { stock } = JSON.parse(inventory.body) as { stock: number };
    const { price: amount } = JSON.parse(price.body) as { price: number };
    return sendJson(res, 200, { item, stock, price: amount });
  });
}
