/**
 * Fault: the control plane goes down in the middle of a rollout's first wave
 * and a new one starts on the same data (same `dataDir`, or the same
 * PostgreSQL when DATABASE_URL is set). Nothing of the rollout lives in
 * memory: the new process resumes it from the database (ARCHITECTURE
 * "Rollouts": the tick resumes timeouts, retries and waves), and every agent
 * ends committed.
 *
 * The agents keep their broker URL: on the embedded broker the test fixes its
 * port (picked free first, outside the ephemeral range), so the new control plane listens where the old one
 * did; with MQTT_URL the broker is external and outlives the restart.
 *
 * One agent is powered off before the rollout starts and only comes back
 * after the restart, once its deploy is out. On the embedded broker that
 * deploy is lost (queued in the old broker's session, or sent by the new
 * broker to a device it never saw), so only the restarted control plane's
 * timeout and retry, from the database, can bring it the model.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { mergeConfig, runControlPlane, type Config, type ControlPlane } from '@fleet/control-plane';
import { deviceTopic, parseCommand } from '@fleet/protocol';
import { createFleetBundleKit, type FleetBundleKit } from './fleet-bundles.ts';
import type { SimFleet } from './sim-fleet.ts';
import { startBackgroundTraffic } from './mnist-traffic.ts';
import {
  controlPlaneApi,
  freeFixedPort,
  resetServiceDatabase,
  type RolloutView,
  startTestFleet,
  until,
} from './__fixtures__/fleet-test-kit.ts';

const FLEET_SIZE = 20;
const WAVE_1 = 4; // 20% of 20
const external = Boolean(process.env['MQTT_URL']);
let cp: ControlPlane;
let config: Config;
let dir: string;
let admin: string;
let kit: FleetBundleKit;
let fleet: SimFleet;
let traffic: ReturnType<typeof startBackgroundTraffic>;
const { call } = controlPlaneApi(
  () => cp,
  () => admin,
);

interface AuditEntry {
  seq: number;
  at: string;
  action: string;
  subject: string;
  after: unknown;
}

async function auditEntries(): Promise<AuditEntry[]> {
  const out: AuditEntry[] = [];
  for (let afterSeq = 0; ;) {
    const page = await call<{ entries: AuditEntry[] }>(
      'GET',
      `/v1/audit?after=${afterSeq}&limit=1000`,
    );
    out.push(...page.entries);
    if (page.entries.length < 1000) return out;
    afterSeq = page.entries.at(-1)!.seq;
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fleet-fault-cp-'));
  const databaseUrl = await resetServiceDatabase();
  config = mergeConfig({
    httpPort: 0,
    mqttPort: external ? 0 : await freeFixedPort(),
    dataDir: dir,
    databaseUrl,
    mqttUrl: process.env['MQTT_URL'],
    logLevel: 'silent',
    rollouts: { tickIntervalMs: 200, batchWindowMs: 20 },
  });
  [kit, cp] = await Promise.all([
    createFleetBundleKit(),
    runControlPlane({ config, announce: () => undefined }),
  ]);
  admin = cp.firstAdminToken!;
  await call('PUT', '/v1/trust/root', kit.rootBytes, 'application/octet-stream');
  await call(
    'POST',
    '/v1/models',
    await kit.build({ version: '1.0.0', release: 1 }),
    'application/octet-stream',
  );
  fleet = await startTestFleet(cp, admin, {
    count: FLEET_SIZE,
    idPrefix: `cprestart-${Date.now().toString(36)}`,
    agentOptions: { session: { minBackoffMs: 100, maxBackoffMs: 1_000 } },
  });
  traffic = startBackgroundTraffic(() => fleet.agents, kit.test, {
    perAgent: 2,
    batch: 2,
    intervalMs: 100,
  });
});

after(async () => {
  await traffic?.stop();
  await fleet?.close();
  await cp?.close();
  await rm(dir, { recursive: true, force: true });
});

describe(`control plane restarted mid-rollout (${external ? 'PostgreSQL + external broker' : 'embedded'})`, () => {
  it('resumes waves, timeouts and retries from the database; every agent commits', async () => {
    const offline = fleet.agents[FLEET_SIZE - 1]!;
    offline.crash();
    const created = await call<RolloutView>('POST', '/v1/rollouts', {
      model: 'mnist-classmean@1.0.0',
      target: 'all',
      waves: '20%,100%',
      bake: '2s',
      probation: '1s',
      deviceTimeout: '6s',
      retries: 3,
      retryBackoff: '500ms',
      successRatio: '75%',
      maxFailure: '10%',
      minConfidence: 0.3,
    });
    const wave1 = new Set(created.devices.filter((d) => d.wave === 1).map((d) => d.deviceId));
    assert.equal(wave1.size, WAVE_1);

    // Wave 1 in flight: one of its agents is working on the update, none has committed.
    await until(
      () =>
        fleet.agents.some(
          (a) => wave1.has(a.id) && a.id !== offline.id && a.agent.state().job !== null,
        ),
      'a wave-1 agent to take the deploy',
      15_000,
    );
    const atClose = await call<RolloutView>('GET', `/v1/rollouts/${created.id}`);
    const deviceUrl = cp.broker!.deviceUrl;
    await cp.close();
    const closedAt = new Date();
    assert.equal(atClose.status, 'running');
    assert.equal(atClose.currentWave, 1, 'the restart is in wave 1');
    assert.equal(
      atClose.devices.filter((d) => d.wave === 2 && d.attempts === 0).length,
      FLEET_SIZE - WAVE_1,
      'no wave-2 device was deployed before the restart',
    );
    assert.equal(atClose.counts['succeeded'] ?? 0, 0, 'no device had committed yet');

    // Down for a while (agents retry their connections with backoff), then a new process.
    await new Promise((r) => setTimeout(r, 1_000));
    cp = await runControlPlane({ config, announce: () => undefined });
    assert.equal(cp.firstAdminToken, null, 'the same database: no new first admin');
    assert.equal(cp.broker!.deviceUrl, deviceUrl, 'agents find the broker where it was');
    // The powered-off agent comes back once its deploy is out: wave 1's went before the
    // restart; wave 2's is published by the new process, watched here on its broker.
    let deployedWhileAway = atClose.devices.find((d) => d.deviceId === offline.id)!.attempts > 0;
    await cp.broker!.subscribe(deviceTopic(offline.id, 'cmd'), (_topic, payload) => {
      if (parseCommand(payload).type === 'deploy') deployedWhileAway = true;
      return Promise.resolve();
    });
    await until(() => deployedWhileAway, 'a deploy to be sent to the offline device', 20_000);
    await offline.restart();

    const done = await until(
      async () => {
        const r = await call<RolloutView>('GET', `/v1/rollouts/${created.id}`);
        return r.status === 'completed' || r.status === 'aborted' ? r : null;
      },
      'the rollout to finish after the restart',
      45_000,
    );
    assert.equal(done.status, 'completed', done.reason ?? '');
    assert.equal(done.counts['succeeded'], FLEET_SIZE, JSON.stringify(done.counts));
    await until(
      () => fleet.agents.every((a) => a.host.inference.active()?.version === '1.0.0'),
      'every agent to serve v1',
      10_000,
    );
    for (const a of fleet.agents) {
      assert.equal(a.agent.state().committed?.ref.version, '1.0.0', a.id);
      assert.equal(a.agent.state().job, null, a.id);
    }

    const audit = await auditEntries();
    const afterRestart = audit.filter((e) => Date.parse(e.at) >= closedAt.getTime());
    const decisions = (action: string) =>
      afterRestart.filter((e) => e.action === action && e.subject === `rollout:${created.id}`);
    assert.ok(
      decisions('rollout.wave-started').length >= 1,
      'wave 2 was started by the new process',
    );
    assert.equal(decisions('rollout.completed').length, 1);
    const victim = done.devices.find((d) => d.deviceId === offline.id)!;
    if (!external) {
      // Its deploy went to a session the embedded broker no longer holds (the old
      // broker's died with it; the new one never saw the device): only a timeout and
      // a retry, run by the new process from the database, brought it the model.
      assert.ok(victim.attempts >= 2, `the offline device was deployed again (${victim.attempts})`);
      assert.ok(
        decisions('rollout.device-timed-out').some(
          (e) => (e.after as { deviceId?: string } | null)?.deviceId === offline.id,
        ),
        'the new process timed the offline device out',
      );
    }
    const verdict = await call<{ ok: boolean }>('GET', '/v1/audit/verify');
    assert.equal(verdict.ok, true, 'the audit chain is unbroken across the restart');
  });
});
