/**
 * The candidate pipeline of federated rounds (the `CandidatePort` of
 * core/fl/candidate-port.ts) and the approval of waiting candidates:
 *
 *   baseWeights   the base bundle's `weights.ftns` (its hash covered by the
 *                 bundle id, read as the factory's `readTrainingWeights` does)
 *   evaluate      candidate weights -> float ONNX -> int8, exactly the steps
 *                 the factory ships (encode, decode, quantize, encode); the
 *                 int8 candidate and the base's shipped model.onnx are scored
 *                 on the named held-out set in onnxruntime. The weights go to
 *                 the blob store and a `fl_candidates` row, so a restarted
 *                 control plane can still build what it evaluated.
 *   build         signed with the bundle keys of `fl.signingKeysDir`
 *                 (FL_NO_SIGNING_KEYS without them, before anything is
 *                 built), the factory's `buildDenseBundle` (same accuracy
 *                 budget, golden vectors, training part, drift profile when
 *                 the base has one); the shipped model.onnx must be the one
 *                 evaluated; then `ModelRegistry.upload`, so the candidate
 *                 passes the verification of any upload (THREATS 1-4, 36),
 *                 and a pending approval with the full lineage, audited
 *   startRollout  a normal rollout (RolloutService) from the round's template
 *   approve       an approver's decision on a pending candidate, then the
 *                 round is told (FlRounds.approve), which starts the rollout
 *
 * Every step is idempotent per candidate (the round may repeat one after a
 * restart): a built candidate is found by its row, or by a registered
 * version whose signed lineage names the round.
 */
import {
  decodeTensorSet,
  encodeTensorSet,
  parseManifest,
  sha256Hex,
  type Manifest,
  type NamedTensor,
} from '@fleet/protocol';
import {
  buildDenseBundle,
  denseArchitectureFromTensors,
  readTrainingWeights,
} from '@fleet/bundles';
import { controlPlaneError } from '../core/errors.ts';
import type { BlobStore } from '../core/models/blob-store.ts';
import type { CandidatePort } from '../core/fl/candidate-port.ts';
import type { Actor } from '../adapters/db/actor.ts';
import type { ModelStore, ModelVersionRow } from '../adapters/db/model-store.ts';
import type { ApprovalRow, GovernanceStore } from '../adapters/db/governance-store.ts';
import { buildPolicy, type PolicyInput } from '../core/rollouts/rollout-spec.ts';
import { buildSelector, parseSelector } from '../core/rollouts/target-selector.ts';
import type { ModelRegistry } from './model-registry.ts';
import type { RolloutService } from './rollout-service.ts';
import type { EvalSets } from './eval-sets.ts';
import type { ModelPolicies } from './model-policies.ts';
import {
  candidateManifestInput,
  candidateManifestLineage,
  driftRequestsOf,
  nextCandidateVersion,
} from './fl-candidate-manifest.ts';
import {
  BUILD_PORTS,
  accuracyOf,
  bundleSigners,
  readParts,
  shippedInt8,
  shippedModelSha256,
} from './fl-candidate-artifacts.ts';

/** Waves of a candidate's rollout when the round's template names none. */
export const DEFAULT_CANDIDATE_WAVES = '10%,50%,100%';

export interface FlCandidates extends CandidatePort {
  /**
   * An approver approves the pending candidate `name` release `release`: the
   * decision is recorded, then `approveRound` (the rounds service) moves the
   * round on, which starts the rollout. If that fails the approval is put
   * back to pending and the error thrown. NOT_FOUND: no such version or not a
   * candidate; CONFLICT: decided already.
   */
  approve(name: string, release: number, actor: Actor): Promise<ApprovalRow>;
  approvals(name: string): Promise<ApprovalRow[]>;
}

export interface FlCandidatesOptions {
  models: ModelStore;
  registry: ModelRegistry;
  blobs: BlobStore;
  store: GovernanceStore;
  evalSets: EvalSets;
  policies: ModelPolicies;
  rollouts: Pick<RolloutService, 'create'>;
  /** `fl.signingKeysDir`. */
  signingKeysDir: string | undefined;
  /** The rounds service's approve (bound late: it is built with this port). */
  approveRound: (roundId: string, actor: Actor) => Promise<unknown>;
  nowMs: () => number;
}

export function createFlCandidates(options: FlCandidatesOptions): FlCandidates {
  const { models, blobs, store } = options;
  /** Candidate weights by candidate id, as evaluated (the row's blob after a restart). */
  const weightsCache = new Map<string, NamedTensor[]>();
  const now = () => new Date(options.nowMs());

  async function baseOf(bundleId: string): Promise<{ row: ModelVersionRow; manifest: Manifest }> {
    const row = await models.getByBundleId(bundleId);
    if (!row) throw controlPlaneError('NOT_FOUND', `bundle ${bundleId} is not registered`);
    return { row, manifest: parseManifest(row.manifest) };
  }

  async function trainingOf(bundleId: string) {
    const base = await baseOf(bundleId);
    if (!base.manifest.training) {
      throw controlPlaneError(
        'INVALID_REQUEST',
        `${base.row.name}@${base.row.version} has no training field: it cannot be trained federatedly`,
      );
    }
    const parts = await readParts(blobs, bundleId, base.manifest, [
      'model.onnx',
      base.manifest.training.weightsPart,
    ]);
    return { ...base, parts, weights: readTrainingWeights({ manifest: base.manifest, parts }) };
  }

  async function candidateWeights(candidateId: string, blobId: string): Promise<NamedTensor[]> {
    const cached = weightsCache.get(candidateId);
    if (cached) return cached;
    const bytes = await blobs.get(blobId);
    if (!bytes)
      throw controlPlaneError('NOT_FOUND', `candidate ${candidateId}'s weights are not stored`);
    return decodeTensorSet(bytes).tensors;
  }

  /** A version already registered by this round (a build interrupted after its upload). */
  async function registeredFor(name: string, roundId: string): Promise<ModelVersionRow | null> {
    const rows = await models.listVersions(name);
    return (
      rows.find((r) => {
        const producer = (r.manifest['lineage'] as Manifest['lineage'] | undefined)?.producer;
        return producer?.kind === 'federated-round' && producer.roundId === roundId;
      }) ?? null
    );
  }

  async function record(
    candidate: { candidateId: string; evalSet: string },
    row: ModelVersionRow,
    lineage: Record<string, unknown>,
    actor: Actor,
  ) {
    const roundId = String(lineage['roundId']);
    await store.recordBuilt(
      {
        candidateId: candidate.candidateId,
        bundleId: row.bundleId,
        lineage,
        approval: {
          bundleId: row.bundleId,
          modelName: row.name,
          version: row.version,
          release: row.release,
          roundId,
          requestedAt: now(),
        },
      },
      {
        action: 'fl.candidate-registered',
        subject: `model:${row.name}@${row.version}`,
        after: {
          bundleId: row.bundleId,
          release: row.release,
          evalSet: candidate.evalSet,
          lineage,
        },
      },
      actor,
      now(),
    );
  }

  const port: FlCandidates = {
    async baseWeights(baseBundleId) {
      return { tensors: (await trainingOf(baseBundleId)).weights.tensors };
    },

    async promotionPolicy({ model }) {
      const policy = await options.policies.policyFor(model);
      return { riskTier: policy.riskTier, autoPromote: policy.autoPromote };
    },

    async evaluate({ roundId, candidateId, baseBundleId, weights, evalSet }) {
      const base = await trainingOf(baseBundleId);
      const { row: evalRow, data } = await options.evalSets.load(evalSet);
      const architecture = base.weights.architecture;
      if (data.featureCount !== architecture.inputSize) {
        throw controlPlaneError(
          'INVALID_REQUEST',
          `eval set ${evalSet} has ${data.featureCount} features, ${base.row.name} takes ${architecture.inputSize}`,
        );
      }
      const int8 = shippedInt8(denseArchitectureFromTensors(architecture, weights));
      const candidateAccuracy = await accuracyOf(int8, data);
      const championAccuracy = await accuracyOf(base.parts.get('model.onnx')!, data);
      const weightsBlobId = await blobs.put(encodeTensorSet(weights, { encoding: 'float32' }));
      await store.putCandidate({
        candidateId,
        roundId,
        baseBundleId,
        evalSet: evalRow.name,
        weightsBlobId,
        modelSha256: await sha256Hex(int8),
        candidateAccuracy,
        championAccuracy,
        bundleId: null,
        lineage: null,
        createdAt: now(),
      });
      weightsCache.set(candidateId, weights);
      return { candidateAccuracy, championAccuracy };
    },

    async build({ roundId, candidateId, lineage, actor }) {
      const candidate = await store.getCandidate(candidateId);
      if (!candidate || candidate.roundId !== roundId) {
        throw controlPlaneError(
          'NOT_FOUND',
          `candidate ${candidateId} of round ${roundId} was not evaluated`,
        );
      }
      const base = await trainingOf(candidate.baseBundleId);
      const done = candidate.bundleId
        ? await models.getByBundleId(candidate.bundleId)
        : await registeredFor(base.row.name, roundId);
      if (done) {
        if (!candidate.bundleId) await record(candidate, done, { ...lineage }, actor);
        weightsCache.delete(candidateId);
        return {
          bundleId: done.bundleId,
          name: done.name,
          version: done.version,
          release: done.release,
        };
      }
      const signedBy = await bundleSigners(options.signingKeysDir); // before any work: nothing is built or stored without keys
      const weights = await candidateWeights(candidateId, candidate.weightsBlobId);
      const { data } = await options.evalSets.load(candidate.evalSet);
      const versions = await models.listVersions(base.row.name);
      const manifest = candidateManifestInput({
        base: base.manifest,
        version: nextCandidateVersion(
          base.row.version,
          versions.map((v) => v.version),
        ),
        release: (await models.latestRelease(base.row.name)) + 1,
        lineage: candidateManifestLineage(base.row, lineage, candidate.evalSet),
        nowMs: options.nowMs(),
      });
      const drift = base.manifest.drift;
      const built = await buildDenseBundle(
        {
          architecture: denseArchitectureFromTensors(base.weights.architecture, weights),
          evalData: data,
          manifest,
          signers: signedBy,
          training: { weights: base.weights.encoding === 'float32' ? 'float32' : 'int8' },
          ...(drift
            ? {
                drift: {
                  data,
                  signals: driftRequestsOf(drift),
                  sampleRate: drift.sampleRate,
                  flush: drift.flush,
                  sketchK: drift.sketchK,
                },
              }
            : {}),
        },
        BUILD_PORTS,
      );
      // The manifest signs model.onnx's hash: it must be the int8 model that was evaluated.
      if (shippedModelSha256(built.bundle) !== candidate.modelSha256) {
        throw controlPlaneError(
          'CONFLICT',
          `candidate ${candidateId}: the built model.onnx is not the int8 model that was evaluated`,
        );
      }
      const row = await options.registry.upload(built.bundle, actor);
      await record(candidate, row, { ...lineage }, actor);
      weightsCache.delete(candidateId);
      return { bundleId: row.bundleId, name: row.name, version: row.version, release: row.release };
    },

    async startRollout({ roundId, bundleId, template, actor }) {
      const row = await models.getByBundleId(bundleId);
      if (!row) throw controlPlaneError('NOT_FOUND', `bundle ${bundleId} is not registered`);
      const approval = await store.getApproval(bundleId);
      if (approval?.rolloutId) return { rolloutId: approval.rolloutId };
      if (approval?.status === 'rejected') {
        throw controlPlaneError('CONFLICT', `${row.name}@${row.version} was rejected`);
      }
      const { target, waves, ...rest } = template;
      if (target === undefined) {
        throw controlPlaneError(
          'INVALID_REQUEST',
          `round ${roundId}'s rollout template has no target`,
        );
      }
      const selector = typeof target === 'string' ? parseSelector(target) : buildSelector(target);
      const policy = buildPolicy({
        ...rest,
        waves: waves ?? DEFAULT_CANDIDATE_WAVES,
      } as PolicyInput);
      if (approval?.status === 'pending') {
        // Only an auto-promotion reaches here pending: an approver's decision is recorded first.
        await store.decide(
          bundleId,
          'approved',
          {
            action: 'model.auto-promoted',
            subject: `model:${row.name}@${row.version}`,
            after: { roundId, bundleId },
          },
          actor,
          now(),
        );
      }
      const state = await options.rollouts.create(
        { model: { name: row.name, version: row.version }, selector, policy },
        actor,
      );
      const rolloutId = state.rollout.id;
      if (approval) {
        await store.recordRollout(
          bundleId,
          rolloutId,
          {
            action: 'fl.candidate-rollout-started',
            subject: `model:${row.name}@${row.version}`,
            after: { roundId, rolloutId },
          },
          actor,
          now(),
        );
      }
      return { rolloutId };
    },

    async approve(name, release, actor) {
      const row = await models.getVersion(name, release);
      if (!row)
        throw controlPlaneError('NOT_FOUND', `${name} release ${release} is not registered`);
      const approval = await store.getApproval(row.bundleId);
      if (!approval) {
        throw controlPlaneError('NOT_FOUND', `${name}@${row.version} is not a federated candidate`);
      }
      const subject = `model:${name}@${row.version}`;
      await store.decide(
        row.bundleId,
        'approved',
        {
          action: 'model.approved',
          subject,
          after: { roundId: approval.roundId, bundleId: row.bundleId },
        },
        actor,
        now(),
      );
      try {
        await options.approveRound(approval.roundId, actor);
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        await store.reopen(
          row.bundleId,
          {
            action: 'model.approval-reverted',
            subject,
            after: { roundId: approval.roundId, reason },
          },
          actor,
          now(),
        );
        throw error;
      }
      return (await store.getApproval(row.bundleId))!;
    },

    approvals: (name) => store.listApprovals(name),
  };
  return port;
}
