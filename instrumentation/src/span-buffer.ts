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
   * The longest run from the front whose message stays within `maxMessageBytes`
   * (at least one span), without removing it.
   */
  peek(maxMessageBytes: number, messageBytes: (count: number, pieceBytes: number) => number): {
    pieces: Buffer[];
    pieceBytes: number;
  } {
    const pieces: Buffer[] = [];
    let pieceBytes = 0;
    for (let i = this.#head; i < this.#items.length; i++) {
      const piece = this.#items[i] as Buffer;
      if (pieces.length > 0 && messageBytes(pieces.length + 1, pieceBytes + piece.length) > maxMessageBytes) break;
      pieces.push(piece);
      pieceBytes += piece.length;
    }
    return { pieces, pieceBytes };
  }

  /** Removes `count` spans from the front. */
  remove(count: number): void {
    const end = Math.min(this.#head + count, this.#items.length);
    for (let i = this.#head; i < end; i++) this.#bytes -= (this.#items[i] as Buffer).length;
    this.#head = end;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head > 4096 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
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
