import { setTimeout as sleep } from 'node:timers/promises';

export interface WaitForHttpOptions {
  readonly timeoutMillis: number;
  readonly intervalMillis?: number;
  /** Checked between attempts: waiting ends early when it returns a reason to give up. */
  readonly giveUp?: () => string | undefined;
}

/**
 * Polls `url` until it answers 2xx. Rejects with the last error once
 * `timeoutMillis` has passed or `giveUp` returned a reason.
 */
export async function waitForHttp(url: string, options: WaitForHttpOptions): Promise<void> {
  const deadline = Date.now() + options.timeoutMillis;
  let last: string;
  for (;;) {
    const reason = options.giveUp?.();
    if (reason !== undefined) throw new Error(`${url}: ${reason}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.ok) return;
      last = `HTTP ${res.status}`;
    } catch (error) {
      last = error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error);
    }
    if (Date.now() >= deadline) throw new Error(`${url}: not ready within ${options.timeoutMillis} ms (last: ${last})`);
    await sleep(options.intervalMillis ?? 250);
  }
}
