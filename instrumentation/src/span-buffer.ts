/**
 * The exporter's bounded FIFO of encoded spans waiting for the broker. It
 * never grows beyond its span count or byte budget: offers beyond them are
 * refused, and the caller counts the drop.
 */
export interface SpanBufferLimits {
  maxSpans: number;
  maxBytes: number;
}

export class SpanBuffer {
  readonly #limits: SpanBufferLimits;
  #items: Buffer[] = [];
  #head = 0;
  #bytes = 0;

  constructor(limits: SpanBufferLimits) {
    this.#limits = limits;
  }

  get length(): number {
    return this.#items.length - this.#head;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Adds a span at the back; false when the buffer is full. */
  offer(piece: Buffer): boolean {
    if (this.length >= this.#limits.maxSpans || this.#bytes + piece.length > this.#limits.maxBytes) return false;
    this.#items.push(piece);
    this.#bytes += piece.length;
    return true;
  }

  /**
   * Removes and returns the longest run from the front whose message stays
   * within `maxMessageBytes` (at least one span), with the sum of its sizes.
   */
  take(
    maxMessageBytes: number,
    messageBytes: (count: number, pieceBytes: number) => number,
  ): { pieces: Buffer[]; pieceBytes: number } {
    const start = this.#head;
    let end = start;
    let pieceBytes = 0;
    while (end < this.#items.length) {
      const size = (this.#items[end] as Buffer).length;
      if (end > start && messageBytes(end - start + 1, pieceBytes + size) > maxMessageBytes) break;
      pieceBytes += size;
      end++;
    }
    const pieces = this.#items.slice(start, end);
    this.#bytes -= pieceBytes;
    this.#head = end;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head > 4096 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return { pieces, pieceBytes };
  }

  /**
   * Returns spans taken earlier to the front (a failed publish). They were
   * within the limits when offered, so they are accepted even if newer spans
   * filled the buffer meanwhile: the overshoot is bounded by what was in flight.
   */
  putBack(pieces: readonly Buffer[]): void {
    this.#items = [...pieces, ...this.#items.slice(this.#head)];
    this.#head = 0;
    for (const piece of pieces) this.#bytes += piece.length;
  }

  /** Empties the buffer and returns how many spans it held. */
  clear(): number {
    const count = this.length;
    this.#items = [];
    this.#head = 0;
    this.#bytes = 0;
    return count;
  }
}
