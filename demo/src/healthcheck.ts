/**
 * Container healthcheck for the demo image: `node demo/dist/healthcheck.js <url>`
 * exits 0 when the URL answers 2xx within 3 s, 1 otherwise. (The slim Node.js
 * image has neither curl nor wget.)
 */
const url = process.argv[2] ?? 'http://127.0.0.1:8080/health';
try {
  const res = await fetch(url, { signal: AbortSignal.timeout(3_000) });
  process.exit(res.ok ? 0 : 1);
} catch {
  process.exit(1);
}
