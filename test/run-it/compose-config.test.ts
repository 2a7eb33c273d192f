/**
 * docker-compose.yml and the Dockerfile it builds.
 *
 * `docker compose config` is the authority on the file's syntax; it needs the
 * docker CLI with its compose plugin (or a standalone docker-compose v2), but
 * no engine. The second block checks, on every machine, what the file
 * promises: a healthcheck for every service, start order by health, pinned
 * images, two collector replicas, and one multi-stage Dockerfile whose
 * targets are non-root images with production dependencies only.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const composeFile = path.join(repoRoot, 'docker-compose.yml');

/** The compose v2 command found on this machine, or why there is none. */
function findCompose(): { command: string[] } | { missing: string } {
  const plugin = spawnSync('docker', ['compose', 'version', '--short'], { encoding: 'utf8' });
  if (plugin.status === 0) return { command: ['docker', 'compose'] };
  const standalone = spawnSync('docker-compose', ['version', '--short'], { encoding: 'utf8' });
  if (standalone.status === 0 && /^v?2\./.test(standalone.stdout.trim())) return { command: ['docker-compose'] };
  const docker = spawnSync('docker', ['--version'], { encoding: 'utf8' });
  if (docker.error !== undefined) return { missing: 'the docker CLI is not installed' };
  const v1 = standalone.status === 0 ? ` (docker-compose ${standalone.stdout.trim()} is v1, which predates the Compose Specification's top-level "name")` : '';
  return { missing: `the docker CLI has no compose plugin${v1}` };
}

const compose = findCompose();
const why = 'missing' in compose ? compose.missing : '';
if (why !== '') console.warn(`skipping "docker compose config": ${why}; the structural checks below still run`);

describe('docker compose config', () => {
  it.skipIf(why !== '')(`accepts docker-compose.yml${why === '' ? '' : ` (skipped: ${why})`}`, () => {
    if (!('command' in compose)) return;
    const [command = 'docker', ...args] = compose.command;
    const services = execFileSync(command, [...args, '-f', composeFile, 'config', '--services'], {
      cwd: repoRoot,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    expect(services.split('\n').filter(Boolean).sort()).toEqual(
      ['backend', 'clickhouse', 'collector', 'frontend', 'query-api', 'rabbitmq', 'traffic'],
    );
  });
});

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile?: string; target?: string };
  deploy?: { replicas?: number };
  healthcheck?: { test?: string[] | string; disable?: boolean };
  depends_on?: Record<string, { condition?: string }> | string[];
}

describe('docker-compose.yml', () => {
  const file = parse(readFileSync(composeFile, 'utf8'), { merge: true }) as { services: Record<string, ComposeService> };
  const services = file.services;

  it('runs RabbitMQ with its management UI, a pinned ClickHouse, two collectors, the query API and the demo', () => {
    expect(Object.keys(services).sort()).toEqual(
      ['backend', 'clickhouse', 'collector', 'frontend', 'query-api', 'rabbitmq', 'traffic'],
    );
    expect(services['rabbitmq']?.image).toMatch(/^rabbitmq:[\d.]+-management$/);
    expect(services['clickhouse']?.image).toMatch(/^clickhouse\/clickhouse-server:\d+\.\d+(\.\d+)*$/);
    expect(services['collector']?.deploy?.replicas).toBe(2);
  });

  it('gives every service a healthcheck and starts each only after what it needs is healthy', () => {
    for (const [name, service] of Object.entries(services)) {
      expect(service.healthcheck?.test, `${name} has no healthcheck`).toBeDefined();
      expect(service.healthcheck?.disable, name).not.toBe(true);
      const needs = service.depends_on ?? {};
      expect(Array.isArray(needs), `${name}: depends_on must state a condition`).toBe(false);
      for (const [dependency, { condition }] of Object.entries(needs as Record<string, { condition?: string }>)) {
        expect(services[dependency], `${name} depends on unknown ${dependency}`).toBeDefined();
        expect(condition, `${name} → ${dependency}`).toBe('service_healthy');
      }
    }
    // The start order: infrastructure, then collectors and the query API, then the demo.
    const order: string[] = [];
    const visit = (name: string, path: string[]): void => {
      expect(path, `dependency cycle through ${name}`).not.toContain(name);
      if (order.includes(name)) return;
      for (const dependency of Object.keys(services[name]?.depends_on ?? {})) visit(dependency, [...path, name]);
      order.push(name);
    };
    for (const name of Object.keys(services)) visit(name, []);
    const before = (a: string, b: string) => expect(order.indexOf(a), `${a} before ${b}`).toBeLessThan(order.indexOf(b));
    before('rabbitmq', 'collector');
    before('clickhouse', 'collector');
    before('clickhouse', 'query-api');
    before('backend', 'frontend');
    before('frontend', 'traffic');
  });

  it('builds every deployable from one multi-stage Dockerfile, each target non-root with production dependencies only', () => {
    const targets = new Set<string>();
    for (const [name, service] of Object.entries(services)) {
      if (service.build === undefined) {
        // A pinned public image.
        expect(service.image, name).toMatch(/:[\w.-]+$/);
        expect(service.image, name).not.toMatch(/:latest$/);
        continue;
      }
      expect(service.build.context, name).toBe('.');
      expect(service.build.dockerfile, name).toBeUndefined();
      expect(service.build.target, `${name}: build target`).toBeDefined();
      targets.add(service.build.target ?? '');
    }
    expect([...targets].sort()).toEqual(['collector', 'demo', 'query-api']);
    const text = readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8');
    // Every deployable is compiled once, in the shared build stage.
    expect(text).toMatch(/^FROM \S+ AS build$/m);
    expect(text).toMatch(/^RUN npx tsc -b collector query-api demo\b/m);
    for (const target of targets) {
      // The target's stage: from its FROM line to the next one.
      const stage = new RegExp(`^FROM \\S+ AS ${target}$([\\s\\S]*?)(?=^FROM |(?![\\s\\S]))`, 'm').exec(text)?.[1] ?? '';
      expect(stage, `${target}: no stage`).not.toBe('');
      expect(stage, `${target}: copies what the build stage compiled`).toMatch(/^COPY --from=build /m);
      expect(stage, target).toMatch(new RegExp(`npm ci --omit=dev .*-w @tracehouse/${target}\\b`));
      const users = [...stage.matchAll(/^USER (\S+)/gm)].map((m) => m[1]);
      expect(users.at(-1), `${target}: runtime user`).toBeDefined();
      expect(['root', '0']).not.toContain(users.at(-1));
      expect(stage, target).toMatch(/^HEALTHCHECK /m);
      // The runtime stage runs a bin that the build stage compiled.
      const cmd = /^CMD \["node", "([^"]+)"\]/m.exec(stage)?.[1] ?? '';
      expect(cmd, target).toMatch(new RegExp(`^${target}/dist/[\\w-]+\\.js$`));
      expect(existsSync(path.join(repoRoot, cmd.replace('/dist/', '/src/').replace(/\.js$/, '.ts'))), cmd).toBe(true);
    }
    const ignore = readFileSync(path.join(repoRoot, '.dockerignore'), 'utf8').split('\n');
    for (const entry of ['**/node_modules', '**/dist', '.git']) expect(ignore).toContain(entry);
  });
});
