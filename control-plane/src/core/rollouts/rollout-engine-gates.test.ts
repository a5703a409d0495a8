import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  assertQuiet,
  kinds,
  MINUTE,
  MODEL,
  PREVIOUS,
  ROLLOUT_ID,
  startHarness,
  T0,
  type Harness,
} from './__fixtures__/rollout-harness.ts';
import type { RolloutEvent } from './rollout-events.ts';

type Health = Extract<RolloutEvent, { type: 'device-health' }>;

function health(deviceId: string, window: Partial<Health> = {}): Health {
  return {
    type: 'device-health',
    deviceId,
    model: { name: MODEL.name, version: MODEL.version, release: MODEL.release },
    probation: true,
    requests: 200,
    errors: 2,
    latencyP95Ms: 120,
    meanConfidence: 0.9,
    ...window,
  };
}

/** A fleet where one failure never aborts, so device rules are seen alone. */
function lenient(devices = 10): Harness {
  const policy = { waves: 'all', maxFailure: '40%', successRatio: '60%', minConfidence: '0.5' };
  return startHarness({ devices, policy }).h;
}

describe('probation health gates', () => {
  it('fail a device on probation that breaks them, with the figures, and tell it to stop', () => {
    const h = lenient();
    const id = h.inWave(0)[0]!;
    h.report(id, 'probation');
    const step = h.step(health(id, { errors: 24, latencyP95Ms: 1500, meanConfidence: 0.41 }));
    assert.equal(h.device(id).status, 'failed');
    const message =
      'probation health broke the gates: error rate 12.0% (24 of 200) above 5.0%; ' +
      'latency p95 1500 ms above 1000 ms; mean confidence 0.410 below 0.500';
    assert.deepEqual(h.device(id).error, { code: 'HEALTH_GATE', message });
    assert.deepEqual(kinds(step), ['device-failed']);
    assert.deepEqual(step.commands, [
      {
        type: 'cancel',
        deviceId: id,
        reason: `${id} failed after 1 attempt(s): HEALTH_GATE: ${message}`,
      },
    ]);
  });

  it('judge each gate on its own', () => {
    for (const [window, breach] of [
      [{ errors: 11 }, /error rate 5.5%/],
      [{ latencyP95Ms: 1001 }, /latency p95 1001 ms above 1000 ms/],
      [{ meanConfidence: 0.49 }, /mean confidence 0.490 below 0.500/],
    ] as const) {
      const h = lenient();
      const id = h.inWave(0)[0]!;
      h.step(health(id, window));
      assert.match(h.device(id).error?.message ?? '', breach);
    }
  });

  it('let a healthy window, an empty window, a committed-model window or another model pass', () => {
    const h = lenient();
    const id = h.inWave(0)[0]!;
    h.report(id, 'probation');
    const before = h.rollout;
    assertQuiet(
      h.step(health(id, { errors: 10, latencyP95Ms: 1000, meanConfidence: 0.5 })),
      before,
    );
    assertQuiet(h.step(health(id, { requests: 0, errors: 0, meanConfidence: null })), before);
    assertQuiet(h.step(health(id, { probation: false, errors: 200 })), before);
    const older = { name: MODEL.name, version: PREVIOUS.version, release: PREVIOUS.release };
    assertQuiet(h.step(health(id, { model: older, errors: 200 })), before);
    const rebuilt = { name: MODEL.name, version: MODEL.version, release: MODEL.release + 1 };
    assertQuiet(h.step(health(id, { model: rebuilt, errors: 200 })), before);
    assert.equal(h.device(id).status, 'probation');
  });

  it('judge a window where every request failed on its error rate alone', () => {
    const h = lenient();
    const id = h.inWave(0)[0]!;
    h.step(health(id, { errors: 200, meanConfidence: null }));
    assert.equal(
      h.device(id).error?.message,
      'probation health broke the gates: error rate 100.0% (200 of 200) above 5.0%',
    );
  });

  it('fail a device that already committed, and order it back with a signed rollback', () => {
    const h = lenient();
    const id = h.inWave(0)[0]!;
    h.report(id, 'committed');
    const step = h.step(health(id, { latencyP95Ms: 4000 }), { atMs: T0 + MINUTE });
    assert.equal(h.device(id).status, 'failed');
    assert.deepEqual(kinds(step), ['device-failed', 'rollback-ordered']);
    const reason =
      `${id} serves mnist-2nn@1.2.0 (release 5); it failed after committing: HEALTH_GATE: ` +
      'ordered back to mnist-2nn@1.1.0 (release 4); needs a signed rollback authorization';
    assert.deepEqual(step.commands, [
      { type: 'rollback', deviceId: id, to: PREVIOUS, reason, needsSignedAuthorization: true },
    ]);
    assert.equal(step.decisions[1]!.reason, reason);
    assertQuiet(h.step(health(id, { latencyP95Ms: 4000 })), h.rollout);
  });

  it('order back, once, a device that commits after it was failed', () => {
    const h = lenient();
    const id = h.inWave(0)[0]!;
    h.step(health(id, { errors: 100 }));
    const late = h.report(id, 'committed');
    assert.deepEqual(kinds(late), ['rollback-ordered']);
    assert.match(late.decisions[0]!.reason, /it committed after it had been failed/);
    assert.equal(h.device(id).status, 'failed');
    assert.notEqual(h.device(id).committedAtMs, null);
    assertQuiet(h.report(id, 'committed'), h.rollout);
  });

  it('say so when a device to order back had no model before', () => {
    const { h } = startHarness({
      devices: 10,
      previousModel: null,
      policy: { waves: 'all', maxFailure: '40%', successRatio: '60%' },
    });
    const id = h.inWave(0)[0]!;
    h.report(id, 'committed');
    const step = h.step(health(id, { errors: 100 }));
    const rollback = step.commands[0];
    assert.equal(rollback?.type === 'rollback' && rollback.to, null);
    assert.match(step.decisions[1]!.reason, /no earlier model is recorded for it/);
  });
});

describe('failure limit', () => {
  it('aborts a canary above it: cancels what is in flight, rolls back what succeeded', () => {
    const { h } = startHarness({ devices: 40, policy: { waves: '10%,all' } });
    const [a, b, c, d] = h.inWave(0);
    h.report(a!, 'committed');
    h.report(b!, 'downloading');
    const step = h.report(c!, 'idle', { code: 'PART_HASH', message: 'part 2 hash mismatch' });
    assert.equal(h.rollout.status, 'aborted');
    const reason =
      'wave 1 of 2: 1 of 4 devices started so far (wave 1) failed (25.0%), above the 2.0% limit';
    assert.equal(h.rollout.reason, reason);
    assert.deepEqual(kinds(step), ['device-failed', 'aborted', 'rollback-ordered']);
    assert.equal(step.decisions[1]!.reason, `${reason}; cancelling 38 device(s), rolling back 1`);
    const cancelReason = `rollout ${ROLLOUT_ID} aborted: ${reason}`;
    assert.deepEqual(
      step.commands
        .filter((cmd) => cmd.type === 'cancel')
        .sort((x, y) => (x.deviceId < y.deviceId ? -1 : 1)),
      [b!, d!].sort().map((deviceId) => ({ type: 'cancel', deviceId, reason: cancelReason })),
      'only devices ever sent a deploy are told to stop',
    );
    assert.equal(step.commands.filter((cmd) => cmd.type === 'rollback').length, 1);
    assert.equal(h.device(a!).status, 'rolled_back');
    assert.equal(h.device(c!).status, 'failed');
    for (const id of [b!, d!, ...h.inWave(1)]) assert.equal(h.device(id).status, 'cancelled');
    assertQuiet(h.tick(T0 + 60 * MINUTE), h.rollout);
  });

  it('does not abort at exactly the limit', () => {
    const { h } = startHarness({
      devices: 20,
      policy: { waves: 'all', maxFailure: '10%', successRatio: '90%' },
    });
    const [a, b, c] = h.inWave(0);
    h.report(a!, 'idle', { code: 'PART_HASH', message: 'x' });
    h.report(b!, 'idle', { code: 'PART_HASH', message: 'x' });
    assert.equal(h.rollout.status, 'running', '2 of 20 is 10%');
    h.report(c!, 'idle', { code: 'PART_HASH', message: 'x' });
    assert.equal(h.rollout.status, 'aborted');
    assert.match(
      h.rollout.reason ?? '',
      /3 of 20 devices started so far \(wave 1\) failed \(15.0%\), above the 10.0% limit/,
    );
  });

  it('counts the limit in whole devices, whatever the float product says', () => {
    // 0.29 * 100 is 28.999999999999996: 29 failures of 100 are still within 29%.
    const { h } = startHarness({
      devices: 100,
      policy: { waves: 'all', maxFailure: '29%', successRatio: '71%' },
    });
    const ids = h.inWave(0);
    for (const id of ids.slice(0, 29)) h.report(id, 'idle', { code: 'PART_HASH', message: 'x' });
    assert.equal(h.rollout.status, 'running');
    h.report(ids[29]!, 'idle', { code: 'PART_HASH', message: 'x' });
    assert.equal(h.rollout.status, 'aborted');
  });

  it('aborts while paused too (a pause does not hide a failing canary)', () => {
    const { h } = startHarness({ devices: 40, policy: { waves: '10%,all' } });
    h.step({ type: 'pause', actor: 'ops@example', reason: 'lunch' });
    h.report(h.inWave(0)[0]!, 'idle', { code: 'PART_HASH', message: 'x' });
    assert.equal(h.rollout.status, 'aborted');
  });

  it('orders back, once, a cancelled device that commits anyway', () => {
    const { h } = startHarness({ devices: 40, policy: { waves: '10%,all' } });
    const [a, b] = h.inWave(0);
    h.report(b!, 'probation');
    h.step({ type: 'abort', actor: 'ops@example', reason: 'wrong model' });
    const late = h.report(b!, 'committed');
    assert.equal(h.device(b!).status, 'rolled_back');
    assert.deepEqual(
      late.commands.map((cmd) => [cmd.type, cmd.deviceId]),
      [['rollback', b]],
    );
    assert.match(late.decisions[0]!.reason, /it committed after it had been cancelled/);
    assertQuiet(h.report(b!, 'committed'), h.rollout);
    assertQuiet(h.report(a!, 'downloading'), h.rollout);
  });
});
