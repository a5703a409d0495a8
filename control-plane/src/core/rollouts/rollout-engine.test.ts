import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isFleetError } from '@fleet/protocol';
import {
  assertQuiet,
  deployedIds,
  kinds,
  MINUTE,
  MODEL,
  PREVIOUS,
  ROLLOUT_ID,
  SECOND,
  startHarness,
  T0,
} from './__fixtures__/rollout-harness.ts';
import { startRollout } from './rollout-engine.ts';
import { defaultPolicy } from './rollout-spec.ts';

describe('startRollout', () => {
  it('assigns waves, deploys the first wave only, and explains itself', () => {
    const { h, start } = startHarness({ devices: 250 });
    assert.equal(start.devices.length, 250);
    assert.deepEqual(
      [0, 1, 2, 3].map((w) => h.inWave(w).length),
      [3, 22, 100, 125],
    );
    assert.deepEqual(deployedIds(start).sort(), h.inWave(0).sort());
    const deadlineMs = T0 + defaultPolicy.deviceTimeoutMs - defaultPolicy.probationMs;
    for (const command of start.commands) {
      assert.deepEqual(command, {
        type: 'deploy',
        deviceId: command.deviceId,
        attempt: 1,
        deadlineMs,
      });
    }
    for (const id of h.inWave(0)) assert.equal(h.device(id).status, 'sent');
    for (const id of h.inWave(1)) assert.equal(h.device(id).status, 'pending');
    assert.deepEqual(kinds(start), ['started', 'wave-started']);
    assert.equal(
      start.decisions[0]!.reason,
      `rollout ${ROLLOUT_ID} of mnist-2nn@1.2.0 (release 5) to 250 device(s) matching all: ` +
        'cumulative waves 3, 25, 125, 250; a wave advances at 95.0% succeeded after 10m of bake; ' +
        'aborts above 2.0% failed; device timeout 15m, 2 retries from 30s',
    );
    assert.equal(
      start.decisions[1]!.reason,
      'wave 1 of 4 started: deploying to 3 more device(s), 3 of 250 in all',
    );
    assert.deepEqual(h.rollout, {
      id: ROLLOUT_ID,
      model: MODEL,
      selector: { all: true },
      policy: defaultPolicy,
      status: 'running',
      currentWave: 0,
      waveStartedAtMs: T0,
      waveSucceededAtMs: null,
      createdAtMs: T0,
      updatedAtMs: T0,
      reason: null,
    });
  });

  it('records each device with its way back', () => {
    const { h } = startHarness({ devices: 2, previousModel: null });
    const [id] = h.inWave(0);
    assert.deepEqual(h.device(id!), {
      deviceId: id,
      wave: 0,
      status: 'sent',
      attempts: 1,
      lastSentAtMs: T0,
      nextAttemptAtMs: null,
      previousModel: null,
      error: null,
      committedAtMs: null,
      updatedAtMs: T0,
    });
  });

  it('counts a repeated device once', () => {
    const start = startRollout({
      id: ROLLOUT_ID,
      model: MODEL,
      selector: { all: true },
      policy: defaultPolicy,
      devices: [
        { deviceId: 'dev-1', previousModel: PREVIOUS },
        { deviceId: 'dev-1', previousModel: null },
      ],
      nowMs: T0,
    });
    assert.equal(start.devices.length, 1);
    assert.deepEqual(start.devices[0]!.previousModel, PREVIOUS);
  });

  it('refuses no devices, a bad policy, an empty selector or a bad id, naming each', () => {
    const base = {
      id: ROLLOUT_ID,
      model: MODEL,
      selector: { hardware: ['rpi4'] },
      policy: defaultPolicy,
      devices: [{ deviceId: 'dev-1', previousModel: null }],
      nowMs: T0,
    };
    const cases: [object, RegExp][] = [
      [{ devices: [] }, /target: hardware:rpi4 matches no device/],
      [{ policy: { ...defaultPolicy, retries: -1 } }, /retries: -1/],
      [{ selector: {} }, /target: an empty selector is refused/],
      [{ id: 'r 1' }, /id: 'r 1' is not a rollout id/],
    ];
    for (const [change, message] of cases) {
      assert.throws(
        () => startRollout({ ...base, ...change }),
        (e: unknown) => isFleetError(e, 'INVALID_REQUEST') && message.test(e.message),
      );
    }
  });
});

describe('device reports', () => {
  it('move a device forward only, and a repeated report changes nothing', () => {
    const { h } = startHarness({ devices: 1 });
    const id = h.inWave(0)[0]!;
    h.report(id, 'downloading', null);
    assert.equal(h.device(id).status, 'updating');
    assertQuiet(h.report(id, 'verifying'), h.rollout);
    h.report(id, 'probation');
    assert.equal(h.device(id).status, 'probation');
    const before = h.rollout;
    assertQuiet(h.report(id, 'activating'), before); // the evt topic overtaken by the state topic
    assertQuiet(h.report(id, 'probation'), before);
    assertQuiet(h.report(id, 'idle'), before); // idle without an error says nothing
  });

  it('count committed as success, once', () => {
    const { h } = startHarness({ devices: 10, policy: { bake: '1h' } });
    const id = h.inWave(0)[0]!;
    const step = h.step(
      {
        type: 'device-report',
        deviceId: id,
        rolloutId: ROLLOUT_ID,
        bundleId: MODEL.bundleId,
        state: 'committed',
        error: null,
      },
      { atMs: T0 + 5 * MINUTE },
    );
    assert.deepEqual(kinds(step), ['device-succeeded']);
    assert.equal(
      step.decisions[0]!.reason,
      `${id} committed mnist-2nn@1.2.0 (release 5) after probation (attempt 1)`,
    );
    assert.equal(h.device(id).status, 'succeeded');
    assert.equal(h.device(id).committedAtMs, T0 + 5 * MINUTE);
    assertQuiet(h.report(id, 'committed'), h.rollout);
  });

  it('ignore reports about another bundle, another rollout, an unknown or unsent device', () => {
    const { h } = startHarness({ devices: 10 });
    const sent = h.inWave(0)[0]!;
    const unsent = h.inWave(1)[0]!;
    const report = { type: 'device-report' as const, state: 'committed' as const, error: null };
    const before = h.rollout;
    for (const event of [
      { ...report, deviceId: sent, rolloutId: ROLLOUT_ID, bundleId: PREVIOUS.bundleId },
      { ...report, deviceId: sent, rolloutId: 'r-other-0001', bundleId: MODEL.bundleId },
      { ...report, deviceId: 'dev-999', rolloutId: ROLLOUT_ID, bundleId: MODEL.bundleId },
      { ...report, deviceId: unsent, rolloutId: ROLLOUT_ID, bundleId: MODEL.bundleId },
    ]) {
      assertQuiet(h.step(event), before);
    }
  });

  it('fail a device for good on a final error, with the error in the reason', () => {
    const { h } = startHarness({
      devices: 100,
      policy: { waves: '10%,all', maxFailure: '50%', successRatio: '50%' },
    });
    const id = h.inWave(0)[0]!;
    const step = h.report(id, 'idle', { code: 'WRONG_HARDWARE', message: 'built for jetson' });
    assert.equal(h.device(id).status, 'failed');
    assert.deepEqual(h.device(id).error, { code: 'WRONG_HARDWARE', message: 'built for jetson' });
    assert.deepEqual(step.commands, [], 'the device stopped by itself; nothing to send');
    assert.deepEqual(step.decisions, [
      {
        kind: 'device-failed',
        reason: `${id} failed after 1 attempt(s): WRONG_HARDWARE: built for jetson`,
        atMs: T0,
        deviceId: id,
        wave: 0,
        code: 'WRONG_HARDWARE',
      },
    ]);
    assertQuiet(
      h.report(id, 'idle', { code: 'WRONG_HARDWARE', message: 'built for jetson' }),
      h.rollout,
    );
  });

  it('read rolled_back without an error as a failure', () => {
    const { h } = startHarness({
      devices: 100,
      policy: { waves: '10%,all', maxFailure: '50%', successRatio: '50%' },
    });
    const id = h.inWave(0)[0]!;
    h.report(id, 'rolled_back');
    assert.equal(h.device(id).status, 'failed');
    assert.equal(h.device(id).error?.code, 'ROLLED_BACK');
  });

  it('retry transient errors with doubling backoff, then fail', () => {
    const { h } = startHarness({ devices: 1, policy: { retries: 2, retryBackoff: '30s' } });
    const id = h.inWave(0)[0]!;
    const deadline = { code: 'DOWNLOAD_DEADLINE', message: 'slow link' };
    const first = h.report(id, 'idle', deadline);
    assert.deepEqual(kinds(first), ['device-retried']);
    assert.equal(
      first.decisions[0]!.reason,
      `${id}: DOWNLOAD_DEADLINE on attempt 1; deploy attempt 2 of 3 in 30s`,
    );
    assert.deepEqual(first.commands, []);
    assert.equal(h.device(id).status, 'pending');
    assert.equal(h.device(id).nextAttemptAtMs, T0 + 30 * SECOND);
    assertQuiet(h.report(id, 'idle', deadline), h.rollout);
    assertQuiet(h.tick(T0 + 29 * SECOND), h.rollout);
    const retry = h.tick(T0 + 30 * SECOND);
    assert.deepEqual(
      retry.commands.map((c) => c.type === 'deploy' && c.attempt),
      [2],
    );
    h.report(id, 'downloading');
    h.step(
      {
        type: 'device-report',
        deviceId: id,
        rolloutId: ROLLOUT_ID,
        bundleId: MODEL.bundleId,
        state: 'idle',
        error: { code: 'BUSY', message: 'on probation' },
      },
      { atMs: T0 + MINUTE },
    );
    assert.equal(h.device(id).nextAttemptAtMs, T0 + MINUTE + MINUTE, 'second backoff doubles');
    h.tick(T0 + 2 * MINUTE);
    assert.equal(h.device(id).attempts, 3);
    const last = h.step({
      type: 'device-report',
      deviceId: id,
      rolloutId: ROLLOUT_ID,
      bundleId: MODEL.bundleId,
      state: 'idle',
      error: { code: 'DISCONNECTED', message: 'link lost' },
    });
    assert.equal(h.device(id).status, 'failed');
    assert.equal(
      last.decisions[0]!.reason,
      `${id} failed after 3 attempt(s): DISCONNECTED: link lost; no retries left (2)`,
    );
  });

  it('take the same transient failure again, before news of the retry, as a redelivery', () => {
    const { h } = startHarness({ devices: 1, policy: { retries: 2, retryBackoff: '30s' } });
    const id = h.inWave(0)[0]!;
    const busy = { code: 'BUSY', message: 'another update is on probation' };
    h.report(id, 'idle', busy);
    h.tick(T0 + 30 * SECOND);
    assert.equal(h.device(id).status, 'sent');
    assertQuiet(h.report(id, 'idle', busy), h.rollout);
    h.report(id, 'downloading');
    h.report(id, 'idle', busy);
    assert.equal(h.device(id).status, 'pending', 'after progress, the same error is a new failure');
    assert.equal(h.device(id).nextAttemptAtMs, T0 + 90 * SECOND);
  });

  it('let a device waiting for a retry commit or fail, but not restart its clock', () => {
    const { h } = startHarness({
      devices: 3,
      policy: { waves: 'all', maxFailure: '40%', successRatio: '60%' },
    });
    const [a, b] = h.inWave(0);
    const busy = { code: 'BUSY', message: 'on probation' };
    h.report(a!, 'idle', busy);
    h.report(b!, 'idle', busy);
    assertQuiet(h.report(a!, 'downloading'), h.rollout);
    assertQuiet(h.report(a!, 'probation'), h.rollout);
    h.report(a!, 'committed');
    assert.equal(h.device(a!).status, 'succeeded');
    assert.equal(h.device(a!).nextAttemptAtMs, null);
    h.report(b!, 'idle', { code: 'PART_HASH', message: 'bad part' });
    assert.equal(h.device(b!).status, 'failed');
  });
});
