/**
 * Taking part in a federated round: every refusal of `admitFlRound`
 * (duplicate command or round, busy) and `checkFlRound` (deadline, base not
 * committed or not serving, no training field, too few samples), in order,
 * and the ledger's bounds.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BundleModelRef, FlTrainMessage, ManifestTraining } from '@fleet/protocol';
import { NOW_MS } from '@fleet/protocol/testing';
import { updateJob } from '../__fixtures__/update-job.ts';
import {
  admitFlRound,
  checkFlRound,
  emptyFlLedger,
  finishFlRound,
  flFailureReason,
  RECENT_FL_ROUNDS,
  type FlAdmission,
  type FlRoundFacts,
  type FlRoundLedger,
} from './fl-participation.ts';
import { initialAgentState, type AgentState, type UpdateJob } from './update-state.ts';

const base: BundleModelRef = {
  name: 'fl-toy',
  version: '1.3.0',
  release: 3,
  bundleId: 'a'.repeat(64),
};
const other: BundleModelRef = { ...base, version: '1.4.0', release: 4, bundleId: 'b'.repeat(64) };

const command = (roundId = 'round-0001', id = 'cmd-0001'): FlTrainMessage => ({
  type: 'fl-train',
  id,
  schemaVersion: 1,
  ts: new Date(NOW_MS).toISOString(),
  roundId,
  model: base,
  config: {
    epochs: 1,
    batchSize: 10,
    learningRate: 0.05,
    proxMu: 0,
    clipNorm: 5,
    minSamples: 20,
    maxSamples: 600,
    encoding: 'int8',
    seed: 42,
  },
  deadline: new Date(NOW_MS + 60_000).toISOString(),
});

const training: ManifestTraining = {
  architecture: {
    kind: 'dense',
    inputSize: 4,
    layers: [{ units: 3, activation: 'linear' }],
    softmaxOutput: true,
  },
  weightsPart: 'weights.ftns',
};

const committed = (ref = base): AgentState => ({
  ...initialAgentState(),
  committed: { ref, slot: 'a' },
});

const job = (phase: UpdateJob['phase']): UpdateJob =>
  updateJob(phase, {
    rolloutId: 'rollout-0002',
    commandId: 'cmd-deploy-2',
    model: other,
    startedAtMs: NOW_MS,
    deadlineMs: NOW_MS + 60_000,
  });

const facts = (overrides: Partial<FlRoundFacts> = {}): FlRoundFacts => ({
  command: command(),
  nowMs: NOW_MS,
  state: committed(),
  training,
  sampleCount: 20,
  ...overrides,
});

/** The ledger of an accepted admission (fails the test otherwise). */
function accepted(admission: FlAdmission): { ledger: FlRoundLedger } {
  assert.ok(admission.kind === 'accept', `refused: ${admission.kind}`);
  return admission;
}

describe('admitFlRound', () => {
  it('accepts a first round and marks it active', () => {
    const admission = admitFlRound(emptyFlLedger(), command());
    assert.equal(admission.kind, 'accept');
    assert.equal(admission.ledger.active, 'round-0001');
  });

  it('ignores a redelivered command and another command for a round taken, active or finished', () => {
    const { ledger } = accepted(admitFlRound(emptyFlLedger(), command()));
    const redelivered = admitFlRound(ledger, command());
    assert.equal(redelivered.kind, 'ignore');
    assert.equal(redelivered.refusal.code, 'duplicate');
    assert.equal(admitFlRound(ledger, command('round-0001', 'cmd-0002')).kind, 'ignore');
    const finished = finishFlRound(ledger, 'round-0001');
    assert.equal(finished.active, null);
    assert.equal(admitFlRound(finished, command('round-0001', 'cmd-0003')).kind, 'ignore');
    assert.equal(admitFlRound(finished, command('round-0002', 'cmd-0001')).kind, 'ignore');
    assert.equal(admitFlRound(finished, command('round-0002', 'cmd-0004')).kind, 'accept');
  });

  it('refuses a second round while one trains (busy), once: its redelivery is a duplicate', () => {
    const first = admitFlRound(emptyFlLedger(), command());
    const busy = admitFlRound(
      first.kind === 'accept' ? first.ledger : emptyFlLedger(),
      command('round-0002', 'cmd-0002'),
    );
    assert.equal(busy.kind, 'refuse');
    assert.equal(busy.refusal.code, 'busy');
    assert.match(busy.refusal.message, /round-0001/);
    const ledger = busy.kind === 'refuse' ? busy.ledger : emptyFlLedger();
    assert.equal(ledger.active, 'round-0001', 'the training round stays active');
    assert.equal(admitFlRound(ledger, command('round-0002', 'cmd-0003')).kind, 'ignore');
  });

  it('remembers a bounded number of rounds and command ids', () => {
    let ledger = emptyFlLedger();
    for (let i = 0; i < RECENT_FL_ROUNDS + 10; i++) {
      const admission = admitFlRound(ledger, command(`round-${1000 + i}`, `cmd-${1000 + i}`));
      assert.equal(admission.kind, 'accept');
      ledger = finishFlRound(admission.ledger, `round-${1000 + i}`);
    }
    assert.equal(ledger.roundIds.length, RECENT_FL_ROUNDS);
    assert.equal(ledger.commandIds.length, RECENT_FL_ROUNDS);
    assert.equal(
      admitFlRound(ledger, command('round-1000', 'cmd-9999')).kind,
      'accept',
      'forgotten',
    );
  });

  it('finishing another round than the active one changes nothing', () => {
    const { ledger } = accepted(admitFlRound(emptyFlLedger(), command()));
    assert.equal(finishFlRound(ledger, 'round-0009'), ledger);
  });
});

describe('checkFlRound', () => {
  const table: Array<[string, Partial<FlRoundFacts>, string | null, RegExp?]> = [
    ['all conditions hold', {}, null],
    ['the deadline has passed', { nowMs: NOW_MS + 60_000 }, 'deadline', /has passed/],
    ['no model is committed', { state: initialAgentState() }, 'base-not-serving', /no model/],
    ['another model is committed', { state: committed(other) }, 'base-not-serving', /1\.4\.0/],
    [
      'the same bundle id under another release',
      { state: committed({ ...base, release: 9 }) },
      'base-not-serving',
    ],
    [
      'an update is on probation (its model serves)',
      { state: { ...committed(), job: job('probation') } },
      'base-not-serving',
      /on probation/,
    ],
    [
      'an update is activating',
      { state: { ...committed(), job: job('activating') } },
      'base-not-serving',
      /activating/,
    ],
    ['the bundle has no training field', { training: undefined }, 'no-training'],
    [
      'too few samples',
      { sampleCount: 19 },
      'not-enough-samples',
      /19 labelled samples of width 4; the round needs 20/,
    ],
    // Order: the first failing condition decides.
    ['late and too few samples', { nowMs: NOW_MS + 61_000, sampleCount: 0 }, 'deadline'],
    [
      'not serving and no training',
      { state: committed(other), training: undefined },
      'base-not-serving',
    ],
  ];
  for (const [what, overrides, code, message] of table) {
    it(`${what}: ${code ?? 'accepted'}`, () => {
      const refusal = checkFlRound(facts(overrides));
      assert.equal(refusal?.code ?? null, code);
      if (message) assert.match(refusal!.message, message);
    });
  }

  it('a download in progress does not stop a round: the committed model still serves', () => {
    assert.equal(checkFlRound(facts({ state: { ...committed(), job: job('downloading') } })), null);
  });

  it('a failure reason starts with its code', () => {
    const reason = flFailureReason({ code: 'not-enough-samples', message: 'x'.repeat(600) });
    assert.match(reason, /^not-enough-samples: x/);
    assert.equal(reason.length, 500);
  });
});
