/**
 * Drift end to end on the fleet harness: a real control plane (embedded, or
 * PostgreSQL and Mosquitto when DATABASE_URL / MQTT_URL are set), 20 real
 * agents serving a bundle with a drift profile, MNIST traffic through each
 * agent's own inference service, signed drift flushes over MQTT, windows
 * merged and scored per cohort.
 *
 *   1. a clean run: windows are scored (not "insufficient") for both cohorts
 *      and no alert is raised;
 *   2. then cohort b's digits are rotated and noisier: cohort b is flagged
 *      within two windows of the change, naming the signals that moved, and
 *      cohort a is not flagged.
 *
 * Windows are 5 s here (60 s by default) and agents flush every 5 s, so one
 * flush window is one scoring window. The rollout sets the sampling rate to
 * 100%, over the bundle's 10%: every flush then reports sampled = inferences.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runControlPlane, type ControlPlane } from '@fleet/control-plane';
import type { DigitShift } from './digit-shift.ts';
import { createFleetBundleKit, type FleetBundleKit } from './fleet-bundles.ts';
import { startBackgroundTraffic } from './mnist-traffic.ts';
import type { SimFleet } from './sim-fleet.ts';
import {
  controlPlaneApi,
  fleetTestConfig,
  resetServiceDatabase,
  startTestFleet,
  until,
} from './__fixtures__/fleet-test-kit.ts';

const FLEET_SIZE = 20;
const WINDOW_MS = 5_000;
const MODEL = 'mnist-classmean';
/** The cohort b camera, knocked askew and dusty. */
const SHIFT: DigitShift = { rotateDegrees: 30, noiseSigma: 0.2 };

interface DriftWindowView {
  start: string;
  end: string;
  verdict: 'drifted' | 'clean' | 'insufficient';
  sampled: number;
  inferences: number;
  driftedSignals: string[];
}
interface DriftStatusView {
  cohorts: Array<{ cohort: string; windows: DriftWindowView[] }>;
}
interface DriftAlertView {
  cohort: string;
  window: { start: string; end: string };
  signals: Array<{ name: string; tripped: string[] }>;
  cleared: unknown;
}

let cp: ControlPlane;
let dir: string;
let admin: string;
let kit: FleetBundleKit;
let fleet: SimFleet;
let traffic: ReturnType<typeof startBackgroundTraffic>;
let shiftCohortB = false;
const api = controlPlaneApi(
  () => cp,
  () => admin,
);
const { call } = api;
const cohortOf = (index: number) => (index < FLEET_SIZE / 2 ? 'a' : 'b');

const status = () => call<DriftStatusView>('GET', `/v1/drift?model=${MODEL}@1.0.0&limit=100`);
const windowsOf = async (cohort: string) =>
  (await status()).cohorts.find((c) => c.cohort === cohort)?.windows ?? [];
const alerts = async () =>
  (await call<{ alerts: DriftAlertView[] }>('GET', `/v1/drift/alerts?model=${MODEL}`)).alerts;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fleet-drift-'));
  const databaseUrl = await resetServiceDatabase();
  [kit, cp] = await Promise.all([
    createFleetBundleKit(),
    runControlPlane({
      config: fleetTestConfig(dir, databaseUrl, {
        drift: { windowMs: WINDOW_MS, graceMs: 1_500, tickIntervalMs: 200 },
      }),
      announce: () => undefined,
    }),
  ]);
  admin = cp.firstAdminToken!;
  await call('PUT', '/v1/trust/root', kit.rootBytes, 'application/octet-stream');
  fleet = await startTestFleet(cp, admin, {
    count: FLEET_SIZE,
    idPrefix: `drift-${Date.now().toString(36)}`,
    tags: (i) => ({ cohort: cohortOf(i) }),
  });
  const cohortB = new Set(fleet.agents.filter((_, i) => cohortOf(i) === 'b'));
  traffic = startBackgroundTraffic(() => fleet.agents, kit.test, {
    perAgent: 8,
    batch: 8,
    intervalMs: 20,
    shift: (agent) => (shiftCohortB && cohortB.has(agent) ? SHIFT : null),
  });
  await api.push(
    await kit.build({
      version: '1.0.0',
      release: 1,
      drift: { flush: { maxSamples: 5_000, maxIntervalMs: WINDOW_MS } },
    }),
  );
  const rollout = await call<{ id: string }>('POST', '/v1/rollouts', {
    model: `${MODEL}@1.0.0`,
    target: 'all',
    waves: '100%',
    bake: '500ms',
    probation: '1s',
    deviceTimeout: '60s',
    successRatio: '90%',
    maxFailure: '10%',
    driftSampleRate: '100%',
  });
  const done = await api.finished(rollout.id);
  assert.equal(done.status, 'completed', done.reason ?? '');
});

after(async () => {
  await traffic?.stop();
  await fleet?.close();
  await cp?.close();
  await rm(dir, { recursive: true, force: true });
});

describe(`drift on ${FLEET_SIZE} agents (${process.env['MQTT_URL'] ? 'PostgreSQL + external broker' : 'embedded'})`, () => {
  it('scores clean windows for both cohorts and raises no alert', async () => {
    const scored = async (cohort: string) =>
      (await windowsOf(cohort)).filter((w) => w.verdict !== 'insufficient');
    await until(
      async () => (await scored('cohort=a')).length >= 3 && (await scored('cohort=b')).length >= 3,
      'three scored windows per cohort',
      60_000,
    ).catch(async (error: unknown) => {
      const agent = fleet.agents[0]!.agent;
      throw new Error(
        `${String(error)}; drift status ${JSON.stringify(await status()).slice(0, 1500)}; first agent ${JSON.stringify(agent.driftStats())}; traffic ${JSON.stringify(traffic.totals)}`,
      );
    });
    for (const cohort of ['cohort=a', 'cohort=b', '*']) {
      const windows = await scored(cohort);
      assert.ok(windows.length >= 3, `${cohort}: ${windows.length} scored windows`);
      for (const w of windows) {
        assert.equal(w.verdict, 'clean', `${cohort} ${w.end}: ${w.driftedSignals.join(', ')}`);
        // The rollout's 100% sampling rate, not the bundle's 10%, reached the agents.
        assert.equal(w.sampled, w.inferences, `${cohort} ${w.end}`);
      }
    }
    assert.deepEqual(await alerts(), []);
  });

  it('flags the rotated cohort within two windows, naming the signals that moved, and not the other', async () => {
    const changedAtMs = Date.now();
    shiftCohortB = true;
    // The first window wholly after the change ends at `firstWhole`; flagged by the next one at the latest.
    const firstWhole = (Math.floor(changedAtMs / WINDOW_MS) + 2) * WINDOW_MS;
    const alert = await until(
      async () => (await alerts()).find((a) => a.cohort === 'cohort=b') ?? null,
      'an alert for cohort b',
      40_000,
    );
    const alertWindowEnd = Date.parse(alert.window.end);
    assert.ok(
      alertWindowEnd <= firstWhole + WINDOW_MS,
      `flagged in the window ending ${alert.window.end}, ${(alertWindowEnd - changedAtMs) / 1000} s after the change (windows of ${WINDOW_MS / 1000} s)`,
    );
    assert.ok(alert.signals.length >= 2, JSON.stringify(alert.signals));
    assert.ok(
      alert.signals.every((s) => s.tripped.length > 0),
      'each named signal says which distance tripped',
    );
    // Cohort a keeps being scored clean meanwhile.
    const windowsA = (await windowsOf('cohort=a')).filter(
      (w) => Date.parse(w.end) > changedAtMs && w.verdict !== 'insufficient',
    );
    assert.ok(windowsA.length >= 1, 'cohort a scored after the change');
    assert.ok(windowsA.every((w) => w.verdict === 'clean'));
    assert.equal((await alerts()).filter((a) => a.cohort === 'cohort=a').length, 0);

    const audit = await call<{ entries: Array<{ action: string }> }>(
      'GET',
      '/v1/audit?after=0&limit=1000',
    );
    assert.ok(audit.entries.some((e) => e.action === 'drift.alert'));
  });
});
