#!/usr/bin/env node
// Runs the *.test.ts files under the given folders in one `node --test` run, so
// CI reads a single summary. Node 20's runner neither globs nor loads TypeScript
// by itself: this finds the files and loads them through tsx.
//
//   node scripts/run-tests.mjs [--services] DIR...
//
// --services keeps only the suites that talk to a database or a broker
// (`*.services.test.ts`); CI runs them a second time against PostgreSQL and
// Mosquitto through DATABASE_URL / MQTT_URL.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';

const args = process.argv.slice(2);
const servicesOnly = args.includes('--services');
const dirs = args.filter((a) => !a.startsWith('--'));
if (dirs.length === 0) dirs.push('.');

const SKIP = new Set(['node_modules', '.git', '.fleet', '__fixtures__']);

function collect(dir, out) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(entry.name)) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) collect(path, out);
    else if (entry.name.endsWith('.test.ts')) {
      if (!servicesOnly || entry.name.endsWith('.services.test.ts')) out.push(path);
    }
  }
  return out;
}

// The longest files (tens of seconds each: training, fleets of real agents)
// start first, longest first, so that the run does not end with one core
// idle while the other finishes a long file started last (in path order the
// Byzantine training file, 47-68 s, started near the end). Paths from the
// repository root; a file missing here only runs in path order.
const LONGEST_FIRST = [
  'firmware-bundles/src/adapters/tfjs/train-reference.test.ts',
  'simulator/src/fl/byzantine.test.ts',
  'simulator/src/fleet/rollout.services.test.ts',
  'simulator/src/fleet/drift.services.test.ts',
  'simulator/src/fleet/fl-round.services.test.ts',
  'simulator/src/fleet/faults-control-plane-restart.services.test.ts',
  'simulator/src/fleet/agent-daemon.services.test.ts',
  'simulator/src/fleet/faults-broker-restart.services.test.ts',
  'simulator/src/fleet/faults-download-resume.services.test.ts',
  'control-plane/src/cli/up-command.test.ts',
];
const root = resolve(import.meta.dirname, '..');
const rank = (file) => {
  const at = LONGEST_FIRST.indexOf(relative(root, file).split(sep).join('/'));
  return at === -1 ? LONGEST_FIRST.length : at;
};
const files = dirs
  .flatMap((d) => collect(resolve(d), []))
  .sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
if (files.length === 0) {
  console.error(`no test files under ${dirs.join(', ')}`);
  process.exit(1);
}
// The service suites share one database and one broker, and reset tables
// they use: run their files one at a time. The embedded suites each have
// their own in-memory or temporary database and run two files at a time
// (Node's default on a 2-core machine is one; most suites wait on sockets
// and timers, and two at a time took the embedded run from 492 s for 1,252
// tests to 410 s for 1,595 with a benchmark running alongside).
const concurrency = servicesOnly ? ['--test-concurrency=1'] : ['--test-concurrency=2'];
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-timeout=120000', ...concurrency, ...files],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
