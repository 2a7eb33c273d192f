// Test support: validates response bodies against the schemas of
// shared/reference/zipkin2-api.yaml (Swagger 2.0) with ajv + ajv-formats.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { parse } from 'yaml';

/** The reference specification; TRACEHOUSE_ZIPKIN_API_SPEC overrides the path. */
export const SPEC_PATH =
  process.env['TRACEHOUSE_ZIPKIN_API_SPEC'] ??
  fileURLToPath(new URL('../../../shared/reference/zipkin2-api.yaml', import.meta.url));

interface SwaggerDocument {
  definitions: Record<string, unknown>;
  paths: Record<string, Record<string, { responses?: Record<string, { schema?: unknown }> }>>;
}

/**
 * Routes this server has that the reference does not describe, with the body
 * Zipkin's server answers there:
 * - /remoteServices (Zipkin 2.17+) answers a list of names, like /services.
 */
const EXTRA_ROUTES: Record<string, unknown> = {
  '/remoteServices': { type: 'array', items: { type: 'string' } },
};

/**
 * Where the reference is wrong about what Zipkin answers. The reference declares
 * `GET /spans` as a ListOfSpans, but Zipkin's server, its UI and Grafana all
 * treat it as the span *names* of a service (a list of strings), which is what
 * this server returns.
 */
const CORRECTIONS: Record<string, unknown> = {
  '/spans': { type: 'array', items: { type: 'string' } },
};

export class ZipkinSpec {
  readonly document: SwaggerDocument;
  private readonly ajv: Ajv;
  private readonly cache = new Map<string, ValidateFunction>();

  constructor(path = SPEC_PATH) {
    this.document = parse(readFileSync(path, 'utf8')) as SwaggerDocument;
    this.ajv = new Ajv({ allErrors: true, strict: false });
    const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
    addFormats(this.ajv);
    // Swagger 2.0's numeric formats: JSON numbers of any size pass; the type check still applies.
    this.ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isInteger(n) });
    this.ajv.addFormat('int32', { type: 'number', validate: (n: number) => Number.isInteger(n) && Math.abs(n) < 2 ** 31 });
  }

  /** The schema of `GET <path>`'s `status` response, `path` as written in the spec (e.g. /trace/{traceId}). */
  private schemaFor(path: string, status: number): unknown {
    if (status === 200 && CORRECTIONS[path] !== undefined) return CORRECTIONS[path];
    if (status === 200 && EXTRA_ROUTES[path] !== undefined) return EXTRA_ROUTES[path];
    const operation = this.document.paths[path]?.['get'];
    if (operation === undefined) throw new Error(`the specification has no GET ${path}`);
    const response = operation.responses?.[String(status)];
    if (response === undefined) throw new Error(`the specification has no ${status} response for GET ${path}`);
    return response.schema;
  }

  /** Throws with ajv's errors unless `body` matches the spec for GET `path` answering `status`. */
  assertResponse(path: string, status: number, body: unknown): void {
    const key = `${path} ${status}`;
    let validate = this.cache.get(key);
    if (validate === undefined) {
      const schema = this.schemaFor(path, status);
      if (schema === undefined) {
        // The spec declares this status without a body schema (e.g. 400, 404).
        validate = Object.assign(() => true, { errors: null }) as unknown as ValidateFunction;
      } else {
        validate = this.ajv.compile({ ...(schema as object), definitions: this.document.definitions });
      }
      this.cache.set(key, validate);
    }
    if (!validate(body)) {
      throw new Error(`GET ${path} ${status} does not match the specification: ${this.ajv.errorsText(validate.errors)}`);
    }
  }

  /** The spec's path template for a request URL, e.g. /api/v2/trace/abc → /trace/{traceId}. */
  static pathOf(url: string): string {
    const path = (url.split('?')[0] ?? '').replace(/^\/api\/v2/, '');
    return path.startsWith('/trace/') ? '/trace/{traceId}' : path;
  }
}
