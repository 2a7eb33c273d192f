/**
 * Long synchronous work split into turns of the event loop. Parsing the 50 MB
 * of a 120 000-span trace in one go held a query API's event loop for seconds:
 * every other request waited, and the request's own timeout could not fire.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';

/** How long one turn may run before it gives the event loop back. */
const TURN_MS = 10;

export class EventLoopTurns {
  #turnStarted = performance.now();

  constructor(private readonly signal?: AbortSignal) {}

  /** True once the current turn has run TURN_MS: time to call next(). Cheap enough to ask per item. */
  due(): boolean {
    return performance.now() - this.#turnStarted >= TURN_MS;
  }

  /** Gives the event loop a turn, then throws if the work was aborted meanwhile (a timeout, a client gone). */
  async next(): Promise<void> {
    await nextTurn();
    this.signal?.throwIfAborted();
    this.#turnStarted = performance.now();
  }
}
