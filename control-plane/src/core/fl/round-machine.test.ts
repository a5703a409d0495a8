import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isFleetError } from '@fleet/protocol';
import { BASE, ROUND, T0, devices, startedRound, update } from './__fixtures__/round-harness.ts';
import { buildRoundConfig } from './round-config.ts';
import { createRound, stepRound } from './round-machine.ts';
import type { RoundAction, RoundEvent, RoundSnapshot, RoundStep } from './round-types.ts';

const kinds = (actions: RoundAction[]) =>
  actions.map((a) => (a.type === 'audit' ? `audit:${a.kind}` : a.type));
const conflict = (e: unknown) => isFleetError(e, 'CONFLICT');

/** Applies events in order at `nowMs`, returning the last step and all actions. */
function run(
  state: RoundSnapshot,
  events: RoundEvent[],
  nowMs = T0 + 1000,
): RoundStep & { all: RoundAction[] } {
  const all: RoundAction[] = [];
  let step: RoundStep = { state, actions: [] };
  for (const e of events) {
    step = stepRound(step.state, e, nowMs);
    all.push(...step.actions);
  }
  return { ...step, all };
}

function collected(n = 3): RoundSnapshot {
  const { state } = startedRound(n);
  return run(
    state,
    state.selected.map((id) => update(id)),
  ).state;
}

describe('round machine: start', () => {
  it('configuring -> collecting: selects, sets the deadline, sends training', () => {
    const { state, actions } = startedRound(20, { fraction: 0.1 });
    assert.equal(state.status, 'collecting');
    assert.equal(state.selected.length, 2);
    assert.equal(state.eligibleCount, 20);
    assert.equal(state.deadlineAtMs, T0 + 60_000);
    assert.deepEqual(kinds(actions), ['audit:round-started', 'send-train']);
    const send = actions[1] as Extract<RoundAction, { type: 'send-train' }>;
    assert.deepEqual(send.deviceIds, state.selected);
    assert.equal(send.baseBundleId, BASE);
    assert.equal(send.deadlineMs, T0 + 60_000);
    assert.deepEqual(
      {
        e: send.config.epochs,
        b: send.config.batchSize,
        lr: send.config.learningRate,
        clip: send.config.clipNorm,
      },
      { e: 1, b: 10, lr: 0.1, clip: 1 },
    );
    assert.ok(Number.isInteger(send.config.seed));
  });

  it('the same seed selects the same devices', () => {
    assert.deepEqual(
      startedRound(50, { fraction: 0.2 }).state.selected,
      startedRound(50, { fraction: 0.2 }).state.selected,
    );
  });

  it('fails with a reason when fewer are eligible than minClients', () => {
    const { state, actions } = startedRound(1);
    assert.equal(state.status, 'failed');
    assert.match(state.reason!, /1 eligible device\(s\), fewer than minClients 2/);
    assert.deepEqual(kinds(actions), ['audit:round-failed']);
  });

  it('refuses a second start and does not mutate its input', () => {
    const { state } = startedRound(3);
    const copy = structuredClone(state);
    assert.throws(() => stepRound(state, { type: 'start', devices: devices(3) }, T0), conflict);
    stepRound(state, update(state.selected[0]!), T0 + 1);
    assert.deepEqual(state, copy);
  });
});

describe('round machine: collection', () => {
  it('closes to aggregating once every selected device answered', () => {
    const { state } = startedRound(3);
    const [a, b, c] = state.selected as [string, string, string];
    const r = run(state, [
      update(a, { sampleCount: 10 }),
      update(b, { status: 'failed', failureReason: 'OOM' }),
      update(c, { sampleCount: 30 }),
    ]);
    assert.equal(r.state.status, 'aggregating');
    assert.deepEqual(r.state.stragglers, []);
    assert.deepEqual(kinds(r.all), ['audit:device-failed', 'audit:collection-closed', 'aggregate']);
    const agg = r.all.at(-1) as Extract<RoundAction, { type: 'aggregate' }>;
    assert.deepEqual(
      agg.updates.map((u) => [u.deviceId, u.sampleCount]),
      [
        [a, 10],
        [c, 30],
      ],
    );
    assert.deepEqual(agg.strategy, { kind: 'fedavg' });
    // A failed device is a failure, not a rejection.
    assert.equal(
      Object.values(r.state.rejections).reduce((s, n) => s + n, 0),
      0,
    );
    assert.deepEqual(
      r.state.answers.map((x) => x.outcome),
      ['accepted', 'failed', 'accepted'],
    );
  });

  it('at the deadline with the minimum met: aggregates and lists stragglers', () => {
    const { state } = startedRound(4);
    const [a, b, c, d] = state.selected as [string, string, string, string];
    const mid = run(state, [update(a), update(b)]);
    assert.equal(mid.state.status, 'collecting');
    const before = stepRound(mid.state, { type: 'deadline-tick' }, T0 + 59_999);
    assert.equal(before.state.status, 'collecting');
    assert.deepEqual(before.actions, []);
    const r = stepRound(mid.state, { type: 'deadline-tick' }, T0 + 60_000);
    assert.equal(r.state.status, 'aggregating');
    assert.deepEqual([...r.state.stragglers].sort(), [c, d].sort());
    assert.match(
      (r.actions[0] as { reason: string }).reason,
      /deadline passed: 2 accepted of 4 selected .*2 straggler\(s\)/,
    );
  });

  it('at the deadline without the minimum: fails naming the counts', () => {
    const { state } = startedRound(4, { minClients: 3 });
    const [a, b] = state.selected as [string, string];
    const mid = run(state, [
      update(a),
      update(b, { decoded: { norm: 9, finite: true, quantizationErrorBound: 0 } }),
    ]);
    const r = stepRound(mid.state, { type: 'deadline-tick' }, T0 + 60_000);
    assert.equal(r.state.status, 'failed');
    assert.match(
      r.state.reason!,
      /deadline passed: 1 accepted of 4 selected \(0 failed, 1 rejected, 2 straggler\(s\): .*\), minimum 3/,
    );
    assert.equal(r.state.stragglers.length, 2);
  });

  it('fails early when everyone answered but too few were accepted', () => {
    const { state } = startedRound(2);
    const [a, b] = state.selected as [string, string];
    const r = run(state, [update(a), update(b, { status: 'failed' })]);
    assert.equal(r.state.status, 'failed');
    assert.match(
      r.state.reason!,
      /all selected devices answered: 1 accepted of 2 selected \(1 failed/,
    );
  });

  it('an update arriving after the deadline is late and the round closes', () => {
    const { state } = startedRound(3);
    const [a, b, c] = state.selected as [string, string, string];
    const mid = run(state, [update(a), update(b)]);
    const r = stepRound(mid.state, update(c), T0 + 60_001);
    assert.equal(r.state.rejections.late, 1);
    assert.equal(r.state.status, 'aggregating');
    assert.deepEqual(r.state.stragglers, [c]);
    // And once aggregating, a straggler's update is still counted late.
    assert.equal(stepRound(r.state, update(c), T0 + 70_000).state.rejections.late, 2);
  });
});

describe('round machine: each rejection reason', () => {
  const cases: [
    string,
    (s: RoundSnapshot) => RoundEvent[],
    keyof RoundSnapshot['rejections'],
    boolean,
  ][] = [
    ['wrong-round', (s) => [update(s.selected[0]!, { roundId: 'round-2' })], 'wrong-round', false],
    [
      'wrong-base',
      (s) => [update(s.selected[0]!, { baseBundleId: 'bundle-other' })],
      'wrong-base',
      true,
    ],
    ['not-selected', () => [update('dev-stranger')], 'not-selected', false],
    [
      'replayed',
      (s) => {
        const u = update(s.selected[0]!);
        return [u, { ...u, deviceId: s.selected[1]! }];
      },
      'replayed',
      false,
    ],
    ['duplicate', (s) => [update(s.selected[0]!), update(s.selected[0]!)], 'duplicate', false],
    [
      'non-finite',
      (s) => [
        update(s.selected[0]!, {
          decoded: { norm: NaN, finite: false, quantizationErrorBound: 0 },
        }),
      ],
      'non-finite',
      true,
    ],
    [
      'over-clip',
      (s) => [
        update(s.selected[0]!, {
          decoded: { norm: 1.5, finite: true, quantizationErrorBound: 0.1 },
        }),
      ],
      'over-clip',
      true,
    ],
    [
      'malformed: undecodable',
      (s) => [update(s.selected[0]!, { decoded: null, malformedReason: 'sha256 mismatch' })],
      'malformed',
      true,
    ],
    [
      'malformed: sample count over maxSamples',
      (s) => [update(s.selected[0]!, { sampleCount: 10_000 })],
      'malformed',
      true,
    ],
    [
      'malformed: zero samples',
      (s) => [update(s.selected[0]!, { sampleCount: 0 })],
      'malformed',
      true,
    ],
  ];
  for (const [name, events, reason, usesAnswer] of cases) {
    it(`${name} is counted as ${reason}${usesAnswer ? " and uses the device's answer" : ''}`, () => {
      const { state } = startedRound(4);
      const r = run(state, events(state));
      assert.equal(r.state.rejections[reason], 1);
      const total = Object.values(r.state.rejections).reduce((s, n) => s + n, 0);
      assert.equal(total, 1, 'exactly one rejection');
      const rejectedAnswers = r.state.answers.filter((a) => a.outcome === 'rejected');
      assert.equal(rejectedAnswers.length, usesAnswer ? 1 : 0);
      const audit = r.all.find((a) => a.type === 'audit' && a.kind === 'update-rejected');
      assert.match((audit as { reason: string }).reason, new RegExp(`: ${reason} \\(`));
      assert.equal(r.state.status, 'collecting');
    });
  }

  it('accepts an int8 update within the clip bound plus its rounding error', () => {
    const { state } = startedRound(4);
    const r = stepRound(
      state,
      update(state.selected[0]!, {
        decoded: { norm: 1.05, finite: true, quantizationErrorBound: 0.06 },
      }),
      T0 + 1,
    );
    assert.equal(r.state.answers[0]!.outcome, 'accepted');
  });

  it('an update before the start is not-selected; one for another round after the end is wrong-round', () => {
    const round = createRound({
      roundId: ROUND,
      baseBundleId: BASE,
      config: buildRoundConfig({}),
      promotion: { riskTier: 'low', autoPromote: true },
      nowMs: T0,
    });
    assert.equal(stepRound(round, update('dev-00'), T0).state.rejections['not-selected'], 1);
    const done = stepRound(startedRound(1).state, update('dev-00', { roundId: 'round-9' }), T0);
    assert.equal(done.state.rejections['wrong-round'], 1);
  });
});

describe('round machine: aggregation, evaluation, promotion', () => {
  it('aggregating -> evaluating -> promoted (low risk, auto): builds the candidate, then the rollout', () => {
    const agg = stepRound(
      collected(),
      { type: 'aggregated', candidateId: 'cand-1', notes: ['fedavg over 3'] },
      T0 + 2000,
    );
    assert.equal(agg.state.status, 'evaluating');
    assert.deepEqual(kinds(agg.actions), ['audit:aggregated', 'evaluate']);
    const ev = stepRound(
      agg.state,
      { type: 'evaluated', candidateAccuracy: 0.93, championAccuracy: 0.9 },
      T0 + 3000,
    );
    assert.equal(ev.state.status, 'promoted');
    assert.equal(ev.state.decision, 'promote');
    assert.deepEqual(kinds(ev.actions), [
      'audit:evaluated',
      'build-candidate',
      'audit:promoted',
      'start-rollout',
    ]);
    const build = ev.actions[1] as Extract<RoundAction, { type: 'build-candidate' }>;
    assert.equal(build.lineage.participants.length, 3);
    assert.equal(build.lineage.baseBundleId, BASE);
    assert.deepEqual(build.lineage.evaluation, { candidateAccuracy: 0.93, championAccuracy: 0.9 });
  });

  it('high risk -> awaiting-approval -> approved -> promoted', () => {
    const { state } = startedRound(2, {}, { riskTier: 'high', autoPromote: true });
    let s = run(
      state,
      state.selected.map((id) => update(id)),
    ).state;
    s = stepRound(s, { type: 'aggregated', candidateId: 'cand-2' }, T0 + 2000).state;
    const ev = stepRound(
      s,
      { type: 'evaluated', candidateAccuracy: 0.95, championAccuracy: 0.9 },
      T0 + 3000,
    );
    assert.equal(ev.state.status, 'awaiting-approval');
    assert.deepEqual(kinds(ev.actions), [
      'audit:evaluated',
      'build-candidate',
      'audit:awaiting-approval',
    ]);
    const ok = stepRound(ev.state, { type: 'approved', actor: 'alice' }, T0 + 4000);
    assert.equal(ok.state.status, 'promoted');
    assert.deepEqual(kinds(ok.actions), ['audit:approved', 'audit:promoted', 'start-rollout']);
    assert.throws(() => stepRound(ok.state, { type: 'approved', actor: 'alice' }, T0), conflict);
  });

  it('not better by the margin -> rejected, nothing built', () => {
    const s = stepRound(collected(), { type: 'aggregated', candidateId: 'c' }, T0).state;
    const ev = stepRound(
      s,
      { type: 'evaluated', candidateAccuracy: 0.902, championAccuracy: 0.9 },
      T0,
    );
    assert.equal(ev.state.status, 'rejected');
    assert.deepEqual(kinds(ev.actions), ['audit:evaluated', 'audit:rejected']);
  });

  it('a strategy that refuses the updates fails the round', () => {
    const r = stepRound(
      collected(),
      { type: 'aggregated', candidateId: 'c', error: 'tensor mismatch' },
      T0,
    );
    assert.equal(r.state.status, 'failed');
    assert.match(r.state.reason!, /aggregation refused: tensor mismatch/);
  });

  it('events in the wrong status are CONFLICT and change nothing', () => {
    const { state } = startedRound(3);
    assert.throws(() => stepRound(state, { type: 'aggregated', candidateId: 'c' }, T0), conflict);
    assert.throws(
      () => stepRound(state, { type: 'evaluated', candidateAccuracy: 1, championAccuracy: 0 }, T0),
      conflict,
    );
    assert.throws(() => stepRound(state, { type: 'approved', actor: 'a' }, T0), conflict);
    assert.deepEqual(stepRound(collected(), { type: 'deadline-tick' }, T0 + 10 ** 9).actions, []);
  });
});

describe('round machine: cancel', () => {
  it('cancels from every non-final status, and not after', () => {
    const configuring = createRound({
      roundId: ROUND,
      baseBundleId: BASE,
      config: buildRoundConfig({}),
      promotion: { riskTier: 'high', autoPromote: false },
      nowMs: T0,
    });
    const collecting = startedRound(3).state;
    const aggregating = collected();
    const evaluating = stepRound(aggregating, { type: 'aggregated', candidateId: 'c' }, T0).state;
    const awaiting = stepRound(
      stepRound(
        run(
          startedRound(2, {}, { riskTier: 'high', autoPromote: false }).state,
          ['dev-00', 'dev-01'].map((d) => update(d)),
        ).state,
        { type: 'aggregated', candidateId: 'c' },
        T0,
      ).state,
      { type: 'evaluated', candidateAccuracy: 0.99, championAccuracy: 0.5 },
      T0,
    ).state;
    assert.equal(awaiting.status, 'awaiting-approval');
    for (const s of [configuring, collecting, aggregating, evaluating, awaiting]) {
      const r = stepRound(s, { type: 'cancel', actor: 'bob', reason: 'wrong data' }, T0 + 5);
      assert.equal(r.state.status, 'cancelled', `from ${s.status}`);
      assert.equal(r.state.reason, 'cancelled by bob: wrong data');
      assert.deepEqual(kinds(r.actions), ['audit:cancelled']);
      assert.throws(
        () => stepRound(r.state, { type: 'cancel', actor: 'bob', reason: 'again' }, T0),
        conflict,
      );
    }
  });
});
