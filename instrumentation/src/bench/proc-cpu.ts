// CPU time from Linux's /proc, for the benchmark: of a process or a thread.
import { readFileSync } from 'node:fs';

/** USER_HZ, the unit of /proc's CPU times: 100 on Linux. */
const TICKS_PER_SECOND = 100;

/** The command name in a /proc `stat` line (between its parentheses). */
export function statCommand(stat: string): string {
  return stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
}

/**
 * CPU time (µs, user + system, in steps of 10 ms) that a /proc `stat` file
 * (`/proc/<pid>/stat` or `/proc/<pid>/task/<tid>/stat`) reports; undefined
 * when it cannot be read (no /proc, or the process ended).
 */
export function statCpuMicros(path: string): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  return cpuMicrosOfStat(stat);
}

/** CPU time (µs) in a /proc `stat` line: its utime and stime fields. */
export function cpuMicrosOfStat(stat: string): number {
  // The command name may hold spaces: fields are counted from after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1_000_000) / TICKS_PER_SECOND;
}
