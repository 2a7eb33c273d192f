import { setTimeout as sleep } from 'node:timers/promises';
import { listen, sendJson, type RunningServer } from './http-server.js';

export interface BackendOptions {
  readonly host: string;
  readonly port: number;
  /** Share of price look-ups that fail with a 500, in percent (0 to 100), so that error traces show up too. */
  readonly errorPercent: number;
  /** Longest simulated work per request, in milliseconds. */
  readonly maxDelayMillis: number;
}

const CATALOGUE: Readonly<Record<string, { price: number; stock: number }>> = {
  teapot: { price: 18.5, stock: 12 },
  kettle: { price: 32, stock: 4 },
  mug: { price: 7.25, stock: 140 },
  saucer: { price: 4.5, stock: 0 },
  strainer: { price: 9.9, stock: 31 },
};

export const ITEMS: readonly string[] = Object.keys(CATALOGUE);

/**
 * The demo's `backend` service: inventory and price look-ups with a little
 * simulated work, and an occasional failure.
 *
 * - `GET /inventory/<item>` → `{ item, stock }`
 * - `GET /price/<item>` → `{ item, price }` (fails now and then)
 * - `GET /health` → `{ status: "ok" }`
 */
export function startBackend(options: BackendOptions): Promise<RunningServer> {
  const work = () => sleep(Math.round(Math.random() * options.maxDelayMillis));
  return listen(options, async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://backend');
    if (req.method !== 'GET') return sendJson(res, 405, { error: 'only GET' });
    if (url.pathname === '/health') return sendJson(res, 200, { status: 'ok' });
    const match = /^\/(inventory|price)\/([a-z]+)$/.exec(url.pathname);
    if (match === null) return sendJson(res, 404, { error: `no route ${url.pathname}` });
    const [, what, item = ''] = match;
    const entry = CATALOGUE[item];
    await work();
    if (entry === undefined) return sendJson(res, 404, { error: `unknown item ${item}` });
    if (what === 'inventory') return sendJson(res, 200, { item, stock: entry.stock });
    if (Math.random() * 100 < options.errorPercent) return sendJson(res, 500, { error: 'price service unavailable' });
    return sendJson(res, 200, { item, price: entry.price });
  });
}
