import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface SupervisedProcessOptions {
  /** Short name used as the output prefix and in reports. */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  /** Width the prefix is padded to, so that output lines up. */
  readonly prefixWidth: number;
  /** Where prefixed lines go. */
  readonly write: (line: string) => void;
}

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface StopResult extends ExitStatus {
  /** True when SIGTERM was not enough and the process had to be killed. */
  readonly forced: boolean;
}

/**
 * One child process of the pipeline: its output prefixed line by line, its
 * exit observed, and a bounded stop (SIGTERM, then SIGKILL).
 *
 * The child runs in its own process group, so that a Ctrl-C in the terminal
 * reaches only the pipeline, which then stops the children in order (traffic
 * first, the query API last) instead of all at once.
 */
export class SupervisedProcess {
  readonly name: string;
  readonly #child: ChildProcess;
  readonly #exited: Promise<ExitStatus>;
  #exitStatus: ExitStatus | undefined;
  #stopRequested = false;

  constructor(options: SupervisedProcessOptions) {
    this.name = options.name;
    this.#child = spawn(options.command, options.args, {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const prefix = `[${options.name}]`.padEnd(options.prefixWidth + 2);
    for (const stream of [this.#child.stdout, this.#child.stderr]) {
      if (stream === null) continue;
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => options.write(`${prefix} ${line}`));
    }
    this.#exited = new Promise((resolve) => {
      this.#child.once('exit', (code, signal) => {
        this.#exitStatus = { code, signal };
        resolve(this.#exitStatus);
      });
      this.#child.once('error', (error) => {
        options.write(`${prefix} could not start: ${error.message}`);
        this.#exitStatus ??= { code: null, signal: null };
        resolve(this.#exitStatus);
      });
    });
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Whether the process has exited, for whatever reason. */
  get exited(): boolean {
    return this.#exitStatus !== undefined;
  }

  /** Whether `stop()` was called (an exit after it is expected). */
  get stopRequested(): boolean {
    return this.#stopRequested;
  }

  /** Resolves once the process has exited. */
  waitForExit(): Promise<ExitStatus> {
    return this.#exited;
  }

  /**
   * SIGTERM, then SIGKILL if it has not exited within `timeoutMillis`.
   * Resolves once the process is gone.
   */
  async stop(timeoutMillis: number): Promise<StopResult> {
    this.#stopRequested = true;
    if (this.#exitStatus !== undefined) return { ...this.#exitStatus, forced: false };
    this.#signal('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMillis);
    });
    const first = await Promise.race([this.#exited, timedOut]);
    clearTimeout(timer);
    if (first !== 'timeout') return { ...first, forced: false };
    this.#signal('SIGKILL');
    return { ...(await this.#exited), forced: true };
  }

  /** Last resort when the pipeline itself exits: SIGKILL without waiting. */
  killNow(): void {
    if (this.#exitStatus === undefined) this.#signal('SIGKILL');
  }

  #signal(signal: NodeJS.Signals): void {
    const pid = this.#child.pid;
    if (pid === undefined) return;
    try {
      // The whole group: a child that spawned helpers of its own takes them along.
      process.kill(-pid, signal);
    } catch {
      try {
        this.#child.kill(signal);
      } catch {
        // Already gone.
      }
    }
  }
}
