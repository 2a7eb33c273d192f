import { StorageError } from './storage-error.js';

/**
 * Parameter binding: the one place where values meet SQL.
 *
 * Every query is a constant template written in this package, with
 * `{name:Type}` placeholders (ClickHouse's own syntax). `bindSql` either
 * leaves the placeholders for the server to bind (`{ mode: 'server' }`,
 * ClickHouse >= 19.x and the embedded engine) or replaces each one with a
 * typed, escaped literal (`{ mode: 'literal' }`, for 18.16 which rejects
 * `param_*`). Either way the value is checked against the declared type first,
 * so both modes accept and refuse exactly the same inputs.
 */

export type BindMode = 'server' | 'literal';

export interface BoundSql {
  /** SQL to send. In literal mode it contains no placeholders. */
  sql: string;
  /** Values for the server to bind (server mode), already checked. */
  params: Record<string, string | number | string[] | number[]>;
}

// An array placeholder right after IN: old servers want a tuple there.
const IN_PLACEHOLDER = /(\bIN\s+)?\{([A-Za-z_][A-Za-z0-9_]*):([A-Za-z0-9_()]+)\}/g;

const INTEGER_RANGES: Record<string, readonly [bigint, bigint]> = {
  UInt8: [0n, 255n],
  UInt16: [0n, 65_535n],
  UInt32: [0n, 4_294_967_295n],
  UInt64: [0n, 18_446_744_073_709_551_615n],
  Int64: [-9_223_372_036_854_775_808n, 9_223_372_036_854_775_807n],
};

function badInput(message: string): StorageError {
  return new StorageError({ code: 'bad_input', message, retryable: false });
}

/** Checks an integer against a ClickHouse integer type and returns its decimal text. */
function integerText(name: string, type: string, value: unknown): string {
  const range = INTEGER_RANGES[type];
  if (range === undefined) throw badInput(`parameter ${name}: unsupported type ${type}`);
  let big: bigint;
  if (typeof value === 'bigint') big = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) big = BigInt(value);
  else throw badInput(`parameter ${name} must be an integer for ${type}, got ${describe(value)}`);
  if (big < range[0] || big > range[1]) throw badInput(`parameter ${name} is out of range for ${type}`);
  return big.toString();
}

function floatText(name: string, value: unknown): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw badInput(`parameter ${name} must be a finite number, got ${describe(value)}`);
  }
  // Exponent notation is valid ClickHouse float syntax; String(1e21) === '1e+21'.
  return String(value);
}

function stringValue(name: string, value: unknown): string {
  if (typeof value !== 'string') throw badInput(`parameter ${name} must be a string, got ${describe(value)}`);
  return value;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}

/**
 * A ClickHouse string literal: single-quoted, with backslash, quote and the
 * control characters escaped. ClickHouse interprets backslash escapes inside
 * literals, so escaping backslash first makes every other byte literal.
 */
export function quoteString(value: string): string {
  let out = "'";
  for (let i = 0; i < value.length; i++) {
    const ch = value.charCodeAt(i);
    switch (ch) {
      case 0x5c: out += '\\\\'; break; // backslash
      case 0x27: out += "\\'"; break; // single quote
      case 0x00: out += '\\0'; break;
      case 0x08: out += '\\b'; break;
      case 0x09: out += '\\t'; break;
      case 0x0a: out += '\\n'; break;
      case 0x0c: out += '\\f'; break;
      case 0x0d: out += '\\r'; break;
      default: out += value[i];
    }
  }
  return out + "'";
}

/** Renders a checked value of a placeholder type as a ClickHouse literal. */
export function renderLiteral(name: string, type: string, value: unknown): string {
  switch (type) {
    case 'String':
      return quoteString(stringValue(name, value));
    case 'Float64':
      return floatText(name, value);
    case 'Array(String)':
    case 'Array(UInt64)': {
      if (!Array.isArray(value)) throw badInput(`parameter ${name} must be an array, got ${describe(value)}`);
      const inner = type === 'Array(String)' ? 'String' : 'UInt64';
      return `[${(value as unknown[]).map((v, i) => renderLiteral(`${name}[${i}]`, inner, v)).join(',')}]`;
    }
    default:
      return integerText(name, type, value);
  }
}

/** Checks a value for server-side binding and returns what the driver sends. */
function serverValue(name: string, type: string, value: unknown): string | number | string[] | number[] {
  switch (type) {
    case 'String':
      return stringValue(name, value);
    case 'Float64':
      floatText(name, value);
      return value as number;
    case 'Array(String)':
      if (!Array.isArray(value)) throw badInput(`parameter ${name} must be an array, got ${describe(value)}`);
      return (value as unknown[]).map((v, i) => stringValue(`${name}[${i}]`, v));
    case 'Array(UInt64)':
      if (!Array.isArray(value)) throw badInput(`parameter ${name} must be an array, got ${describe(value)}`);
      return (value as unknown[]).map((v, i) => Number(integerText(`${name}[${i}]`, 'UInt64', v)));
    default: {
      const text = integerText(name, type, value);
      // Bigints beyond 2^53 travel as decimal strings; the server parses them.
      const n = Number(text);
      return Number.isSafeInteger(n) ? n : text;
    }
  }
}

/**
 * Binds `params` into a constant SQL template. Every placeholder must have a
 * value and every value a placeholder; a placeholder may appear more than once
 * but always with the same type.
 */
export function bindSql(template: string, params: Record<string, unknown>, mode: BindMode): BoundSql {
  const types = new Map<string, string>();
  for (const match of template.matchAll(IN_PLACEHOLDER)) {
    const [, inKeyword, name, type] = match as unknown as [string, string | undefined, string, string];
    // Both modes refuse an empty IN list, so they accept exactly the same inputs.
    if (inKeyword !== undefined && Array.isArray(params[name]) && (params[name] as unknown[]).length === 0) {
      throw badInput(`parameter ${name}: IN needs at least one value`);
    }
    const seen = types.get(name);
    if (seen !== undefined && seen !== type) throw badInput(`parameter ${name} declared as ${seen} and ${type}`);
    types.set(name, type);
  }
  for (const name of Object.keys(params)) {
    if (!types.has(name)) throw badInput(`parameter ${name} has no placeholder in the query`);
  }
  const checked: BoundSql['params'] = {};
  for (const [name, type] of types) {
    if (!Object.hasOwn(params, name) || params[name] === undefined) throw badInput(`parameter ${name} is missing`);
    checked[name] = serverValue(name, type, params[name]);
  }
  if (mode === 'server') return { sql: template, params: checked };
  const sql = template.replace(IN_PLACEHOLDER, (_all, inKeyword: string | undefined, name: string, type: string) => {
    const literal = renderLiteral(name, type, params[name]);
    if (inKeyword === undefined) return literal;
    if (!type.startsWith('Array(')) return inKeyword + literal;
    // `x IN ['a','b']` is a type error on 18.16; `x IN ('a','b')` is the same set.
    return `${inKeyword}(${literal.slice(1, -1)})`;
  });
  return { sql, params: {} };
}

const SYSTEM_DATABASES: ReadonlySet<string> = new Set(['system', 'information_schema']);

/**
 * Database and table names come from configuration, never from requests, but
 * they are still checked before they are written into SQL.
 */
export function checkIdentifier(kind: string, value: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(value)) {
    throw new StorageError({
      code: 'bad_input',
      retryable: false,
      message: `${kind} "${value}" is not a plain identifier ([A-Za-z_][A-Za-z0-9_]*, at most 63 characters)`,
    });
  }
  // ClickHouse's own databases: migrations (and dropDatabase) must never touch them.
  if (kind === 'database' && SYSTEM_DATABASES.has(value.toLowerCase())) {
    throw new StorageError({ code: 'bad_input', retryable: false, message: `database "${value}" is ClickHouse's own` });
  }
  return value;
}
