// IP address text <-> bytes, with the normalisation Zipkin applies: IPv6 is
// written in the RFC 5952 canonical form, and an IPv4-mapped IPv6 address
// (::ffff:a.b.c.d) is reported as IPv4.
import { hexDigit } from './hex.js';

/** Parses dotted-quad IPv4 into 4 bytes (into `out` when given), or returns undefined. */
export function parseIpv4(s: string, out: Uint8Array = new Uint8Array(4)): Uint8Array | undefined {
  if (s.length < 7 || s.length > 15) return undefined;
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i === s.length ? 46 : s.charCodeAt(i);
    if (c === 46) {
      // '.'
      if (digits === 0 || part > 3) return undefined;
      out[part++] = value;
      value = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return undefined; // leading zero: ambiguous (octal?)
      value = value * 10 + (c - 48);
      if (value > 255 || ++digits > 3) return undefined;
    } else {
      return undefined;
    }
  }
  return part === 4 ? out : undefined;
}

/** Parses IPv6 text (optionally with a trailing dotted quad or a %zone) into 16 bytes. */
export function parseIpv6(input: string): Uint8Array | undefined {
  let s = input;
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  if (s.length < 2 || s.length > 45) return undefined;
  const groups: number[] = [];
  let compressAt = -1;
  let i = 0;
  if (s.startsWith('::')) {
    compressAt = 0;
    i = 2;
    if (s.length === 2) return new Uint8Array(16);
  } else if (s.charCodeAt(0) === 58) {
    return undefined; // single leading ':'
  }
  while (i < s.length) {
    // A trailing IPv4 part
    const nextColon = s.indexOf(':', i);
    const token = nextColon < 0 ? s.slice(i) : s.slice(i, nextColon);
    if (nextColon < 0 && token.includes('.')) {
      const v4 = parseIpv4(token);
      if (!v4) return undefined;
      groups.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      break;
    }
    if (token.length === 0 || token.length > 4) return undefined;
    let value = 0;
    for (let k = 0; k < token.length; k++) {
      const d = hexDigit(token.charCodeAt(k));
      if (d < 0) return undefined;
      value = (value << 4) | d;
    }
    groups.push(value);
    if (nextColon < 0) {
      i = s.length;
    } else if (s.charCodeAt(nextColon + 1) === 58) {
      if (compressAt >= 0) return undefined; // a second '::'
      compressAt = groups.length;
      i = nextColon + 2;
    } else {
      i = nextColon + 1;
      if (i === s.length) return undefined; // trailing single ':'
    }
  }
  if (groups.length > 8) return undefined;
  if (compressAt < 0 && groups.length !== 8) return undefined;
  if (compressAt >= 0 && groups.length > 7) return undefined;
  const full: number[] =
    compressAt < 0
      ? groups
      : [...groups.slice(0, compressAt), ...new Array<number>(8 - groups.length).fill(0), ...groups.slice(compressAt)];
  const out = new Uint8Array(16);
  for (let g = 0; g < 8; g++) {
    out[g * 2] = full[g]! >> 8;
    out[g * 2 + 1] = full[g]! & 0xff;
  }
  return out;
}

export function formatIpv4(b: Uint8Array, offset = 0): string {
  return `${b[offset]}.${b[offset + 1]}.${b[offset + 2]}.${b[offset + 3]}`;
}

/** True when the 16 bytes are an IPv4-mapped IPv6 address (::ffff:a.b.c.d). */
export function isIpv4Mapped(b: Uint8Array, offset = 0): boolean {
  for (let k = 0; k < 10; k++) if (b[offset + k] !== 0) return false;
  return b[offset + 10] === 0xff && b[offset + 11] === 0xff;
}

/** RFC 5952 text of 16 bytes: lower-case, no leading zeros, longest zero run as '::'. */
export function formatIpv6(b: Uint8Array, offset = 0): string {
  const groups: number[] = [];
  for (let g = 0; g < 8; g++) groups.push((b[offset + g * 2]! << 8) | b[offset + g * 2 + 1]!);
  let bestStart = -1;
  let bestLen = 1;
  for (let g = 0; g < 8; ) {
    if (groups[g] !== 0) {
      g++;
      continue;
    }
    let end = g;
    while (end < 8 && groups[end] === 0) end++;
    if (end - g > bestLen) {
      bestStart = g;
      bestLen = end - g;
    }
    g = end;
  }
  if (bestStart < 0) return groups.map((x) => x.toString(16)).join(':');
  const head = groups.slice(0, bestStart).map((x) => x.toString(16)).join(':');
  const tail = groups.slice(bestStart + bestLen).map((x) => x.toString(16)).join(':');
  return `${head}::${tail}`;
}

export interface ParsedIp {
  ipv4?: string;
  ipv6?: string;
}

const SCRATCH = new Uint8Array(4);
const IS_IPV4: ParsedIp = {};

/**
 * Normalises an address given in either field, as Zipkin's Endpoint.Builder
 * parseIp does: IPv6 text becomes canonical IPv6 (or IPv4 when mapped).
 * Returns a shared empty object for IPv4 text (which stays as it is), and
 * undefined for text that is no IP address.
 */
export function normalizeIp(s: string): ParsedIp | undefined {
  // The common case allocates nothing: the caller keeps `s` as the IPv4 text.
  if (parseIpv4(s, SCRATCH)) return IS_IPV4;
  if (!s.includes(':')) return undefined;
  const v6 = parseIpv6(s);
  if (!v6) return undefined;
  if (isIpv4Mapped(v6)) return { ipv4: formatIpv4(v6, 12) };
  return { ipv6: formatIpv6(v6) };
}
