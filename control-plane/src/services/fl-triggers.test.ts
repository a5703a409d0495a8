/**
 * Rounds started without an operator (in-memory control plane with the fake
 * candidate pipeline, services/fl-triggers.ts as control-plane.ts wires it):
 * the policy route accepts and refuses `flOnDrift` / `flSchedule`; a drift
 * alert for a model with `flOnDrift` starts one round on the alert's cohort
 * from the alerted version, none while one is active or within the cooldown
 * (audited as skipped), and none for a model without the setting; the
 * schedule starts rounds at its interval on the test's clock, never beside
 * an active one.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startFlFleet, type FlFleet } from '../__fixtures__/fl-fleet.ts';
import type { DriftAlertOpened } from './drift-service.ts';

let f: FlFleet;
const HOUR = 3_600_000;
const CONFIG = { fraction: 1, minClients: 1, encoding: 'float32', deadlineMs: 600_000 };

before(async () => {
  f = await startFlFleet();
  await f.device('cam-b-0', { tags: { cohort: 'cam-b' } });
  await f.device('cam-b-1', { tags: { cohort: 'cam-b' } });
  await f.device('cam-a-0', { tags: { cohort: 'cam-a' } });
  await f.device('cam-old', {
    tags: { cohort: 'cam-b' },
    model: { ...f.model, bundleId: 'e'.repeat(64) },
  });
});
after(() => f.close());

const policyPath = '/v1/models/mnist-2nn/policy';
const put = (json: unknown, token?: string) =>
  f.call('PUT', policyPath, { json, ...(token ? { token } : {}) });
const policy = async () =>
  (await (await f.call('GET', policyPath)).json()) as Record<string, unknown>;
const rounds = () => f.cp.fl.list({ limit: 100 });
const audits = async (action: string) =>
  (await f.cp.audit.list()).filter((e) => e.action === action);

let alertSeq = 0;
function alert(cohort: string, model = f.model): DriftAlertOpened {
  alertSeq += 1;
  return {
    alertId: `alert-${alertSeq}`,
    bundleId: model.bundleId,
    model: { name: model.name, version: model.version, release: model.release },
    cohort,
    window: { start: '2026-11-26T11:59:00.000Z', end: '2026-11-26T12:00:00.000Z' },
    driftedShare: 0.5,
  };
}

async function cancelActive(): Promise<void> {
  for (const r of await rounds()) {
    if (r.status === 'collecting') await f.cp.fl.cancel(r.id, 'token:test', 'test');
  }
}

describe('round triggers in the model policy', () => {
  it('refuses bad flOnDrift and flSchedule values with 400 naming the field, changing nothing', async () => {
    const before = await policy();
    assert.equal(before['flOnDrift'], null);
    const cases: Array<[unknown, RegExp]> = [
      [
        { flOnDrift: { evalSet: 'holdout', config: { fraction: 2 } } },
        /flOnDrift\.config\.fraction/,
      ],
      [
        { flOnDrift: { evalSet: 'holdout', config: { learningrate: 1 } } },
        /flOnDrift\.config\.learningrate/,
      ],
      [{ flOnDrift: { evalSet: 'no such name!' } }, /flOnDrift\.evalSet/],
      [{ flOnDrift: { evalSet: 'holdout', cooldownMs: -1 } }, /flOnDrift\.cooldownMs/],
      [{ flOnDrift: { evalSet: 'holdout', rollout: { waves: 'soon' } } }, /flOnDrift\.rollout/],
      [{ flOnDrift: { evalSet: 'holdout', extra: 1 } }, /flOnDrift/],
      [{ flSchedule: { everyMs: 1000, evalSet: 'holdout', target: 'all' } }, /flSchedule\.everyMs/],
      [{ flSchedule: { everyMs: HOUR, evalSet: 'holdout', target: 'tag:' } }, /flSchedule\.target/],
      [{ flSchedule: { everyMs: HOUR, evalSet: 'holdout' } }, /flSchedule\.target/],
      [{ riskTier: 'low', flOnDrift: 'yes' }, /flOnDrift/],
    ];
    for (const [body, field] of cases) {
      const res = await put(body);
      const text = await res.text();
      assert.equal(res.status, 400, `${JSON.stringify(body)}: ${text}`);
      assert.match(text, field);
    }
    assert.equal((await put({ flOnDrift: null }, f.tokens.operator)).status, 403);
    assert.deepEqual(await policy(), before);
  });

  it('sets, shows and turns off the triggers; other fields stay', async () => {
    const set = await put({
      riskTier: 'low',
      flOnDrift: { evalSet: 'holdout', config: CONFIG, rollout: { waves: '50%,all' } },
      flSchedule: { everyMs: HOUR, evalSet: 'holdout', target: 'tag:cohort=cam-a' },
    });
    assert.equal(set.status, 200, await set.clone().text());
    const shown = await policy();
    assert.deepEqual(shown['flOnDrift'], {
      evalSet: 'holdout',
      config: CONFIG,
      rollout: { waves: '50%,all' },
      cooldownMs: HOUR, // the default
    });
    assert.deepEqual(shown['flSchedule'], {
      everyMs: HOUR,
      evalSet: 'holdout',
      target: { tags: { cohort: 'cam-a' } },
      config: {},
    });
    assert.equal((await put({ flSchedule: null })).status, 200);
    const after = await policy();
    assert.equal(after['flSchedule'], null);
    assert.deepEqual(after['flOnDrift'], shown['flOnDrift']);
    assert.equal(after['riskTier'], 'low');
    const audit = (await audits('model.policy-set')).at(-1)!;
    assert.deepEqual((audit.after as { flTriggers: unknown }).flTriggers, {
      onDrift: shown['flOnDrift'],
      schedule: null,
    });
  });
});

describe('rounds started by drift alerts', () => {
  it('starts exactly one round on the alerted cohort, from the alerted version', async () => {
    await f.cp.flTriggers.onDriftAlert(alert('cohort=cam-b'));
    const all = await rounds();
    assert.equal(all.length, 1);
    const round = all[0]!;
    assert.equal(round.trigger.kind, 'drift');
    assert.match(round.trigger.detail!, /^cohort cohort=cam-b window /);
    assert.deepEqual(round.settings.target, { tags: { cohort: 'cam-b' } });
    assert.equal(round.settings.model.bundleId, f.model.bundleId);
    assert.equal(round.settings.evalSet, 'holdout');
    assert.equal(round.status, 'collecting');
    assert.deepEqual([...round.snapshot.selected].sort(), ['cam-b-0', 'cam-b-1']);
    assert.equal(round.snapshot.config.fraction, 1);
    const [entry] = await audits('fl.drift-trigger');
    assert.deepEqual(
      [(entry!.after as Record<string, unknown>)['outcome'], entry!.subject],
      ['started', 'model:mnist-2nn@1.2.0'],
    );
    assert.equal((entry!.after as Record<string, unknown>)['roundId'], round.id);
  });

  it('starts none while a round is active or within the cooldown, audited as skipped', async () => {
    await Promise.all([
      f.cp.flTriggers.onDriftAlert(alert('cohort=cam-a')),
      f.cp.flTriggers.onDriftAlert(alert('*')),
    ]);
    assert.equal((await rounds()).length, 1);
    await cancelActive();
    f.clock.nowMs += HOUR - 60_000;
    await f.cp.flTriggers.onDriftAlert(alert('cohort=cam-a'));
    assert.equal((await rounds()).length, 1);
    const skipped = (await audits('fl.drift-trigger'))
      .map((e) => e.after as { outcome: string; reason?: string })
      .filter((a) => a.outcome === 'skipped');
    assert.equal(skipped.length, 3);
    assert.match(skipped[0]!.reason!, /is collecting/);
    assert.match(skipped[2]!.reason!, /^cooldown: 60s left/);
  });

  it('after the cooldown, a fleet-wide alert starts a round on every device running the version', async () => {
    f.clock.nowMs += 60_000;
    await f.cp.flTriggers.onDriftAlert(alert('*'));
    const [newest] = await rounds();
    assert.equal((await rounds()).length, 2);
    assert.deepEqual(newest!.settings.target, { all: true });
    assert.deepEqual([...newest!.snapshot.selected].sort(), ['cam-a-0', 'cam-b-0', 'cam-b-1']);
    await cancelActive();
  });

  it('does nothing for a model without the setting', async () => {
    const auditsBefore = (await f.cp.audit.list()).length;
    f.clock.nowMs += 2 * HOUR;
    await f.cp.flTriggers.onDriftAlert(alert('cohort=cam-b', { ...f.model, name: 'other' }));
    assert.equal((await rounds()).length, 2);
    assert.equal((await f.cp.audit.list()).length, auditsBefore);
  });

  it('audits a round that could not start as failed, without throwing', async () => {
    await put({ flOnDrift: { evalSet: 'holdout', config: CONFIG } });
    await f.cp.flTriggers.onDriftAlert(alert('cohort=cam-b', { ...f.model, version: '9.9.9' }));
    const last = (await audits('fl.drift-trigger')).at(-1)!.after as Record<string, unknown>;
    assert.equal(last['outcome'], 'failed');
    assert.match(String(last['reason']), /9\.9\.9 is not registered/);
    assert.equal((await rounds()).length, 2);
    await put({ flOnDrift: null });
  });
});

describe('scheduled rounds', () => {
  it('start at the interval on the clock, never while one is active', async () => {
    const scheduled = async () => (await rounds()).filter((r) => r.trigger.kind === 'schedule');
    await put({
      flSchedule: {
        everyMs: HOUR,
        evalSet: 'holdout',
        target: 'tag:cohort=cam-b',
        config: { ...CONFIG, deadlineMs: 4 * HOUR }, // still collecting two hours on
      },
    });
    await f.cp.fl.tick();
    const [first] = await scheduled();
    assert.ok(first, 'the first scheduled round starts on the first tick');
    assert.deepEqual(first.settings.target, { tags: { cohort: 'cam-b' } });
    f.clock.nowMs += 2 * HOUR; // due, but the first is still collecting
    await f.cp.fl.tick();
    assert.equal((await scheduled()).length, 1);
    await cancelActive();
    await f.cp.fl.tick(); // due now: two hours since the first
    assert.equal((await scheduled()).length, 2);
    await cancelActive();
    f.clock.nowMs += HOUR - 1;
    await f.cp.fl.tick();
    assert.equal((await scheduled()).length, 2);
    f.clock.nowMs += 1;
    await f.cp.fl.tick();
    const all = await scheduled();
    assert.equal(all.length, 3);
    assert.equal(all[0]!.createdAtMs - all[1]!.createdAtMs, HOUR);
    const started = (await audits('fl.schedule-trigger')).map(
      (e) => (e.after as { outcome: string }).outcome,
    );
    assert.deepEqual(started, ['started', 'started', 'started']);
    await cancelActive();
    await put({ flSchedule: null });
    f.clock.nowMs += 2 * HOUR;
    await f.cp.fl.tick();
    assert.equal((await scheduled()).length, 3);
  });
});
