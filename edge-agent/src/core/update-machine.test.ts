import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { BundleModelRef, DeployMessage } from '@fleet/protocol';
import { step, type UpdateAction, type UpdateInput } from './update-machine.ts';
import { agentStateSchema, initialAgentState, installOf, type AgentState } from './update-state.ts';

const T0 = Date.parse('2026-11-27T10:00:00Z');
const bundleId = (n: number) => n.toString(16).padStart(64, '0');
const model = (release: number): BundleModelRef => ({
  name: 'mnist-2nn',
  version: `1.${release}.0`,
  release,
  bundleId: bundleId(release),
});

function deploy(
  release: number,
  id = `cmd-deploy-${release}`,
  rolloutId = 'rollout-0001',
): DeployMessage {
  return {
    type: 'deploy',
    id,
    schemaVersion: 1,
    ts: new Date(T0).toISOString(),
    rolloutId,
    bundle: {
      bundleId: bundleId(release),
      sizeBytes: 200_000,
      blockSizeBytes: 65_536,
      blockCount: 4,
      blockRoot: 'ab'.repeat(32),
      manifestEnvelope: {
        payloadType: 'application/vnd.fleet.bundle-manifest+json',
        payload: 'e30=',
        signatures: [],
      },
    },
    model: { name: 'mnist-2nn', version: `1.${release}.0`, release },
    deadline: new Date(T0 + 600_000).toISOString(),
    probation: {
      durationMs: 30_000,
      maxErrorRate: 0.05,
      maxLatencyP95Ms: 100,
      minMeanConfidence: 0.5,
    },
  };
}

/** Runs inputs in order, checking every state against the persisted schema. */
function run(state: AgentState, inputs: Array<[UpdateInput, number?]>) {
  let actions: UpdateAction[] = [];
  for (const [input, at] of inputs) {
    const result = step(state, input, at ?? T0);
    agentStateSchema.parse(result.state);
    state = result.state;
    actions = result.actions;
  }
  return { state, actions };
}

const types = (actions: UpdateAction[]) => actions.map((a) => a.type);

/** The inputs that take release `r` from a deploy to a commit. */
function fullUpdate(r: number): Array<[UpdateInput, number?]> {
  const command = deploy(r);
  return [
    [{ type: 'deploy', command }],
    [{ type: 'manifest-checked', command, result: { ok: true, model: model(r) } }],
    [{ type: 'download-complete', bundleId: bundleId(r) }],
    [{ type: 'staged', bundleId: bundleId(r) }],
    [{ type: 'advance' }],
    [{ type: 'activated', bundleId: bundleId(r) }, T0 + 1_000],
    [{ type: 'tick' }, T0 + 31_000],
    [{ type: 'probation-judged', bundleId: bundleId(r), pass: true, reason: 'ok' }, T0 + 31_000],
  ];
}

test('a deploy walks every phase, in order, and commits only after probation', () => {
  let state = initialAgentState();
  const command = deploy(1);
  const seen: string[] = [];
  const expectations: Array<[UpdateInput, string, string[], number?]> = [
    [{ type: 'deploy', command }, 'idle', ['check-manifest']],
    [
      { type: 'manifest-checked', command, result: { ok: true, model: model(1) } },
      'downloading',
      ['download', 'report'],
    ],
    [{ type: 'download-complete', bundleId: bundleId(1) }, 'verifying', ['stage', 'report']],
    [{ type: 'staged', bundleId: bundleId(1) }, 'staged', ['advance', 'report']],
    [{ type: 'advance' }, 'activating', ['activate', 'report']],
    [{ type: 'activated', bundleId: bundleId(1) }, 'probation', ['serve', 'report'], T0 + 1_000],
    [{ type: 'tick' }, 'probation', [], T0 + 30_999],
    [{ type: 'tick' }, 'probation', ['judge-probation'], T0 + 31_000],
    [
      { type: 'probation-judged', bundleId: bundleId(1), pass: true, reason: 'ok' },
      'committed',
      ['report'],
      T0 + 31_000,
    ],
  ];
  for (const [input, phase, actionTypes, at] of expectations) {
    const result = step(state, input, at ?? T0);
    state = result.state;
    seen.push(state.job?.phase ?? state.last?.state ?? 'idle');
    assert.equal(seen.at(-1), phase, `after ${input.type}`);
    assert.deepEqual(types(result.actions), actionTypes, `actions after ${input.type}`);
    assert.equal(
      state.committed === null,
      phase !== 'committed',
      'nothing is committed before the end',
    );
  }
  assert.deepEqual(state.committed, { ref: model(1), slot: 'a', rolloutId: 'rollout-0001' });
  assert.equal(state.releaseFloor['mnist-2nn'], 1);
  // The manifest check is asked with the release floor as the installed release.
  const second = step(state, { type: 'deploy', command: deploy(2) }, T0);
  assert.deepEqual(second.actions[0], {
    type: 'check-manifest',
    command: deploy(2),
    installedRelease: 1,
  });
});

test('the second update goes to the other slot, and the first slot is unloaded after the commit', () => {
  const { state, actions } = run(initialAgentState(), [...fullUpdate(1), ...fullUpdate(2)]);
  assert.deepEqual(state.committed, { ref: model(2), slot: 'b', rolloutId: 'rollout-0001' });
  assert.deepEqual(state.previous, { ref: model(1), slot: 'a', rolloutId: 'rollout-0001' });
  assert.deepEqual(actions[0], { type: 'unload', slot: 'a' });
});

test("the committed model keeps the rollout that installed it and that deploy's drift rate, through a restart and a rollback", () => {
  const withRate = (r: number, rolloutId: string, sampleRate?: number) => {
    const command = { ...deploy(r, `cmd-deploy-${r}`, rolloutId) };
    if (sampleRate !== undefined) command.drift = { sampleRate };
    return fullUpdate(r).map(([input, at]): [UpdateInput, number?] => [
      input.type === 'deploy' || input.type === 'manifest-checked' ? { ...input, command } : input,
      at,
    ]);
  };
  const one = run(initialAgentState(), withRate(1, 'rollout-one', 0.25)).state;
  assert.deepEqual(one.committed, {
    ref: model(1),
    slot: 'a',
    rolloutId: 'rollout-one',
    driftSampleRate: 0.25,
  });
  const two = run(one, withRate(2, 'rollout-two')).state;
  assert.deepEqual(two.committed, { ref: model(2), slot: 'b', rolloutId: 'rollout-two' });
  assert.equal(run(two, [[{ type: 'boot' }]]).state.committed?.rolloutId, 'rollout-two');
  const back = step(
    two,
    { type: 'rollback-to-previous', commandId: 'cmd-rb', rolloutId: null, reason: 'bad' },
    T0,
  ).state;
  assert.deepEqual(back.committed, one.committed, 'the way back restores its own rollout and rate');
});

test('installOf: the model on probation is its deploy rollout and rate; the committed one its own; else none', () => {
  const one = run(initialAgentState(), fullUpdate(1)).state;
  const command = { ...deploy(2, 'cmd-deploy-2', 'rollout-0002'), drift: { sampleRate: 0.5 } };
  const probation = run(one, [
    ...fullUpdate(2)
      .slice(0, 6)
      .map(([input, at]): [UpdateInput, number?] => [
        input.type === 'deploy' || input.type === 'manifest-checked'
          ? { ...input, command }
          : input,
        at,
      ]),
  ]).state;
  assert.equal(probation.job?.phase, 'probation');
  assert.deepEqual(installOf(probation, bundleId(2)), {
    rolloutId: 'rollout-0002',
    driftSampleRate: 0.5,
  });
  assert.deepEqual(installOf(probation, bundleId(1)), { rolloutId: 'rollout-0001' });
  assert.deepEqual(installOf(probation, bundleId(9)), { rolloutId: null });
  const legacy: AgentState = { ...one, committed: { ref: model(1), slot: 'a' } };
  assert.deepEqual(installOf(legacy, bundleId(1)), { rolloutId: null }, 'a state file from before');
});

test('a duplicate deploy (QoS 1 redelivery) does nothing; a deploy of the committed bundle reports it installed', () => {
  const committed = run(initialAgentState(), fullUpdate(1)).state;
  const again = step(committed, { type: 'deploy', command: deploy(1) }, T0);
  assert.deepEqual(again, { state: committed, actions: [] });
  const newId = step(committed, { type: 'deploy', command: deploy(1, 'cmd-other-id') }, T0);
  assert.deepEqual(types(newId.actions), ['report']);
  assert.equal(newId.state.last?.state, 'committed');
  assert.equal(newId.state.job, null);
});

test('a refused manifest changes nothing but the report', () => {
  const command = deploy(1);
  const error = { code: 'ROLLBACK', message: 'release 1 is not above 3' };
  const { state, actions } = run(initialAgentState(), [
    [{ type: 'deploy', command }],
    [{ type: 'manifest-checked', command, result: { ok: false, error } }],
  ]);
  assert.equal(state.job, null);
  assert.equal(state.committed, null);
  assert.deepEqual(state.last?.error, error);
  assert.equal(state.last?.state, 'idle');
  assert.deepEqual(actions, [
    { type: 'report', rolloutId: 'rollout-0001', bundleId: bundleId(1), error },
  ]);
});

test('a download past its deadline is stopped, discarded and reported (THREATS 26)', () => {
  const command = deploy(2);
  const base = run(initialAgentState(), fullUpdate(1)).state;
  const { state, actions } = run(base, [
    [{ type: 'deploy', command }],
    [{ type: 'manifest-checked', command, result: { ok: true, model: model(2) } }],
    [{ type: 'tick' }, T0 + 600_000],
  ]);
  assert.equal(state.job?.phase, 'downloading', 'not yet: the deadline is inclusive');
  const late = step(state, { type: 'tick' }, T0 + 600_001);
  assert.equal(late.state.job, null);
  assert.equal(late.state.last?.error?.code, 'DOWNLOAD_DEADLINE');
  assert.deepEqual(late.state.committed, base.committed);
  assert.deepEqual(types(late.actions), ['stop-download', 'report']);
  assert.equal(actions.length, 0);
});

test('a failed probation or self-test rolls back to the committed model, which serves again', () => {
  const base = run(initialAgentState(), fullUpdate(1)).state;
  const upTo = (n: number) => fullUpdate(2).slice(0, n);
  for (const [prefix, failure] of [
    [
      upTo(6),
      { type: 'probation-judged', bundleId: bundleId(2), pass: false, reason: 'error rate 40%' },
    ],
    [
      upTo(5),
      {
        type: 'activation-failed',
        bundleId: bundleId(2),
        error: { code: 'SELF_TEST_FAILED', message: 'case 3' },
      },
    ],
  ] as const) {
    const { state, actions } = run(base, [...prefix, [failure, T0 + 40_000]]);
    assert.deepEqual(state.committed, base.committed);
    assert.equal(state.job, null);
    assert.equal(state.last?.state, 'rolled_back');
    assert.equal(state.releaseFloor['mnist-2nn'], 1, 'the floor moves only on commit');
    assert.deepEqual(actions.slice(0, 2), [
      { type: 'serve', slot: 'a', model: model(1) },
      { type: 'unload', slot: 'b' },
    ]);
  }
});

test('boot resumes each persisted phase, and rolls back from activating or probation (THREATS 19, 21)', () => {
  const base = run(initialAgentState(), fullUpdate(1)).state;
  const expected: Record<string, string[]> = {
    downloading: ['serve', 'download', 'report'],
    verifying: ['serve', 'stage', 'report'],
    staged: ['serve', 'advance', 'report'],
    activating: ['serve', 'serve', 'unload', 'report'],
    probation: ['serve', 'serve', 'unload', 'report'],
  };
  const inputs = fullUpdate(2);
  for (let n = 2; n <= 6; n++) {
    const crashed = run(base, inputs.slice(0, n)).state;
    const phase = crashed.job!.phase;
    const { state, actions } = step(crashed, { type: 'boot' }, T0 + 5_000);
    assert.deepEqual(types(actions), expected[phase], phase);
    assert.deepEqual(
      actions[0],
      { type: 'serve', slot: 'a', model: model(1) },
      `${phase}: committed serves first`,
    );
    if (phase === 'activating' || phase === 'probation') {
      assert.equal(state.job, null);
      assert.equal(state.last?.error?.code, 'CRASHED_DURING_UPDATE');
    } else {
      assert.equal(state.job?.phase, phase);
    }
    assert.deepEqual(state.committed, base.committed);
  }
});

test('cancel stops a download, rolls back a probation, and ignores other rollouts and duplicates', () => {
  const base = run(initialAgentState(), fullUpdate(1)).state;
  const cancel = (id: string, rolloutId = 'rollout-0001'): UpdateInput => ({
    type: 'cancel',
    commandId: id,
    rolloutId,
    reason: 'wave 1 failed',
  });
  const downloading = run(base, fullUpdate(2).slice(0, 2)).state;
  assert.deepEqual(
    step(downloading, cancel('cmd-c-1', 'rollout-other'), T0).state.job,
    downloading.job,
  );
  const stopped = step(downloading, cancel('cmd-c-2'), T0);
  assert.equal(stopped.state.job, null);
  assert.equal(stopped.state.last?.state, 'idle');
  assert.equal(stopped.state.last?.error?.code, 'CANCELLED');
  assert.deepEqual(step(stopped.state, cancel('cmd-c-2'), T0).actions, []);

  const probation = run(base, fullUpdate(2).slice(0, 6)).state;
  const rolled = step(probation, cancel('cmd-c-3'), T0);
  assert.equal(rolled.state.last?.state, 'rolled_back');
  assert.deepEqual(rolled.actions[0], { type: 'serve', slot: 'a', model: model(1) });
});

test('a deploy during probation is answered BUSY and changes no update', () => {
  const probation = run(initialAgentState(), [
    ...fullUpdate(1),
    ...fullUpdate(2).slice(0, 6),
  ]).state;
  const { state, actions } = step(probation, { type: 'deploy', command: deploy(3) }, T0);
  assert.deepEqual(state.job, probation.job);
  assert.equal(actions.length, 1);
  assert.equal(actions[0]!.type === 'report' && actions[0].error?.code, 'BUSY');
});

test('a newer deploy replaces a download in progress, whose partial file is discarded', () => {
  const base = run(initialAgentState(), fullUpdate(1)).state;
  const downloading = run(base, fullUpdate(2).slice(0, 2)).state;
  const command = deploy(3);
  const { state, actions } = run(downloading, [
    [{ type: 'deploy', command }],
    [{ type: 'manifest-checked', command, result: { ok: true, model: model(3) } }],
  ]);
  assert.equal(state.job?.model.release, 3);
  assert.deepEqual(actions[0], { type: 'stop-download', bundleId: bundleId(2), discard: true });
});

test('staging forgets the previous model, whose slot it overwrites', () => {
  const two = run(initialAgentState(), [...fullUpdate(1), ...fullUpdate(2)]).state;
  assert.notEqual(two.previous, null);
  const staging = run(two, fullUpdate(3).slice(0, 3)).state;
  assert.equal(staging.job?.slot, 'a');
  assert.equal(staging.previous, null);
});

test('a verified rollback makes the previous model committed again; the floor stays, so the bad release never returns', () => {
  const two = run(initialAgentState(), [...fullUpdate(1), ...fullUpdate(2)]).state;
  const input: UpdateInput = {
    type: 'rollback-to-previous',
    commandId: 'cmd-rollback-1',
    rolloutId: 'rollout-0001',
    reason: 'release 2 misclassifies',
  };
  const { state, actions } = step(two, input, T0);
  assert.deepEqual(state.committed, { ref: model(1), slot: 'a', rolloutId: 'rollout-0001' });
  assert.equal(state.releaseFloor['mnist-2nn'], 2);
  assert.deepEqual(types(actions), ['serve', 'unload', 'report']);
  assert.deepEqual(step(state, input, T0).actions, [], 'a duplicate does nothing');
  const redeploy = step(state, { type: 'deploy', command: deploy(2, 'cmd-again') }, T0);
  assert.deepEqual(redeploy.actions[0], {
    type: 'check-manifest',
    command: deploy(2, 'cmd-again'),
    installedRelease: 2,
  });
});

test('random input sequences keep every invariant', () => {
  const release = fc.integer({ min: 1, max: 4 });
  const input = fc.oneof<fc.Arbitrary<UpdateInput>[]>(
    fc.constant({ type: 'boot' }),
    fc.constant({ type: 'tick' }),
    fc.constant({ type: 'advance' }),
    release.map((r): UpdateInput => ({ type: 'deploy', command: deploy(r, `cmd-${r}-${r}`) })),
    fc.tuple(release, fc.boolean()).map(([r, ok]): UpdateInput => ({
      type: 'manifest-checked',
      command: deploy(r),
      result: ok
        ? { ok: true, model: model(r) }
        : { ok: false, error: { code: 'ROLLBACK', message: 'no' } },
    })),
    release.map((r): UpdateInput => ({ type: 'download-complete', bundleId: bundleId(r) })),
    release.map((r): UpdateInput => ({ type: 'staged', bundleId: bundleId(r) })),
    release.map((r): UpdateInput => ({ type: 'activated', bundleId: bundleId(r) })),
    fc.tuple(release, fc.boolean()).map(([r, pass]): UpdateInput => ({
      type: 'probation-judged',
      bundleId: bundleId(r),
      pass,
      reason: 'x',
    })),
    release.map((r): UpdateInput => ({
      type: 'activation-failed',
      bundleId: bundleId(r),
      error: { code: 'SELF_TEST_FAILED', message: 'x' },
    })),
    fc
      .string({ minLength: 8, maxLength: 12, unit: fc.constantFrom('a', 'b', 'c') })
      .map((id): UpdateInput => ({
        type: 'cancel',
        commandId: id,
        rolloutId: 'rollout-0001',
        reason: 'x',
      })),
  );
  fc.assert(
    fc.property(
      fc.array(fc.tuple(input, fc.integer({ min: 0, max: 700_000 })), { maxLength: 40 }),
      (inputs) => {
        let state = initialAgentState();
        for (const [one, offset] of inputs) {
          const before = state;
          const { state: after, actions } = step(state, one, T0 + offset);
          agentStateSchema.parse(after);
          // The committed model changes only by a commit that passed probation.
          if (after.committed !== before.committed && after.committed !== null) {
            assert.equal(one.type, 'probation-judged');
            assert.equal(before.job?.phase, 'probation');
          }
          // The floor never goes down.
          for (const [name, floor] of Object.entries(before.releaseFloor)) {
            assert.ok((after.releaseFloor[name] ?? 0) >= floor);
          }
          // Only the committed model, or the job's on probation, is ever served.
          for (const action of actions) {
            if (action.type !== 'serve') continue;
            const ok =
              action.model.bundleId === after.committed?.ref.bundleId ||
              (after.job?.phase === 'probation' &&
                action.model.bundleId === after.job.model.bundleId);
            assert.ok(ok, `served ${action.model.bundleId} in ${JSON.stringify(after.job?.phase)}`);
          }
          // A job never targets the slot of the committed model.
          if (after.job && after.committed) assert.notEqual(after.job.slot, after.committed.slot);
          state = after;
        }
      },
    ),
    { numRuns: 400 },
  );
});
