// The benchmark's HTTP hello-world server, run as a child process.
//   argv[2]: 'none' (no tracing), 'noop' (SDK + HTTP instrumentation, spans thrown
//   away by a no-op exporter), 'rabbitmq' (SDK + this package's exporter to RabbitMQ,
//   gzipped bodies as by default), 'uncompressed' (the same with compression 'none').
// Prints {"port":N} once listening; GET /__stats answers the exporter's counters and the
// process's CPU time (all threads, and the main thread's alone) and garbage-collection pauses (untraced).
import type { IncomingMessage } from 'node:http';
import { PerformanceObserver } from 'node:perf_hooks';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { startTracing, type TracingHandle } from '../index.js';
import { statCpuMicros } from './proc-cpu.js';

const mode = process.argv[2] ?? 'none';

class NoopExporter implements SpanExporter {
  export(_spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    done({ code: ExportResultCode.SUCCESS });
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

let tracing: TracingHandle | undefined;
if (mode !== 'none') {
  tracing = startTracing({
    serviceName: 'bench-hello',
    instrumentations: [
      new HttpInstrumentation({ ignoreIncomingRequestHook: (request: IncomingMessage) => request.url === '/__stats' }),
    ],
    ...(mode === 'noop' ? { spanExporter: new NoopExporter() } : {}),
    ...(mode === 'uncompressed' ? { compression: 'none' as const } : {}),
  });
}

/**
 * CPU time (µs) of the main thread alone (the event loop: the rest of the process's CPU is libuv's
 * thread pool, where gzip runs, and V8's helper threads), in steps of 10 ms; undefined without /proc.
 */
const mainThreadMicros = (): number | undefined => statCpuMicros(`/proc/self/task/${process.pid}/stat`);

// The main thread's garbage-collection pauses: what the exporter's garbage costs
// shows in no exporter frame of a CPU profile, but here.
let gcMicros = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gcMicros += entry.duration * 1000;
}).observe({ entryTypes: ['gc'] });

const { default: http } = await import('node:http');
const server = http.createServer((request, response) => {
  if (request.url === '/__stats') {
    response.writeHead(200, { 'content-type': 'application/json' });
    const cpu = process.cpuUsage();
    response.end(
      JSON.stringify({ exporter: tracing?.stats(), cpuMicros: cpu.user + cpu.system, systemMicros: cpu.system, mainThreadMicros: mainThreadMicros(), gcMicros }),
    );
    return;
  }
  response.writeHead(200, { 'content-type': 'text/plain' });
  response.end('hello world');
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`);
});
