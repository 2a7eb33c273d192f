import http from 'node:http';

export interface GetResult {
  readonly status: number;
  readonly body: string;
}

/**
 * GET over `node:http` (not `fetch`), so that the OpenTelemetry HTTP
 * instrumentation makes a client span and propagates the trace context.
 * Rejects on a network error or when no full answer came within `timeoutMillis`.
 */
export function httpGet(url: string, timeoutMillis: number): Promise<GetResult> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMillis }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within ${timeoutMillis} ms`)));
    req.on('error', reject);
  });
}
