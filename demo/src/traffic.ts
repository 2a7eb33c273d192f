import { listen, sendJson, type RunningServer } from './http-server.js';
import type { Log } from './log.js';
import { ITEMS } from './backend.js';

export interface TrafficOptions {
  /** The frontend's URL; each request adds `?item=<name>`. */
  readonly targetUrl: string;
  /** Mean pause between requests; each pause varies by ±25 % around it. */
  readonly intervalMillis: number;
  readonly requestTimeoutMillis: number;
  /** Where the generator answers `GET /health` with its counts. */
  readonly host: string;
  readonly port: number;
  readonly log: Log;
}

export interface TrafficCounts {
  sent: number;
  ok: number;
  failed: number;
}

export interface RunningTraffic extends RunningServer {
  readonly counts: Readonly<TrafficCounts>;
}

/**
 * Light, bounded load for the demo: one request at a time, roughly every
 * `intervalMillis`. It never piles requests up: the next one is scheduled only
 * after the previous answered or timed out.
 */
export async function startTraffic(options: TrafficOptions): Promise<RunningTraffic> {
  const counts: TrafficCounts = { sent: 0, ok: 0, failed: 0 };
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> = Promise.resolve();

  const once = async () => {
    const item = ITEMS[counts.sent % ITEMS.length] ?? 'teapot';
    const url = new URL(options.targetUrl);
    url.searchParams.set('item', item);
    counts.sent += 1;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(options.requestTimeoutMillis) });
      await res.arrayBuffer();
      if (res.ok) counts.ok += 1;
      else counts.failed += 1;
    } catch (error) {
      counts.failed += 1;
      if (counts.failed === 1 || counts.failed % 50 === 0) {
        options.log(`request to ${url.toString()} failed (${counts.failed} so far): ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  };

  const schedule = () => {
    if (stopped) return;
    const pause = options.intervalMillis * (0.75 + Math.random() * 0.5);
    timer = setTimeout(() => {
      inFlight = once().finally(schedule);
    }, pause);
  };

  const server = await listen(options, (req, res) => {
    const status = stopped ? 503 : 200;
    if (new URL(req.url ?? '/', 'http://traffic').pathname !== '/health') return Promise.resolve(sendJson(res, 404, {}));
    return Promise.resolve(sendJson(res, status, { status: stopped ? 'stopping' : 'ok', ...counts }));
  });
  schedule();
  return {
    port: server.port,
    counts,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await inFlight;
      await server.stop();
    },
  };
}
