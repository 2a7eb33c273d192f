// Runs a startTracing scenario in a fresh Node.js process: startTracing
// registers global OpenTelemetry state (tracer, meter and propagator), which a
// test process can only set once.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));

/**
 * Code put before every script: `warnings` collects what the library logs
 * through diag at WARN and above, and `report(value)` prints the result the
 * test reads (the last line of stdout).
 */
const PRELUDE = `
import { diag, DiagLogLevel } from '@opentelemetry/api';
const warnings = [];
const keep = (...args) => warnings.push(args.map(String).join(' '));
diag.setLogger({ error: keep, warn: keep, info() {}, debug() {}, verbose() {} }, DiagLogLevel.WARN);
const report = (value) => process.stdout.write('\\n' + JSON.stringify(value) + '\\n');
`;

/** Runs the ES module `source` in a fresh process with exactly `env` (plus PATH). */
function runModule(source: string, env: Record<string, string>): Promise<{ stdout: string; stderr: string }> {
  return promisify(execFile)(process.execPath, ['--input-type=module', '-e', source], {
    cwd: PACKAGE_DIR,
    env: { PATH: process.env.PATH ?? '', ...env },
    timeout: 30_000,
  });
}

/**
 * Runs `script` (an ES module importing from the built package,
 * `@tracehouse/instrumentation`, so `tsc -b` must have run) with exactly
 * `env` as its environment (plus PATH) and returns what it reported.
 */
export async function runChild<T>(script: string, env: Record<string, string> = {}): Promise<T> {
  const { stdout } = await runModule(PRELUDE + script, env);
  const last = stdout.trimEnd().split('\n').pop();
  if (last === undefined || last === '') throw new Error('the script reported nothing');
  return JSON.parse(last) as T;
}

/**
 * Runs `script` as runChild does but without the prelude (so no diag logger
 * is installed unless the script or the library installs one) and returns
 * what the process wrote to stderr.
 */
export async function runChildForStderr(script: string, env: Record<string, string> = {}): Promise<string> {
  return (await runModule(script, env)).stderr;
}
