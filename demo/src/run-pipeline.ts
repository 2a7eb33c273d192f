/**
 * `npm start`: the whole pipeline on this machine, without Docker. Starts two
 * collectors, the query API, the demo services and their traffic as child
 * processes, waits until each is ready, prints where to look, and stops
 * everything in order on Ctrl-C (SIGINT) or SIGTERM. RabbitMQ and ClickHouse
 * must answer already: `npm start` runs `npm run services` first.
 *
 * Exit codes: 0 after a clean stop; 1 when a part failed to start, died, or
 * had to be killed; 2 for a bad configuration.
 */
import { fileURLToPath } from 'node:url';
import { DemoConfigError } from './env.js';
import { Pipeline, stoppedCleanly } from './pipeline.js';
import { PIPELINE_CONFIG_HELP, parsePipelineConfig, type PipelineConfig } from './pipeline-config.js';
import { portInUse } from './port-in-use.js';

const write = (line: string) => {
  process.stdout.write(`${line}\n`);
};
const say = (message: string) => write(`[pipeline] ${message}`);

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  process.stdout.write(PIPELINE_CONFIG_HELP);
  process.exit(0);
}

let config: PipelineConfig;
try {
  config = parsePipelineConfig();
} catch (error) {
  if (!(error instanceof DemoConfigError)) throw error;
  process.stderr.write(`run-pipeline: bad configuration: ${error.message}\n\n${PIPELINE_CONFIG_HELP}`);
  process.exit(2);
}

/** Hides the password of a URL for printing. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
let exitCode = 0;
let shuttingDown: Promise<void> | undefined;

const pipeline = new Pipeline({
  config,
  repoRoot,
  env: process.env,
  write,
  onUnexpectedExit: (name, status) => {
    const how = status.signal !== null ? `signal ${status.signal}` : `code ${status.code ?? '?'}`;
    shutdown(1, `${name} exited unexpectedly (${how}); stopping the rest`);
  },
});

function shutdown(code: number, reason: string): void {
  exitCode = Math.max(exitCode, code);
  if (shuttingDown !== undefined) return;
  say(reason);
  shuttingDown = pipeline.stop().then((stopped) => {
    const unclean = stopped.filter((part) => !stoppedCleanly(part));
    if (unclean.length > 0) exitCode = 1;
    say(
      unclean.length === 0
        ? `stopped: all ${stopped.length} processes exited cleanly`
        : `stopped: ${unclean.map((p) => p.name).join(', ')} did not exit cleanly`,
    );
    say(`exit code ${exitCode}`);
    process.exit(exitCode);
  });
}

process.on('SIGINT', () => shutdown(0, 'SIGINT: stopping every process'));
process.on('SIGTERM', () => shutdown(0, 'SIGTERM: stopping every process'));
process.on('SIGHUP', () => shutdown(0, 'SIGHUP: stopping every process'));
// However the pipeline ends, it leaves no process behind.
process.on('exit', () => pipeline.killAll());

say(`pid=${process.pid}`);
const ports: [string, number][] = [
  ['TRACEHOUSE_QUERY_PORT', config.queryPort],
  ...config.collectorPorts.map((p): [string, number] => ['TRACEHOUSE_COLLECTOR_PORTS', p]),
  ['TRACEHOUSE_DEMO_FRONTEND_PORT', config.frontendPort],
  ['TRACEHOUSE_DEMO_BACKEND_PORT', config.backendPort],
  ['TRACEHOUSE_DEMO_TRAFFIC_PORT', config.trafficPort],
];
const busy = (await Promise.all(ports.map(async ([v, p]) => ((await portInUse(p)) ? `${p} (${v})` : undefined)))).filter(
  (x) => x !== undefined,
);
if (busy.length > 0) {
  process.stderr.write(
    `run-pipeline: port ${busy.join(', ')} already in use; stop what listens there or choose other ports.\n`,
  );
  process.exit(1);
}

try {
  await pipeline.start();
} catch (error) {
  // A stop asked for while starting (Ctrl-C) is not a failure to start.
  if (shuttingDown === undefined) {
    shutdown(1, `start failed: ${error instanceof Error ? error.message : String(error)}; stopping what started`);
  }
}

if (shuttingDown === undefined) {
  const api = `http://127.0.0.1:${config.queryPort}`;
  const lines = [
    '',
    'tracehouse is running. Traces appear a few seconds after each request.',
    '',
    `  services        curl ${api}/api/v2/services`,
    `  recent traces   curl '${api}/api/v2/traces?serviceName=frontend&limit=5'`,
    `  one trace       curl ${api}/api/v2/trace/<traceId>`,
    // Double quotes: the shell must expand $(date ...) for the command to work when pasted.
    `  dependencies    curl "${api}/api/v2/dependencies?endTs=$(date +%s000)&lookback=3600000"`,
    `  OpenAPI         ${api}/openapi.json   (point a Zipkin UI at ${api})`,
    `  demo            curl 'http://127.0.0.1:${config.frontendPort}/?item=teapot'   (frontend → backend)`,
    `  collectors      ${config.collectorPorts.map((p) => `http://127.0.0.1:${p}/metrics`).join('  ')}   (/ready, /health too)`,
    `  queue           "${config.queue}" on ${redact(config.rabbitmqUrl)}   (rabbitmqctl list_queues name messages consumers)`,
    `  dead letters    "${config.queue}.dlq"`,
    `  ClickHouse      ${redact(config.clickhouseUrl)} database "${config.clickhouseDatabase}"`,
    '',
    ...(process.env['TRACEHOUSE_QUERY_BEARER_TOKEN']?.trim()
      ? ['  (TRACEHOUSE_QUERY_BEARER_TOKEN is set: add -H "Authorization: Bearer $TRACEHOUSE_QUERY_BEARER_TOKEN" to the API calls)', '']
      : []),
    'Press Ctrl-C to stop everything.',
    '',
  ];
  for (const line of lines) write(line);
  say('ready');
}
