/**
 * The drift service's `onAlert`: called for each alert it opens, after the
 * window's transaction committed, cohorts before `*`. Wired (control-plane.ts)
 * to the round triggers: an alert for a model with `flOnDrift` reaches them
 * and is audited (here the bundle has no training field, so the round cannot
 * start: `failed`). A callback that throws is logged: the window is still
 * scored and the alert stays opened.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { eq } from 'drizzle-orm';
import type { Signer } from '@fleet/protocol';
import { startDriftFleet, type DriftFleet } from '../__fixtures__/drift-fleet.ts';
import { mergeConfig } from '../config.ts';
import { createDeviceStore } from '../adapters/db/device-store.ts';
import { createDriftStore } from '../adapters/db/drift-store.ts';
import { createModelStore } from '../adapters/db/model-store.ts';
import { driftAlerts, driftWindows } from '../db/schema/index.ts';
import {
  CLEAN,
  SHIFTED,
  driftMessage,
  sketchTraffic,
} from '../core/drift/__fixtures__/drift-fixtures.ts';
import { createDriftProfiles } from './drift-profiles.ts';
import { createDriftService, type DriftAlertOpened } from './drift-service.ts';

const T0 = Date.parse('2026-11-26T12:00:00Z');

interface Fleet {
  f: DriftFleet;
  devices: Array<{ id: string; signer: Signer; cohort: string }>;
}

async function fleet(): Promise<Fleet> {
  const f = await startDriftFleet();
  const devices: Fleet['devices'] = [];
  for (let i = 0; i < 10; i++) {
    const cohort = i < 8 ? 'a' : 'b';
    devices.push({ ...(await f.t.enrolDevice({ id: `cam-${i}`, tags: { cohort } })), cohort });
  }
  return { f, devices };
}

/** Every device flushes window 1 (cohort b shifted); the clock moves past its grace. */
async function shiftedWindow({ f, devices }: Fleet): Promise<void> {
  for (const [i, d] of devices.entries()) {
    await f.send(
      d,
      driftMessage({
        deviceId: d.id,
        seq: 1,
        id: `w1-${d.id}-flush`,
        end: new Date(T0 + 60_000 - 15_000).toISOString(),
        sketches: sketchTraffic(300, 100 + i, d.cohort === 'b' ? SHIFTED : CLEAN),
        sampled: 300,
        model: f.model,
      }),
    );
  }
  f.t.clock.nowMs = T0 + 60_000 + 31_000;
}

let wired: Fleet;
let throwing: Fleet;
before(async () => {
  wired = await fleet();
  throwing = await fleet();
});
after(async () => {
  await wired.f.t.close();
  await throwing.f.t.close();
});

describe('drift onAlert', () => {
  it('reaches the round triggers of a model with flOnDrift, audited', async () => {
    const { t } = wired.f;
    const set = await t.call('PUT', '/v1/models/mnist-2nn/policy', {
      json: { flOnDrift: { evalSet: 'holdout', config: {}, cooldownMs: 0 } },
    });
    assert.equal(set.status, 200);
    await shiftedWindow(wired);
    await t.cp.drift.tick();
    const triggers = (await t.cp.audit.list())
      .filter((e) => e.action === 'fl.drift-trigger')
      .map((e) => e.after as { cohort: string; outcome: string; reason: string });
    assert.ok(triggers.length >= 1);
    assert.equal(triggers[0]!.cohort, 'cohort=b');
    assert.ok(triggers.every((a) => a.outcome === 'failed' && /training/.test(a.reason)));
    assert.equal((await t.cp.fl.list({ limit: 10 })).length, 0);
  });

  it('a throwing callback is logged; the window is scored and the alert stays opened', async () => {
    const { t } = throwing.f;
    const db = t.cp.database.db;
    const models = createModelStore(db);
    const devices = createDeviceStore(db);
    const seen: Array<{ alert: DriftAlertOpened; committed: boolean }> = [];
    const drift = createDriftService({
      store: createDriftStore(db),
      baselines: createDriftProfiles({ models, blobs: t.cp.blobs }),
      models,
      deviceTags: async (id) => (await devices.get(id))?.tags ?? {},
      policy: mergeConfig({}).drift,
      nowMs: () => t.clock.nowMs,
      logger: pino({ level: 'silent' }),
      metrics: t.cp.metrics,
      onAlert: async (alert) => {
        const rows = await db.select().from(driftAlerts).where(eq(driftAlerts.id, alert.alertId));
        seen.push({ alert, committed: rows.length === 1 });
        throw new Error('trigger down');
      },
    });
    await shiftedWindow(throwing);
    await drift.tick();
    await drift.close();
    assert.ok(seen.length >= 1);
    assert.equal(seen[0]!.alert.cohort, 'cohort=b');
    assert.deepEqual(seen[0]!.alert.model, {
      name: 'mnist-2nn',
      version: '1.2.0',
      release: 5,
    });
    assert.ok(seen.every((s) => s.committed));
    const fleetAt = seen.findIndex((s) => s.alert.cohort === '*');
    assert.ok(fleetAt === -1 || fleetAt === seen.length - 1, 'the whole fleet comes last');
    const windows = await db.select().from(driftWindows);
    assert.ok(windows.length >= 3, 'every cohort of the window was scored');
    const open = await db.select().from(driftAlerts);
    assert.equal(open.length, seen.length);
  });
});
