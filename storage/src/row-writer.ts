/**
 * Appends TabSeparated text to a growing Buffer, byte by byte.
 *
 * Hand-written because it is the writer's hot path: building each row as a
 * JavaScript string and converting it with `buffer.write` spent most of its
 * time concatenating ~60 pieces per row, in `JSON.stringify` of the tags and
 * in the garbage those strings leave (CPU profile of the collector). Copying
 * ASCII text with `charCodeAt` straight into the Buffer makes no intermediate
 * string at all (`npm run bench -w storage` prints the row-building rate).
 *
 * Every method has a fast path for ASCII text that needs no escaping (ids,
 * names, tag keys and values in practice) and falls back, for that one string,
 * to building its escaped form as a string and writing it as UTF-8.
 */

const BACKSLASH = 0x5c;
const QUOTE = 0x27; // '
const DOUBLE_QUOTE = 0x22;
const UPPER_A = 0x41;
const UPPER_Z = 0x5a;
const ZERO = 0x30;

const NEEDS_TSV_ESCAPE = /[\\\t\n\r]/;

/** A TabSeparated field: backslash, tab, newline and carriage return escaped. */
export function tsvField(value: string): string {
  if (!NEEDS_TSV_ESCAPE.test(value)) return value;
  return value.replace(/[\\\t\n\r]/g, (ch) => (ch === '\\' ? '\\\\' : ch === '\t' ? '\\t' : ch === '\n' ? '\\n' : '\\r'));
}

/** A string element inside a TabSeparated array field: `'...'` with escapes. */
function quotedElement(value: string): string {
  const escaped = value.replace(/[\\'\t\n\r\0]/g, (ch) => {
    switch (ch) {
      case '\\': return '\\\\';
      case "'": return "\\'";
      case '\t': return '\\t';
      case '\n': return '\\n';
      case '\r': return '\\r';
      default: return '\\0';
    }
  });
  return `'${escaped}'`;
}

/**
 * JSON text inside a TabSeparated field: JSON never holds a raw tab, newline
 * or carriage return, so only its backslashes need doubling.
 */
export function jsonInTsv(json: string): string {
  return json.indexOf('\\') === -1 ? json : json.replace(/\\/g, '\\\\');
}

/** JSON.stringify's string literal, as it stands inside a TabSeparated field. */
function jsonLiteralInTsv(text: string): string {
  return jsonInTsv(JSON.stringify(text));
}

export class RowWriter {
  buffer: Buffer;
  length = 0;

  constructor(initialBytes = 256 * 1024) {
    this.buffer = Buffer.allocUnsafe(initialBytes);
  }

  /** Makes room for `bytes` more bytes. */
  reserve(bytes: number): void {
    if (this.length + bytes <= this.buffer.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.length + bytes));
    this.buffer.copy(bigger, 0, 0, this.length);
    this.buffer = bigger;
  }

  /** One ASCII character. */
  char(code: number): void {
    if (this.length === this.buffer.length) this.reserve(1);
    this.buffer[this.length++] = code;
  }

  /** Text known to be ASCII that needs no escaping (constants, numbers). */
  ascii(text: string): void {
    this.reserve(text.length);
    const buffer = this.buffer;
    let at = this.length;
    for (let i = 0; i < text.length; i++) buffer[at++] = text.charCodeAt(i);
    this.length = at;
  }

  /** Any string as UTF-8, already escaped by the caller. */
  utf8(text: string): void {
    this.reserve(text.length * 3);
    this.length += this.buffer.write(text, this.length);
  }

  /**
   * A non-negative safe integer in decimal; anything else as `String(value)`
   * (JSON's number text for finite numbers).
   */
  number(value: number): void {
    if (!(value >= 0 && value <= Number.MAX_SAFE_INTEGER && Math.floor(value) === value)) {
      this.ascii(Number.isFinite(value) ? String(value) : 'null');
      return;
    }
    // Microsecond timestamps have 16 digits: split into int32-sized halves of
    // at most 8 digits, whose digits come from cheap integer arithmetic.
    const high = Math.floor(value / 1e8);
    const low = value - high * 1e8;
    if (high === 0) {
      this.uint32(low, 0);
      return;
    }
    this.uint32(high, 0);
    this.uint32(low, 8);
  }

  /** An integer below 10^8 in decimal, left-padded with zeros to `width` digits. */
  private uint32(value: number, width: number): void {
    let digits = 1;
    for (let rest = value; rest >= 10; rest = (rest / 10) | 0) digits++;
    if (digits < width) digits = width;
    this.reserve(digits);
    const buffer = this.buffer;
    let at = this.length + digits - 1;
    let rest = value | 0;
    for (let i = 0; i < digits; i++) {
      const next = (rest / 10) | 0;
      buffer[at--] = ZERO + (rest - next * 10);
      rest = next;
    }
    this.length += digits;
  }

  /** A TabSeparated field, optionally lower-cased (ASCII and Unicode alike). */
  tsv(text: string, lowerCase = false): void {
    this.reserve(text.length);
    const buffer = this.buffer;
    let at = this.length;
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i);
      // Tab, newline, carriage return (all < 0x20 here), backslash, non-ASCII: slow path.
      if (code < 0x20 || code === BACKSLASH || code >= 0x80) {
        this.utf8(tsvField(lowerCase ? text.toLowerCase() : text));
        return;
      }
      buffer[at++] = lowerCase && code >= UPPER_A && code <= UPPER_Z ? code + 32 : code;
    }
    this.length = at;
  }

  /** A string element of a TabSeparated array: `'text'`. */
  quoted(text: string): void {
    this.delimited(text, QUOTE, quotedElement);
  }

  /** A JSON string literal (`JSON.stringify(text)`) inside a TabSeparated field. */
  jsonString(text: string): void {
    this.delimited(text, DOUBLE_QUOTE, jsonLiteralInTsv);
  }

  /**
   * `text` between two `quote`s. Controls, backslash and the quote itself need
   * escapes, and non-ASCII needs UTF-8 (and, in JSON, the escaping of lone
   * surrogates): such a string is written as `escaped(text)` instead.
   */
  private delimited(text: string, quote: number, escaped: (text: string) => string): void {
    this.reserve(text.length + 2);
    const buffer = this.buffer;
    let at = this.length;
    buffer[at++] = quote;
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i);
      if (code < 0x20 || code === BACKSLASH || code === quote || code >= 0x80) {
        this.utf8(escaped(text));
        return;
      }
      buffer[at++] = code;
    }
    buffer[at++] = quote;
    this.length = at;
  }
}
