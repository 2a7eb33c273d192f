/**
 * Reading the demo's environment variables. Every reader names the variable
 * and what it accepts when a value cannot be used; the bins turn that into a
 * message and exit code 2.
 */

export type Env = Readonly<Record<string, string | undefined>>;

export class DemoConfigError extends Error {
  override readonly name = 'DemoConfigError';
  constructor(
    readonly variable: string,
    accepts: string,
    value: string,
  ) {
    super(`${variable}: expected ${accepts}, got "${value}"`);
  }
}

function raw(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

export function readString(env: Env, name: string, fallback: string): string {
  return raw(env, name) ?? fallback;
}

export function readInteger(env: Env, name: string, fallback: number, min: number, max: number): number {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  const accepts = `a whole number from ${min} to ${max}`;
  if (!/^\d+$/.test(value)) throw new DemoConfigError(name, accepts, value);
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new DemoConfigError(name, accepts, value);
  return n;
}

export function readPort(env: Env, name: string, fallback: number): number {
  return readInteger(env, name, fallback, 1, 65_535);
}

/** A comma-separated list of ports, e.g. `9412,9413`; at least one. */
export function readPortList(env: Env, name: string, fallback: readonly number[]): readonly number[] {
  const value = raw(env, name);
  if (value === undefined) return Object.freeze([...fallback]);
  const accepts = 'a comma-separated list of ports from 1 to 65535, such as 9412,9413';
  const ports = value.split(',').map((part) => part.trim());
  if (ports.some((p) => !/^\d+$/.test(p) || Number(p) < 1 || Number(p) > 65_535)) {
    throw new DemoConfigError(name, accepts, value);
  }
  if (new Set(ports).size !== ports.length) throw new DemoConfigError(name, `${accepts}, each once`, value);
  return Object.freeze(ports.map(Number));
}

export function readHttpUrl(env: Env, name: string, fallback: string): string {
  const value = readString(env, name, fallback);
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new DemoConfigError(name, 'an http:// or https:// URL', value);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new DemoConfigError(name, 'an http:// or https:// URL', value);
  }
  return parsed.toString();
}
