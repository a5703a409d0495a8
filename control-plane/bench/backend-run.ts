/**
 * One database backend's figures: a control plane listening on a free port
 * over that database, 100,000 seeded devices, the two HTTP endpoints under
 * load from another process, then MQTT connects against an embedded broker
 * that looks devices up through the control plane's device registry.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { mergeConfig } from '../src/config.ts';
import { createControlPlane, type ControlPlane } from '../src/control-plane.ts';
import type { BenchOptions } from './bench-options.ts';
import { checkEndpoints, measureEndpoint } from './http-load.ts';
import type { HttpLoadSummary, Scenario } from './http-load-child.ts';
import {
  measureMqttConnects,
  type MqttBenchKeys,
  type MqttConnectFigures,
} from './mqtt-connects.ts';
import { seedDevices } from './seed-devices.ts';

export type Log = (line: string) => void;

export interface BackendFigures {
  database: string;
  devices: number;
  seedS: number;
  list: HttpLoadSummary | { failed: string };
  lookup: HttpLoadSummary | { failed: string };
  mqtt: MqttConnectFigures | { failed: string };
}

export interface BackendRun {
  label: string;
  /** PostgreSQL URL; unset: PGlite in the temp data dir. */
  databaseUrl?: string;
  options: BenchOptions;
  keys: MqttBenchKeys;
  log: Log;
}

async function startControlPlane(dataDir: string, databaseUrl?: string): Promise<ControlPlane> {
  const config = mergeConfig({ httpPort: 0, dataDir, databaseUrl, logLevel: 'silent' });
  const cp = await createControlPlane({ config, logger: pino({ level: 'silent' }), listen: true });
  // httpPort 0 asks for any free port: the URL must name the one we got.
  if (!cp.url || new URL(cp.url).port === '0' || new URL(cp.url).port === '') {
    await cp.close();
    throw new Error(`control plane url ${cp.url} does not name the port it listens on`);
  }
  if (!cp.firstAdminToken) {
    await cp.close();
    throw new Error('no first admin token: the database was not fresh');
  }
  return cp;
}

async function attempt<T>(
  what: string,
  log: Log,
  fn: () => Promise<T>,
): Promise<T | { failed: string }> {
  try {
    return await fn();
  } catch (error) {
    const failed = error instanceof Error ? error.message : String(error);
    log(`  ${what} FAILED: ${failed}`);
    return { failed };
  }
}

function describe(summary: HttpLoadSummary): string {
  const problems = summary.non2xx + summary.errors + summary.timeouts;
  return (
    `p50 ${summary.p50Ms} ms, p99 ${summary.p99Ms} ms, ${summary.requestsPerS} req/s` +
    (problems > 0 ? `, non-2xx ${summary.non2xx}, errors ${summary.errors}` : ', no errors')
  );
}

async function measureHttp(run: BackendRun, cp: ControlPlane, scenario: Scenario) {
  const { options, log } = run;
  return attempt(`${run.label} ${scenario}`, log, async () => {
    const summary = await measureEndpoint({
      url: cp.url!,
      token: cp.firstAdminToken!,
      scenario,
      connections: options.connections,
      durationS: options.durationS,
      warmupS: options.warmupS,
      deviceCount: options.devices,
    });
    log(`  ${run.label} ${scenario}: ${describe(summary)}`);
    return summary;
  });
}

async function measureMqtt(run: BackendRun, cp: ControlPlane) {
  const { options, log } = run;
  return attempt(`${run.label} mqtt`, log, async () => {
    log(
      `  ${run.label} mqtt: ${run.keys.warmup.length} devices untimed, then ` +
        `${run.keys.measured.length} timed, ${options.mqttConcurrency} in flight`,
    );
    const figures = await measureMqttConnects({
      devices: cp.devices,
      directory: `control plane device registry (${cp.database.kind})`,
      keys: run.keys,
      concurrency: options.mqttConcurrency,
    });
    log(
      `  ${run.label} mqtt: ${figures.connected}/${figures.attempted} connected, ` +
        `${figures.connectsPerS} connects/s, p99 ${figures.connectP99Ms} ms`,
    );
    return figures;
  });
}

export async function benchBackend(run: BackendRun): Promise<BackendFigures> {
  const { options, log } = run;
  const dataDir = await mkdtemp(join(tmpdir(), 'fleet-bench-'));
  try {
    log(`${run.label}: starting the control plane`);
    const cp = await startControlPlane(dataDir, run.databaseUrl);
    try {
      log(`${run.label}: listening on ${cp.url}; seeding ${options.devices} devices`);
      const seedMs = await seedDevices(cp.database.db, {
        count: options.devices,
        realKeys: [...run.keys.warmup, ...run.keys.measured],
        onProgress: (done, total) => {
          if (done % 20_000 === 0 || done === total) log(`  seeded ${done}/${total}`);
        },
      });
      log(`${run.label}: seeded and analyzed in ${(seedMs / 1000).toFixed(1)} s`);
      await checkEndpoints(cp.url!, cp.firstAdminToken!);
      return {
        database:
          cp.database.kind === 'pglite' ? 'PGlite, data dir under the OS temp dir' : 'PostgreSQL',
        devices: options.devices,
        seedS: +(seedMs / 1000).toFixed(1),
        list: await measureHttp(run, cp, 'list'),
        lookup: await measureHttp(run, cp, 'lookup'),
        mqtt: await measureMqtt(run, cp),
      };
    } finally {
      await cp.close();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}
