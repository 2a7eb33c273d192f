// Hex helpers of the proto3 writer and the IPv6 parser.

/** Value of one hex digit (either case), or -1. */
export function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48; // 0-9
  if (c >= 97 && c <= 102) return c - 87; // a-f
  if (c >= 65 && c <= 70) return c - 55; // A-F
  return -1;
}

/**
 * Writes the hex string into `out` at `offset` as bytes. The caller has checked
 * that `hex` has an even length and only hex digits.
 */
export function writeHexBytes(hex: string, out: Uint8Array, offset: number): void {
  for (let i = 0; i < hex.length; i += 2) {
    out[offset + (i >> 1)] = (hexDigit(hex.charCodeAt(i)) << 4) | hexDigit(hex.charCodeAt(i + 1));
  }
}

/** True when every character is a hex digit (either case). */
export function isHex(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (hexDigit(s.charCodeAt(i)) < 0) return false;
  return true;
}
