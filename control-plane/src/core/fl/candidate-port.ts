/**
 * The port the federated-rounds service (services/fl-rounds.ts) drives the
 * candidate pipeline through: base weights, evaluation on a held-out set,
 * building the signed bundle, and starting its rollout. Implemented by
 * services/fl-candidates.ts; tests use a fake. Plain types only: the round
 * service knows nothing of bundles, signing or eval sets beyond their names.
 *
 * Calls are made in round order: `baseWeights` (aggregation), `evaluate`
 * (once per round, after aggregation), `build` (when the decision is promote
 * or await-approval), `startRollout` (when promoted). A call may be repeated
 * with the same `roundId`/`candidateId` after a control-plane restart (the
 * round resumes the step that had not been recorded): implementations should
 * be idempotent per `candidateId` (return the same result, or redo the work).
 */
import type { NamedTensor } from '@fleet/protocol';
import type { RoundAction } from './round-types.ts';
import type { RiskTier } from './promotion.ts';

/** The lineage recorded with a candidate's model version (the core's build-candidate action). */
export type CandidateLineage = Extract<RoundAction, { type: 'build-candidate' }>['lineage'];

/** Who asked: an audit-log actor (`token:{id}`, `system`). */
export type CandidateActor = string;

/** What the round needs of its base model's promotion policy. */
export interface PromotionPolicy {
  riskTier: RiskTier;
  /** The model's policy allows promotion without an approver. */
  autoPromote: boolean;
}

export interface CandidatePort {
  /**
   * Base weights devices trained from (the base bundle's `weights.ftns` part,
   * dequantized), in the part's order. Throws NOT_FOUND for an unknown
   * bundle, INVALID_REQUEST for a bundle without a `training` field.
   */
  baseWeights(baseBundleId: string): Promise<{ tensors: NamedTensor[] }>;

  /**
   * The risk tier and auto-promotion policy of the model the round trains
   * (read when the round is created and stored with it).
   */
  promotionPolicy(input: { model: string; baseBundleId: string }): Promise<PromotionPolicy>;

  /**
   * Evaluates the candidate weights (base + aggregate, full weights, not a
   * delta) against the champion (the base bundle) on the named held-out eval
   * set; keeps the candidate weights under `candidateId` for `build`.
   * Accuracies are in [0, 1].
   */
  evaluate(input: {
    roundId: string;
    candidateId: string;
    baseBundleId: string;
    weights: NamedTensor[];
    evalSet: string;
  }): Promise<{ candidateAccuracy: number; championAccuracy: number }>;

  /**
   * Builds, signs and registers the candidate bundle (same model name as the
   * base, next version) with its lineage; returns the new model version.
   */
  build(input: {
    roundId: string;
    candidateId: string;
    lineage: CandidateLineage;
    actor: CandidateActor;
  }): Promise<{ bundleId: string; name: string; version: string; release: number }>;

  /**
   * Starts the rollout of a registered candidate with the round's rollout
   * template: the body `POST /v1/rollouts` takes, without `model` (the
   * candidate is the model), e.g. `{ target, waves, gates, ... }`.
   */
  startRollout(input: {
    roundId: string;
    bundleId: string;
    template: Record<string, unknown>;
    actor: CandidateActor;
  }): Promise<{ rolloutId: string }>;
}
