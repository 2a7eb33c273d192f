/**
 * CPU seconds used so far by other processes (ClickHouse, RabbitMQ, collector
 * children), read from /proc so the bench can say where the CPU of a phase
 * went. Linux only; elsewhere every reading is undefined and the bench prints
 * no breakdown.
 */
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

/** Clock ticks per second of /proc/<pid>/stat; 100 on every Linux we run on. */
const TICKS_PER_SECOND = 100;

export function cpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is parenthesised and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** The oldest process whose command line matches `pattern` (pgrep -o -f). */
export function findPid(pattern: string): number | undefined {
  try {
    const out = execFileSync('pgrep', ['-o', '-f', pattern], { encoding: 'utf8' }).trim();
    return out === '' ? undefined : Number(out);
  } catch {
    return undefined;
  }
}
