// Adds lockfile entries for optional platform packages (other OSes and CPUs)
// that the registry reachable from the development machines does not serve.
// Without them `npm ci` reports the lock out of sync; with them it skips those
// packages as it would on any non-matching platform. Run after `npm install`:
//   node scripts/lockfile-platform-stubs.cjs package-lock.json
const fs = require('fs');
const file = process.argv[2];
const lock = JSON.parse(fs.readFileSync(file, 'utf8'));
const stubs = {
  'node_modules/@chdb/lib-darwin-arm64': { version: '26.7.3-stable.1', cpu: ['arm64'], os: ['darwin'] },
  'node_modules/@chdb/lib-darwin-x64': { version: '26.7.3-stable.1', cpu: ['x64'], os: ['darwin'] },
  'node_modules/@chdb/lib-linux-arm64-gnu': { version: '26.7.3-stable.1', cpu: ['arm64'], os: ['linux'], libc: ['glibc'] },
  'node_modules/napi-windows-process-start-time': { version: '0.1.0', os: ['win32'] },
};
for (const [k, v] of Object.entries(stubs)) {
  if (!lock.packages[k]) lock.packages[k] = { ...v, dev: true, optional: true };
}
const sorted = {};
for (const k of Object.keys(lock.packages).sort((a, b) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : a > b ? 1 : 0))) sorted[k] = lock.packages[k];
lock.packages = sorted;
fs.writeFileSync(file, JSON.stringify(lock, null, 2) + '\n');
