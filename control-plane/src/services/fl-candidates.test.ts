/**
 * The candidate pipeline on an in-memory control plane with a tiny dense
 * model: base weights from the base bundle's training part, evaluation of the
 * better weights against the champion in onnxruntime, the signed candidate
 * registered through the normal upload with its lineage, approval starting a
 * rollout, and refusals that register nothing.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isFleetError, parseManifest, type NamedTensor } from '@fleet/protocol';
import { startTestControlPlane, type TestControlPlane } from '../__fixtures__/control-plane.ts';
import {
  tinyBaseBundle,
  tinyEvalData,
  tinyKeyDirectory,
  tinyWeights,
} from '../__fixtures__/fl-candidate-fixture.ts';
import { createGovernanceStore } from '../adapters/db/governance-store.ts';
import { createModelStore } from '../adapters/db/model-store.ts';
import { defaultRoundConfig } from '../core/fl/round-config.ts';
import type { CandidateLineage } from '../core/fl/candidate-port.ts';
import { createFlCandidates, type FlCandidates } from './fl-candidates.ts';
import { nextCandidateVersion } from './fl-candidate-manifest.ts';

let t: TestControlPlane;
let keys: { dir: string; rootBytes: Uint8Array };
let baseBundleId: string;
let rounds: Array<{ roundId: string; actor: string }>;

function candidates(signingKeysDir: string | undefined): FlCandidates {
  const port: FlCandidates = createFlCandidates({
    models: createModelStore(t.cp.database.db),
    registry: t.cp.models,
    blobs: t.cp.blobs,
    store: createGovernanceStore(t.cp.database.db),
    evalSets: t.cp.evalSets,
    policies: t.cp.modelPolicies,
    rollouts: t.cp.rollouts,
    signingKeysDir,
    // What the rounds service does on approval: the round is promoted and starts the rollout.
    approveRound: async (roundId, actor) => {
      rounds.push({ roundId, actor });
      const bundleId = (await port.approvals('tiny')).find((a) => a.roundId === roundId)!.bundleId;
      await port.startRollout({
        roundId,
        bundleId,
        template: { target: 'tag:site=lab', bake: '1m' },
        actor: 'system',
      });
    },
    nowMs: () => t.clock.nowMs,
  });
  return port;
}

function lineage(roundId: string): CandidateLineage {
  return {
    roundId,
    baseBundleId,
    strategy: { kind: 'trimmed-mean', beta: 0.1 },
    config: { ...defaultRoundConfig, strategy: { kind: 'trimmed-mean', beta: 0.1 } },
    participants: [
      { deviceId: 'dev-1', sampleCount: 40 },
      { deviceId: 'dev-2', sampleCount: 60 },
    ],
    evaluation: { candidateAccuracy: 1, championAccuracy: 0.33 },
  };
}

async function evaluated(port: FlCandidates, roundId: string, weights: NamedTensor[]) {
  return port.evaluate({
    roundId,
    candidateId: `${roundId}-candidate`,
    baseBundleId,
    weights,
    evalSet: 'tiny-holdout',
  });
}

before(async () => {
  t = await startTestControlPlane();
  keys = await tinyKeyDirectory();
  await t.cp.models.installRoot(keys.rootBytes, 'system');
  baseBundleId = (await t.cp.models.upload(await tinyBaseBundle(keys.dir), 'system')).bundleId;
  await t.cp.evalSets.put('tiny-holdout', tinyEvalData(90, 11).bytes, 'system');
  await t.enrolDevice({ id: 'lab-1', tags: { site: 'lab' } });
  rounds = [];
});
after(async () => {
  await t.close();
  await rm(dirname(keys.dir), { recursive: true, force: true });
});

describe('federated candidates', () => {
  it('reads the base weights from the training part (int8 dequantized, the swapped model)', async () => {
    const { tensors } = await candidates(keys.dir).baseWeights(baseBundleId);
    assert.deepEqual(
      tensors.map((x) => [x.name, x.dims]),
      [
        ['dense_0/kernel', [3, 6]],
        ['dense_0/bias', [6]],
        ['dense_1/kernel', [6, 3]],
        ['dense_1/bias', [3]],
      ],
    );
    const swapped = tinyWeights('swapped')[2]!.values;
    tensors[2]!.values.forEach((v, i) => assert.ok(Math.abs(v - swapped[i]!) < 1e-6));
  });

  it('scores the better weights above the champion, and equal weights equal', async () => {
    const port = candidates(keys.dir);
    const better = await evaluated(port, 'round-eval', tinyWeights('good'));
    assert.equal(better.candidateAccuracy, 1);
    assert.ok(better.championAccuracy > 0.2 && better.championAccuracy < 0.5);
    const same = await evaluated(port, 'round-same', tinyWeights('swapped'));
    assert.equal(same.candidateAccuracy, same.championAccuracy);
  });

  it('refuses to build without signing keys (FL_NO_SIGNING_KEYS) and registers nothing', async () => {
    const before = await t.cp.models.lineage('tiny', 1);
    for (const dir of [undefined, `${keys.dir}-absent`]) {
      const port = candidates(dir);
      await evaluated(port, 'round-nokeys', tinyWeights('good'));
      await assert.rejects(
        port.build({
          roundId: 'round-nokeys',
          candidateId: 'round-nokeys-candidate',
          lineage: lineage('round-nokeys'),
          actor: 'system',
        }),
        (e: unknown) => isFleetError(e) && e.code === 'FL_NO_SIGNING_KEYS',
      );
    }
    const versions = await createModelStore(t.cp.database.db).listVersions('tiny');
    assert.equal(versions.length, 1);
    assert.equal(before.length, 1);
  });

  it('builds, signs and registers the candidate with its lineage; a repeat returns the same', async () => {
    const port = candidates(keys.dir);
    await evaluated(port, 'round-1', tinyWeights('good'));
    const input = {
      roundId: 'round-1',
      candidateId: 'round-1-candidate',
      lineage: lineage('round-1'),
      actor: 'system',
    };
    const built = await port.build(input);
    assert.deepEqual(
      { name: built.name, version: built.version, release: built.release },
      { name: 'tiny', version: '1.1.0', release: 2 },
    );
    const row = (await createModelStore(t.cp.database.db).getVersion('tiny', 2))!;
    assert.equal(row.parentRelease, 1);
    assert.equal(row.signedBy.length, 2, 'both bundle keys signed (threshold 2)');
    const manifest = parseManifest(row.manifest);
    assert.deepEqual(manifest.lineage.producer, {
      kind: 'federated-round',
      roundId: 'round-1',
      participants: 2,
    });
    assert.deepEqual(manifest.lineage.parent, { version: '1.0.0', release: 1 });
    assert.equal(manifest.lineage.hyperparameters?.['strategy'], 'trimmed-mean');
    assert.equal(manifest.lineage.hyperparameters?.['totalSamples'], 100);
    assert.ok(manifest.training, 'the candidate carries its training part for the next round');
    // The candidate's own training weights are the good model.
    const next = await port.baseWeights(built.bundleId);
    assert.ok(Math.abs(next.tensors[2]!.values[0]! - 1) < 1e-6);

    const audit = (await t.cp.audit.list()).find((e) => e.action === 'fl.candidate-registered');
    const after = audit?.after as { lineage: CandidateLineage };
    assert.deepEqual(after.lineage.participants, lineage('round-1').participants);
    const [approval] = await port.approvals('tiny');
    assert.equal(approval?.status, 'pending');

    assert.deepEqual(await port.build(input), built, 'idempotent per candidate');
    // After a restart (a new instance, no memory) too.
    assert.deepEqual(await candidates(keys.dir).build(input), built);
    assert.equal((await createModelStore(t.cp.database.db).listVersions('tiny')).length, 2);
  });

  it('approval records the approver and starts the rollout with the template', async () => {
    const port = candidates(keys.dir);
    const approval = await port.approve('tiny', 2, 'token:approver-1');
    assert.equal(approval.status, 'approved');
    assert.equal(approval.decidedBy, 'token:approver-1');
    assert.deepEqual(rounds, [{ roundId: 'round-1', actor: 'token:approver-1' }]);
    assert.ok(approval.rolloutId);
    const rollout = await t.cp.rollouts.get(approval.rolloutId);
    assert.equal(rollout.rollout.model.version, '1.1.0');
    assert.deepEqual(
      rollout.rollout.policy.waves,
      [{ percent: 10 }, { percent: 50 }, { percent: 100 }],
      'the default candidate waves',
    );
    assert.equal(rollout.rollout.policy.bakeMs, 60_000);
    await assert.rejects(port.approve('tiny', 2, 'token:approver-1'), /approved already/);
    await assert.rejects(port.approve('tiny', 1, 'token:approver-1'), /not a federated candidate/);
  });

  it('an auto-promoted candidate is approved by the system when its rollout starts', async () => {
    const port = candidates(keys.dir);
    await evaluated(port, 'round-2', tinyWeights('good'));
    const built = await port.build({
      roundId: 'round-2',
      candidateId: 'round-2-candidate',
      lineage: lineage('round-2'),
      actor: 'system',
    });
    assert.equal(built.version, '1.2.0');
    const { rolloutId } = await port.startRollout({
      roundId: 'round-2',
      bundleId: built.bundleId,
      template: { target: 'tag:site=lab' },
      actor: 'system',
    });
    const again = await port.startRollout({
      roundId: 'round-2',
      bundleId: built.bundleId,
      template: { target: 'tag:site=lab' },
      actor: 'system',
    });
    assert.equal(again.rolloutId, rolloutId, 'one rollout per candidate');
    const approval = (await port.approvals('tiny')).find((a) => a.roundId === 'round-2');
    assert.equal(approval?.status, 'approved');
    assert.equal(approval?.decidedBy, 'system');
  });

  it('next candidate versions: a minor above every registered one of the major', () => {
    assert.equal(nextCandidateVersion('1.2.0', ['1.0.0', '1.2.0']), '1.3.0');
    assert.equal(nextCandidateVersion('1.2.0', ['1.4.1', '2.0.0']), '1.5.0');
    assert.equal(nextCandidateVersion('2.0.3', []), '2.1.0');
  });
});
