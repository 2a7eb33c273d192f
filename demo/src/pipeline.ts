import { existsSync } from 'node:fs';
import path from 'node:path';
import type { PipelineConfig } from './pipeline-config.js';
import { SupervisedProcess, type ExitStatus, type StopResult } from './supervised-process.js';
import { waitForHttp } from './wait-for-http.js';

export interface PipelineOptions {
  readonly config: PipelineConfig;
  /** The repository root: bins are run from their `dist/` folders there. */
  readonly repoRoot: string;
  /** The environment every process inherits. */
  readonly env: NodeJS.ProcessEnv;
  /** Where the pipeline's own and the children's (prefixed) lines go. */
  readonly write: (line: string) => void;
  /** Called once when a process exits without having been asked to. */
  readonly onUnexpectedExit: (name: string, status: ExitStatus) => void;
}

/** One process of the pipeline and how to tell it is ready. */
export interface PartSpec {
  readonly name: string;
  /** Script relative to the repository root, run with this Node.js. */
  readonly script: string;
  readonly env: Readonly<Record<string, string>>;
  readonly readyUrl: string;
  /** Parts start stage by stage, each stage once the previous one is ready, and stop in reverse. */
  readonly stage: number;
}

export interface StoppedPart extends StopResult {
  readonly name: string;
  readonly pid: number | undefined;
  readonly millis: number;
}

const local = (port: number, pathname: string) => `http://127.0.0.1:${port}${pathname}`;

/** The parts `npm start` runs: collectors and the query API, then the demo services, then the traffic. */
export function pipelineParts(config: PipelineConfig, env: NodeJS.ProcessEnv): PartSpec[] {
  const demoEnv = {
    TRACEHOUSE_DEMO_HOST: '127.0.0.1',
    // Spans reach the queue a second after the request rather than five (the SDK's default), unless set.
    OTEL_BSP_SCHEDULE_DELAY: env['OTEL_BSP_SCHEDULE_DELAY'] ?? '1000',
  };
  return [
    ...config.collectorPorts.map((port, i) => ({
      name: `collector-${i + 1}`,
      script: 'collector/dist/bin.js',
      env: { TRACEHOUSE_COLLECTOR_PORT: String(port) },
      readyUrl: local(port, '/ready'),
      stage: 0,
    })),
    {
      name: 'query-api',
      script: 'query-api/dist/bin.js',
      env: { TRACEHOUSE_QUERY_PORT: String(config.queryPort) },
      readyUrl: local(config.queryPort, '/health'),
      stage: 0,
    },
    {
      name: 'backend',
      script: 'demo/dist/backend-main.js',
      env: { ...demoEnv, TRACEHOUSE_DEMO_BACKEND_PORT: String(config.backendPort) },
      readyUrl: local(config.backendPort, '/health'),
      stage: 1,
    },
    {
      name: 'frontend',
      script: 'demo/dist/frontend-main.js',
      env: {
        ...demoEnv,
        TRACEHOUSE_DEMO_FRONTEND_PORT: String(config.frontendPort),
        TRACEHOUSE_DEMO_BACKEND_URL: local(config.backendPort, '/'),
      },
      readyUrl: local(config.frontendPort, '/health'),
      stage: 2,
    },
    {
      name: 'traffic',
      script: 'demo/dist/traffic-main.js',
      env: {
        ...demoEnv,
        TRACEHOUSE_DEMO_TRAFFIC_PORT: String(config.trafficPort),
        TRACEHOUSE_DEMO_TARGET_URL: local(config.frontendPort, '/'),
      },
      readyUrl: local(config.trafficPort, '/health'),
      stage: 3,
    },
  ];
}

/**
 * Runs the parts as supervised child processes: starts them stage by stage,
 * waiting for each stage to be ready, and stops them in reverse order.
 */
export class Pipeline {
  readonly #options: PipelineOptions;
  readonly #parts: PartSpec[];
  readonly #running: { spec: PartSpec; process: SupervisedProcess }[] = [];
  #stopping: Promise<StoppedPart[]> | undefined;

  constructor(options: PipelineOptions) {
    this.#options = options;
    this.#parts = pipelineParts(options.config, options.env);
  }

  get parts(): readonly PartSpec[] {
    return this.#parts;
  }

  /** Resolves once every part answered its readiness URL; rejects when one exits or is too slow. */
  async start(): Promise<void> {
    const { config, repoRoot, write } = this.#options;
    const missing = this.#parts.map((p) => p.script).filter((script) => !existsSync(path.join(repoRoot, script)));
    if (missing.length > 0) throw new Error(`not built: ${[...new Set(missing)].join(', ')} (run npm run build)`);

    const width = Math.max(...this.#parts.map((p) => p.name.length));
    const childEnv: NodeJS.ProcessEnv = { ...this.#options.env };
    // Each demo service names itself; one inherited name would merge them.
    delete childEnv['OTEL_SERVICE_NAME'];
    const deadline = Date.now() + config.startTimeoutMillis;
    const stages = [...new Set(this.#parts.map((p) => p.stage))].sort((a, b) => a - b);

    for (const stage of stages) {
      const started = this.#parts
        .filter((p) => p.stage === stage)
        .map((spec) => {
          if (this.#stopping !== undefined) throw new Error('stopped while starting');
          const child = new SupervisedProcess({
            name: spec.name,
            command: process.execPath,
            args: [spec.script],
            env: { ...childEnv, ...spec.env },
            cwd: repoRoot,
            prefixWidth: width,
            write,
          });
          this.#running.push({ spec, process: child });
          write(`[pipeline] started ${spec.name} pid=${child.pid ?? '?'} (node ${spec.script})`);
          void child.waitForExit().then((status) => {
            if (!child.stopRequested && this.#stopping === undefined) this.#options.onUnexpectedExit(spec.name, status);
          });
          return { spec, child };
        });
      await Promise.all(
        started.map(({ spec, child }) =>
          waitForHttp(spec.readyUrl, {
            timeoutMillis: Math.max(0, deadline - Date.now()),
            giveUp: () =>
              child.exited ? `${spec.name} exited` : this.#stopping !== undefined ? 'pipeline stopping' : undefined,
          }).then(() => write(`[pipeline] ${spec.name} is ready (${spec.readyUrl})`)),
        ),
      );
    }
  }

  /**
   * Stops every started part, latest stage first (the parts of one stage
   * together): SIGTERM, then SIGKILL after the stop timeout. Idempotent.
   */
  stop(): Promise<StoppedPart[]> {
    this.#stopping ??= (async () => {
      const results: StoppedPart[] = [];
      const stages = [...new Set(this.#running.map((r) => r.spec.stage))].sort((a, b) => b - a);
      for (const stage of stages) {
        const group = this.#running.filter((r) => r.spec.stage === stage);
        results.push(
          ...(await Promise.all(
            group.map(async ({ spec, process: child }) => {
              const begin = Date.now();
              const result = await child.stop(this.#options.config.stopTimeoutMillis);
              const stopped = { name: spec.name, pid: child.pid, millis: Date.now() - begin, ...result };
              this.#options.write(`[pipeline] ${describeStop(stopped)}`);
              return stopped;
            }),
          )),
        );
      }
      return results;
    })();
    return this.#stopping;
  }

  /** Synchronous last resort for the pipeline's own exit: SIGKILL whatever still runs. */
  killAll(): void {
    for (const { process: child } of this.#running) child.killNow();
  }
}

export function describeStop(part: StoppedPart): string {
  const how = part.signal !== null ? `signal ${part.signal}` : `code ${part.code ?? '?'}`;
  const forced = part.forced ? ' after SIGKILL (did not stop on SIGTERM in time)' : '';
  return `${part.name} (pid ${part.pid ?? '?'}) exited with ${how}${forced} in ${(part.millis / 1000).toFixed(1)} s`;
}

/**
 * Whether a part ended on SIGTERM without needing SIGKILL: exit code 0 after
 * its own graceful stop, or the signal itself for a process stopped before it
 * had installed a handler (Ctrl-C right after start).
 */
export function stoppedCleanly(part: StoppedPart): boolean {
  return !part.forced && (part.code === 0 || part.signal === 'SIGTERM');
}
