/**
 * Model risk tiers and promotion policies (ARCHITECTURE "Federated learning":
 * candidates of low-risk models may be promoted automatically, high-risk ones
 * wait for an approver). A model with no policy set is high risk with
 * auto-promotion off: nothing ships without a person unless an admin says so.
 * `policyFor` is what the federated-rounds service reads when a round starts.
 */
import { modelNameSchema } from '@fleet/protocol';
import { controlPlaneError } from '../core/errors.ts';
import type { RiskTier } from '../core/fl/promotion.ts';
import { defaultRoundConfig } from '../core/fl/round-config.ts';
import type { Actor } from '../adapters/db/actor.ts';
import type { GovernanceStore } from '../adapters/db/governance-store.ts';

export interface ModelPolicy {
  modelName: string;
  riskTier: RiskTier;
  /** Promote a better candidate without an approver (honoured for low risk only). */
  autoPromote: boolean;
  /** Accuracy (0..1) a candidate must gain over the champion. */
  promotionMargin: number;
  /** False when no policy was set and these are the defaults. */
  explicit: boolean;
  updatedBy: Actor | null;
  updatedAt: string | null;
}

export interface PolicyChange {
  riskTier?: RiskTier;
  autoPromote?: boolean;
  promotionMargin?: number;
}

export interface ModelPolicies {
  /** The model's policy, or the defaults (high risk, no auto-promotion). */
  policyFor(modelName: string): Promise<ModelPolicy>;
  /** Changes the fields given, keeping the others; audited. */
  set(modelName: string, change: PolicyChange, actor: Actor): Promise<ModelPolicy>;
}

/** The policy of a model nobody set one for. */
export const DEFAULT_MODEL_POLICY = {
  riskTier: 'high',
  autoPromote: false,
  promotionMargin: defaultRoundConfig.evaluationMargin,
} as const satisfies PolicyChange;

export function createModelPolicies(deps: {
  store: GovernanceStore;
  nowMs: () => number;
}): ModelPolicies {
  async function policyFor(modelName: string): Promise<ModelPolicy> {
    const row = await deps.store.getPolicy(modelName);
    if (!row) {
      return {
        modelName,
        ...DEFAULT_MODEL_POLICY,
        explicit: false,
        updatedBy: null,
        updatedAt: null,
      };
    }
    return {
      modelName,
      riskTier: row.riskTier,
      autoPromote: row.autoPromote,
      promotionMargin: row.promotionMargin,
      explicit: true,
      updatedBy: row.updatedBy,
      updatedAt: row.updatedAt.toISOString(),
    };
  }

  return {
    policyFor,
    async set(modelName, change, actor) {
      if (!modelNameSchema.safeParse(modelName).success) {
        throw controlPlaneError('INVALID_REQUEST', `model name ${JSON.stringify(modelName)}`);
      }
      if (
        change.riskTier !== undefined &&
        change.riskTier !== 'low' &&
        change.riskTier !== 'high'
      ) {
        throw controlPlaneError('INVALID_REQUEST', "riskTier: must be 'low' or 'high'");
      }
      const margin = change.promotionMargin;
      if (margin !== undefined && !(Number.isFinite(margin) && margin >= 0 && margin < 1)) {
        throw controlPlaneError('INVALID_REQUEST', `promotionMargin: ${margin} is not in [0, 1)`);
      }
      const current = await policyFor(modelName);
      await deps.store.putPolicy(
        {
          modelName,
          riskTier: change.riskTier ?? current.riskTier,
          autoPromote: change.autoPromote ?? current.autoPromote,
          promotionMargin: margin ?? current.promotionMargin,
        },
        actor,
        new Date(deps.nowMs()),
      );
      return policyFor(modelName);
    },
  };
}
