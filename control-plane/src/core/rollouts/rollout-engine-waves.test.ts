import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isFleetError } from '@fleet/protocol';
import {
  assertQuiet,
  deployedIds,
  kinds,
  MINUTE,
  PREVIOUS,
  startHarness,
  T0,
  type Harness,
} from './__fixtures__/rollout-harness.ts';
import type { RolloutEvent } from './rollout-events.ts';

const sorted = (ids: readonly string[]) => [...ids].sort();

function joined(id: string, tags: Record<string, string> = {}): RolloutEvent {
  return { type: 'device-joined', device: { id, hardware: 'rpi4', tags }, previousModel: PREVIOUS };
}

function conflict(h: Harness, event: RolloutEvent, pattern: RegExp): void {
  const before = h.rollout;
  assert.throws(
    () => h.step(event),
    (e: unknown) => isFleetError(e, 'CONFLICT') && pattern.test(e.message),
  );
  assert.equal(h.rollout, before);
}

describe('wave advance', () => {
  it('waits for the success share, then for the bake, then deploys the next wave', () => {
    const { h } = startHarness({
      devices: 40,
      policy: { waves: '10%,50%,all', bake: '10m', successRatio: '75%', maxFailure: '25%' },
    });
    const [a, b, c] = h.inWave(0);
    h.step({ type: 'tick' }, { atMs: T0 + 2 * MINUTE });
    h.commitAll([a!, b!]);
    assert.equal(h.rollout.waveSucceededAtMs, null, '2 of 4 is below 75%');
    h.report(c!, 'committed');
    assert.equal(h.rollout.waveSucceededAtMs, T0 + 2 * MINUTE);
    assertQuiet(h.tick(T0 + 12 * MINUTE - 1), h.rollout);
    const step = h.tick(T0 + 12 * MINUTE);
    assert.deepEqual(kinds(step), ['wave-advanced', 'wave-started']);
    assert.equal(
      step.decisions[0]!.reason,
      'wave 1 of 3: 3 of 4 devices succeeded (75.0%, 75.0% needed), baked 10m; advancing',
    );
    assert.equal(
      step.decisions[1]!.reason,
      'wave 2 of 3 started: deploying to 16 more device(s), 20 of 40 in all',
    );
    assert.deepEqual(sorted(deployedIds(step)), sorted(h.inWave(1)));
    assert.equal(h.rollout.currentWave, 1);
    assert.equal(h.rollout.waveStartedAtMs, T0 + 12 * MINUTE);
    assert.equal(h.rollout.waveSucceededAtMs, null);
  });

  it('counts the success share in whole devices, whatever the float product says', () => {
    // 0.07 * 100 is 7.000000000000001: 7 of 100 devices reach a 7% share.
    const { h } = startHarness({ devices: 100, policy: { waves: 'all', successRatio: '7%' } });
    h.commitAll(h.inWave(0).slice(0, 6));
    assert.equal(h.rollout.waveSucceededAtMs, null);
    h.commitAll(h.inWave(0).slice(6, 7));
    assert.equal(h.rollout.waveSucceededAtMs, T0);
  });

  it('restarts the bake when the share drops below it again', () => {
    const { h } = startHarness({
      devices: 4,
      policy: { waves: '2,all', bake: '10m', successRatio: '50%', maxFailure: '50%' },
    });
    const [a] = h.inWave(0);
    h.report(a!, 'committed');
    assert.equal(h.rollout.waveSucceededAtMs, T0);
    h.step(
      {
        type: 'device-health',
        deviceId: a!,
        model: { name: 'mnist-2nn', version: '1.2.0', release: 5 },
        probation: true,
        requests: 10,
        errors: 9,
        latencyP95Ms: 10,
        meanConfidence: 0.9,
      },
      { atMs: T0 + 5 * MINUTE },
    );
    assert.equal(h.rollout.waveSucceededAtMs, null);
    assert.equal(h.rollout.status, 'running', '1 of 2 failed is at the 50% limit');
    h.step(
      {
        type: 'device-report',
        deviceId: h.inWave(0)[1]!,
        rolloutId: h.rollout.id,
        bundleId: h.rollout.model.bundleId,
        state: 'committed',
        error: null,
      },
      { atMs: T0 + 6 * MINUTE },
    );
    assert.equal(h.rollout.waveSucceededAtMs, T0 + 6 * MINUTE);
    assertQuiet(h.tick(T0 + 16 * MINUTE - 1), h.rollout);
    assert.deepEqual(kinds(h.tick(T0 + 16 * MINUTE)), ['wave-advanced', 'wave-started']);
  });

  it('with no bake, advances on the report that reaches the share, through waves that add nobody', () => {
    // 5 devices, then 1% of 100 (still 5): the second wave adds nobody and passes at once.
    const { h } = startHarness({ devices: 100, policy: { waves: '5,1%,all', bake: '0s' } });
    const step = (() => {
      h.commitAll(h.inWave(0).slice(0, 4));
      return h.report(h.inWave(0)[4]!, 'committed');
    })();
    assert.deepEqual(kinds(step), [
      'device-succeeded',
      'wave-advanced',
      'wave-started',
      'wave-advanced',
      'wave-started',
    ]);
    assert.equal(h.rollout.currentWave, 2);
    assert.equal(deployedIds(step).length, 95);
  });

  it('completes after the last wave only once every device is final', () => {
    const { h } = startHarness({
      devices: 20,
      policy: { waves: 'all', bake: '0s', successRatio: '95%', maxFailure: '5%' },
    });
    const [slow, ...rest] = h.inWave(0);
    h.commitAll(rest);
    assert.equal(h.rollout.status, 'running', '19 of 20 succeeded, but one is still updating');
    const step = h.report(slow!, 'committed');
    assert.equal(h.rollout.status, 'completed');
    assert.deepEqual(kinds(step), ['device-succeeded', 'completed']);
    assert.equal(
      h.rollout.reason,
      'all 1 waves done: 20 of 20 devices succeeded (100.0%, 95.0% needed), baked 0s; 0 failed; mnist-2nn@1.2.0 (release 5) rolled out',
    );
    assertQuiet(h.tick(T0 + 60 * MINUTE), h.rollout);
  });
});

describe('pause and resume', () => {
  it('a pause holds deploys, retries and advances; in-flight devices keep reporting', () => {
    const { h } = startHarness({
      devices: 20,
      policy: {
        waves: '10%,all',
        bake: '0s',
        successRatio: '50%',
        maxFailure: '50%',
        retryBackoff: '1m',
      },
    });
    const [a, b] = h.inWave(0);
    const paused = h.step({ type: 'pause', actor: 'ops@example', reason: 'field check' });
    assert.deepEqual(paused.decisions, [
      {
        kind: 'paused',
        reason: 'paused by ops@example: field check; no new deploys or retries until resumed',
        atMs: T0,
        actor: 'ops@example',
        wave: 0,
      },
    ]);
    assertQuiet(h.step({ type: 'pause', actor: 'ops@example', reason: 'again' }), h.rollout);
    h.report(a!, 'idle', { code: 'BUSY', message: 'probation' });
    h.report(b!, 'committed');
    assert.equal(h.rollout.currentWave, 0, 'no advance while paused');
    assertQuiet(h.tick(T0 + 5 * MINUTE), h.rollout);
    const resumed = h.step({ type: 'resume', actor: 'lead@example' });
    assert.deepEqual(kinds(resumed), ['resumed', 'wave-advanced', 'wave-started']);
    assert.equal(resumed.decisions[0]!.reason, 'resumed by lead@example at wave 1 of 2');
    assert.deepEqual(
      sorted(deployedIds(resumed)),
      sorted([a!, ...h.inWave(1)]),
      'the due retry and the next wave',
    );
    assertQuiet(h.step({ type: 'resume', actor: 'lead@example' }), h.rollout);
  });

  it('timeouts still run while paused; the retry waits for the resume', () => {
    const { h } = startHarness({
      devices: 10,
      policy: { waves: 'all', maxFailure: '50%', successRatio: '50%' },
    });
    h.step({ type: 'pause', actor: 'ops@example', reason: 'x' });
    const step = h.tick(T0 + 15 * MINUTE);
    assert.equal(kinds(step).filter((k) => k === 'device-timed-out').length, 10);
    assert.deepEqual(deployedIds(h.tick(T0 + 20 * MINUTE)), []);
    assert.equal(deployedIds(h.step({ type: 'resume', actor: 'ops@example' })).length, 10);
  });
});

describe('operator abort and finished rollouts', () => {
  it('abort is final and says who and why; resume, pause and abort after it are CONFLICT', () => {
    const { h } = startHarness({ devices: 10 });
    const step = h.step({ type: 'abort', actor: 'ops@example', reason: 'wrong bundle' });
    assert.equal(h.rollout.status, 'aborted');
    assert.equal(h.rollout.reason, 'aborted by ops@example: wrong bundle');
    assert.deepEqual(step.decisions[0], {
      kind: 'aborted',
      reason: 'aborted by ops@example: wrong bundle; cancelling 10 device(s), rolling back 0',
      atMs: T0,
      wave: 0,
      actor: 'ops@example',
    });
    conflict(
      h,
      { type: 'resume', actor: 'ops@example' },
      /rollout r-canary-0001 is aborted \(aborted by ops@example: wrong bundle\); it cannot be resumed/,
    );
    conflict(h, { type: 'pause', actor: 'ops@example', reason: 'x' }, /cannot be paused/);
    conflict(h, { type: 'abort', actor: 'ops@example', reason: 'x' }, /cannot be aborted/);
    assertQuiet(h.step(joined('dev-new')), h.rollout);
  });

  it('a completed rollout refuses pause, resume and abort', () => {
    const { h } = startHarness({ devices: 1, policy: { bake: '0s' } });
    h.commitAll(h.inWave(0));
    assert.equal(h.rollout.status, 'completed');
    for (const event of [
      { type: 'pause', actor: 'a', reason: 'x' },
      { type: 'resume', actor: 'a' },
      { type: 'abort', actor: 'a', reason: 'x' },
    ] as const) {
      conflict(h, event, /is completed/);
    }
  });
});

describe('late joiners', () => {
  it('join the current wave of a running rollout and are deployed at once', () => {
    const { h } = startHarness({ devices: 20, policy: { waves: '10%,all' } });
    const step = h.step(joined('dev-new'));
    assert.equal(h.device('dev-new').wave, 0);
    assert.deepEqual(deployedIds(step), ['dev-new']);
    assert.equal(
      step.decisions[0]!.reason,
      'dev-new matches the target all after the start; joins wave 1 of 2, deployed now',
    );
    assertQuiet(h.step(joined('dev-new')), h.rollout);
  });

  it('must match the selector', () => {
    const { h } = startHarness({
      devices: ['dev-a', 'dev-b'],
      selector: { tags: { site: 'berlin' } },
    });
    assertQuiet(h.step(joined('dev-c', { site: 'munich' })), h.rollout);
    h.step(joined('dev-d', { site: 'berlin' }));
    assert.equal(h.device('dev-d').status, 'sent');
  });

  it('wait for the resume of a paused rollout', () => {
    const { h } = startHarness({ devices: 20 });
    h.step({ type: 'pause', actor: 'ops@example', reason: 'x' });
    assert.deepEqual(deployedIds(h.step(joined('dev-new'))), []);
    assert.equal(h.device('dev-new').status, 'pending');
    assert.ok(deployedIds(h.step({ type: 'resume', actor: 'ops@example' })).includes('dev-new'));
  });

  it('after completion, go in the last wave and are deployed at once; their reports count', () => {
    const { h } = startHarness({ devices: 2, policy: { waves: '1,all', bake: '0s' } });
    h.commitAll(h.inWave(0));
    h.commitAll(h.inWave(1));
    assert.equal(h.rollout.status, 'completed');
    const step = h.step(joined('dev-new'));
    assert.deepEqual(deployedIds(step), ['dev-new']);
    assert.equal(h.device('dev-new').wave, 1);
    assert.match(step.decisions[0]!.reason, /the rollout is complete, so it is deployed at once/);
    h.report('dev-new', 'committed');
    assert.equal(h.device('dev-new').status, 'succeeded');
    assert.equal(h.rollout.status, 'completed');
  });
});
