/**
 * The demo bins' log lines: one line each on stdout, `<time> <component> <message>`.
 * The demo is a bin, not a library, so plain lines suit it better than JSON;
 * run-pipeline prefixes them with the process name.
 */
export type Log = (message: string) => void;

export function createLog(component: string): Log {
  return (message) => {
    process.stdout.write(`${new Date().toISOString()} ${component} ${message}\n`);
  };
}
