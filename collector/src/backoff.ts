/** Exponential backoff with jitter, shared by insert retries and reconnects. */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** Growth per attempt; 2 doubles. */
  factor?: number;
  /** Fraction of the delay randomised downwards, 0..1. */
  jitter?: number;
}

/** Delay before retry number `attempt` (1 = first retry). Never above maxMs. */
export function backoffDelay(attempt: number, o: BackoffOptions, random: () => number = Math.random): number {
  const factor = o.factor ?? 2;
  const jitter = o.jitter ?? 0.2;
  const base = Math.min(o.maxMs, o.initialMs * factor ** Math.max(0, attempt - 1));
  return Math.max(1, Math.round(base * (1 - jitter * random())));
}

/** Resolves after `ms`, or early when the signal aborts. The timer never keeps the process alive. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    timer.unref();
    signal?.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}
