import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  assertQuiet,
  deployedIds,
  kinds,
  MINUTE,
  MODEL,
  ROLLOUT_ID,
  startHarness,
  T0,
} from './__fixtures__/rollout-harness.ts';
import { stepRollout } from './rollout-engine.ts';
import { buildPolicy, defaultPolicy } from './rollout-spec.ts';

describe('device timeouts', () => {
  it('retry a silent device with doubling backoff, then fail it and tell it to stop', () => {
    const policy = { deviceTimeout: '15m', retries: 2, retryBackoff: '1m' };
    const { h } = startHarness({ devices: 1, policy });
    const id = h.inWave(0)[0]!;
    h.report(id, 'downloading');
    assertQuiet(h.tick(T0 + 15 * MINUTE - 1), h.rollout);
    const timedOut = h.tick(T0 + 15 * MINUTE);
    assert.deepEqual(kinds(timedOut), ['device-timed-out', 'device-retried']);
    assert.equal(
      timedOut.decisions[0]!.reason,
      `${id}: no final report within 15m of deploy attempt 1 (last seen updating)`,
    );
    assert.equal(timedOut.decisions[0]!.code, 'DEVICE_TIMEOUT');
    assert.equal(h.device(id).nextAttemptAtMs, T0 + 16 * MINUTE);
    assert.deepEqual(deployedIds(h.tick(T0 + 16 * MINUTE)), [id]);
    h.tick(T0 + 31 * MINUTE);
    assert.equal(h.device(id).nextAttemptAtMs, T0 + 33 * MINUTE, 'backoff doubled to 2m');
    h.tick(T0 + 33 * MINUTE);
    assert.equal(h.device(id).attempts, 3);
    const final = h.tick(T0 + 48 * MINUTE);
    assert.deepEqual(kinds(final), ['device-timed-out', 'device-failed', 'aborted']);
    assert.equal(h.device(id).status, 'failed');
    assert.equal(h.device(id).error?.code, 'DEVICE_TIMEOUT');
    const cancel = final.commands.find((c) => c.type === 'cancel');
    assert.match(
      cancel?.type === 'cancel' ? cancel.reason : '',
      /failed after 3 attempt\(s\): DEVICE_TIMEOUT/,
    );
  });

  it('add up to 25% jitter from random, never less than the backoff', () => {
    const delays = [0, 0.5, 0.999].map((r) => {
      const { h } = startHarness({ devices: 1, policy: { retryBackoff: '40s' } });
      h.step({ type: 'tick' }, { atMs: T0 + defaultPolicy.deviceTimeoutMs, random: () => r });
      return h.device(h.inWave(0)[0]!).nextAttemptAtMs! - (T0 + defaultPolicy.deviceTimeoutMs);
    });
    assert.deepEqual(delays, [40_000, 45_000, 49_990]);
  });

  it('without retries, fail a silent device at its timeout', () => {
    const { h } = startHarness({
      devices: 100,
      policy: { waves: '10%,all', retries: 0, maxFailure: '50%', successRatio: '50%', bake: '1h' },
    });
    const [id, ...others] = h.inWave(0);
    h.commitAll(others);
    const step = h.tick(T0 + defaultPolicy.deviceTimeoutMs);
    assert.deepEqual(kinds(step), ['device-timed-out', 'device-failed']);
    assert.equal(
      h.device(id!).error?.message,
      'no final report within 15m of deploy attempt 1 (last seen sent); no retries left (0)',
    );
  });
});

describe('inputs', () => {
  it('are never changed by a step', () => {
    const { h } = startHarness({ devices: 20, policy: { maxFailure: '0%', successRatio: '50%' } });
    const rollout = structuredClone(h.rollout);
    const devices = structuredClone([...h.devices.values()]);
    const frozen = Object.freeze(structuredClone(rollout));
    const frozenDevices = devices.map((d) => Object.freeze(structuredClone(d)));
    const id = h.inWave(0)[0]!;
    const step = stepRollout({
      rollout: frozen,
      devices: frozenDevices,
      event: {
        type: 'device-report',
        deviceId: id,
        rolloutId: ROLLOUT_ID,
        bundleId: MODEL.bundleId,
        state: 'idle',
        error: { code: 'PART_HASH', message: 'x' },
      },
      nowMs: T0 + MINUTE,
    });
    assert.equal(step.rollout.status, 'aborted');
    assert.deepEqual(frozen, rollout);
    assert.deepEqual(frozenDevices, devices);
    assert.deepEqual(buildPolicy(), defaultPolicy);
  });
});
