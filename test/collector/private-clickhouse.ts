/**
 * A throwaway clickhouse-server of its own, for tests that must stop
 * ClickHouse without disturbing the shared one: a generated config in a temp
 * directory, free ports, its own data path. stop() kills it (the data stays),
 * start() brings it back on the same ports and data.
 *
 * Runs /usr/sbin/clickhouse-server directly; as root the process switches to
 * the `clickhouse` user when that user exists (the server refuses to run as
 * root over a data directory owned by someone else).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor } from './harness.js';

export const CLICKHOUSE_SERVER_BINARY = '/usr/sbin/clickhouse-server';

export interface PrivateClickHouseOptions {
  binary?: string;
  /** How long start() waits for /ping. */
  startTimeoutMs?: number;
}

function clickhouseIds(): { uid: number; gid: number } | undefined {
  if (userInfo().uid !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', 'clickhouse']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'clickhouse']).toString().trim());
    return { uid, gid };
  } catch {
    return undefined;
  }
}

function chownTree(path: string, ids: { uid: number; gid: number }): void {
  execFileSync('chown', ['-R', `${ids.uid}:${ids.gid}`, path]);
}

export class PrivateClickHouse {
  readonly dir: string;
  httpPort = 0;
  tcpPort = 0;
  interserverPort = 0;
  private child: ChildProcess | undefined;
  private readonly ids = clickhouseIds();

  private constructor(private readonly o: PrivateClickHouseOptions) {
    this.dir = mkdtempSync(join(tmpdir(), 'tracehouse-ch-'));
  }

  get url(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Whether this machine can run one (the Debian package is installed). */
  static available(binary = CLICKHOUSE_SERVER_BINARY): boolean {
    return existsSync(binary);
  }

  static async launch(o: PrivateClickHouseOptions = {}): Promise<PrivateClickHouse> {
    const server = new PrivateClickHouse(o);
    server.httpPort = await freePort();
    server.tcpPort = await freePort();
    server.interserverPort = await freePort();
    server.writeConfig();
    await server.start();
    return server;
  }

  private writeConfig(): void {
    const data = join(this.dir, 'data');
    for (const sub of ['data', 'data/tmp', 'data/user_files', 'log']) mkdirSync(join(this.dir, sub), { recursive: true });
    writeFileSync(
      join(this.dir, 'config.xml'),
      `<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <log>${this.dir}/log/server.log</log>
    <errorlog>${this.dir}/log/server.err.log</errorlog>
    <size>10M</size>
    <count>1</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>${this.httpPort}</http_port>
  <tcp_port>${this.tcpPort}</tcp_port>
  <interserver_http_port>${this.interserverPort}</interserver_http_port>
  <max_connections>256</max_connections>
  <keep_alive_timeout>3</keep_alive_timeout>
  <max_concurrent_queries>50</max_concurrent_queries>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <mark_cache_size>67108864</mark_cache_size>
  <path>${data}/</path>
  <tmp_path>${data}/tmp/</tmp_path>
  <user_files_path>${data}/user_files/</user_files_path>
  <users_config>${this.dir}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mlock_executable>false</mlock_executable>
</yandex>
`,
    );
    writeFileSync(
      join(this.dir, 'users.xml'),
      `<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>::/0</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
`,
    );
    if (this.ids !== undefined) chownTree(this.dir, this.ids);
  }

  async ping(): Promise<boolean> {
    try {
      const response = await fetch(`${this.url}/ping`, { signal: AbortSignal.timeout(1_000) });
      return response.ok;
    } catch {
      return false;
    }
  }

  /** Starts the server (again) and waits until it answers. */
  async start(): Promise<void> {
    if (this.running) return;
    const binary = this.o.binary ?? CLICKHOUSE_SERVER_BINARY;
    const child = spawn(binary, [`--config-file=${join(this.dir, 'config.xml')}`], {
      cwd: this.dir,
      stdio: 'ignore',
      ...(this.ids !== undefined ? { uid: this.ids.uid, gid: this.ids.gid } : {}),
    });
    this.child = child;
    child.on('error', () => undefined);
    await waitFor(() => this.ping(), {
      timeoutMs: this.o.startTimeoutMs ?? 60_000,
      what: `private clickhouse-server on ${this.httpPort} (logs in ${this.dir}/log)`,
      stop: () => !this.running,
    });
  }

  /** Kills the server at once (SIGKILL), as a crash or a pulled cable would. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined || !this.running) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    this.child = undefined;
  }

  /** Stops the server and deletes its directory. */
  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

