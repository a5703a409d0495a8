/**
 * Model risk tiers and promotion policies (ARCHITECTURE "Federated learning":
 * candidates of low-risk models may be promoted automatically, high-risk ones
 * wait for an approver). A model with no policy set is high risk with
 * auto-promotion off: nothing ships without a person unless an admin says so.
 * `policyFor` is what the federated-rounds service reads when a round starts.
 * A policy also says what starts the model's rounds besides an operator
 * (`flOnDrift`, `flSchedule`: core/fl/fl-triggers.ts); services/fl-triggers.ts
 * reads them.
 */
import { modelNameSchema } from '@fleet/protocol';
import { controlPlaneError } from '../core/errors.ts';
import type { RiskTier } from '../core/fl/promotion.ts';
import {
  checkFlOnDrift,
  checkFlSchedule,
  type FlOnDrift,
  type FlSchedule,
} from '../core/fl/fl-triggers.ts';
import { defaultRoundConfig } from '../core/fl/round-config.ts';
import type { Actor } from '../adapters/db/actor.ts';
import type { GovernanceStore, ModelPolicyRow } from '../adapters/db/governance-store.ts';

export interface ModelPolicy {
  modelName: string;
  riskTier: RiskTier;
  /** Promote a better candidate without an approver (honoured for low risk only). */
  autoPromote: boolean;
  /** Accuracy (0..1) a candidate must gain over the champion. */
  promotionMargin: number;
  /** A drift alert for a cohort of the model starts a round on it; null: it does not. */
  flOnDrift: FlOnDrift | null;
  /** Rounds of the model on a schedule; null: none. */
  flSchedule: FlSchedule | null;
  /** False when no policy was set and these are the defaults. */
  explicit: boolean;
  updatedBy: Actor | null;
  updatedAt: string | null;
}

export interface PolicyChange {
  riskTier?: RiskTier;
  autoPromote?: boolean;
  promotionMargin?: number;
  /** null: off; an object: replaces the setting whole (checked by checkFlOnDrift). */
  flOnDrift?: unknown;
  /** null: off; an object: replaces the setting whole (checked by checkFlSchedule). */
  flSchedule?: unknown;
}

export interface ModelPolicies {
  /** The model's policy, or the defaults (high risk, no auto-promotion). */
  policyFor(modelName: string): Promise<ModelPolicy>;
  /** Changes the fields given, keeping the others; audited. */
  set(modelName: string, change: PolicyChange, actor: Actor): Promise<ModelPolicy>;
  /** The explicit policies with `flOnDrift` or `flSchedule` set. */
  withTriggers(): Promise<ModelPolicy[]>;
}

/** The policy of a model nobody set one for. */
export const DEFAULT_MODEL_POLICY = {
  riskTier: 'high',
  autoPromote: false,
  promotionMargin: defaultRoundConfig.evaluationMargin,
  flOnDrift: null,
  flSchedule: null,
} as const satisfies PolicyChange;

export function createModelPolicies(deps: {
  store: GovernanceStore;
  nowMs: () => number;
}): ModelPolicies {
  function fromRow(row: ModelPolicyRow): ModelPolicy {
    return {
      modelName: row.modelName,
      riskTier: row.riskTier,
      autoPromote: row.autoPromote,
      promotionMargin: row.promotionMargin,
      flOnDrift: row.flTriggers?.onDrift ?? null,
      flSchedule: row.flTriggers?.schedule ?? null,
      explicit: true,
      updatedBy: row.updatedBy,
      updatedAt: row.updatedAt.toISOString(),
    };
  }

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
    return fromRow(row);
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
      const flOnDrift =
        change.flOnDrift === undefined ? undefined : checkFlOnDrift(change.flOnDrift);
      const flSchedule =
        change.flSchedule === undefined ? undefined : checkFlSchedule(change.flSchedule);
      const current = await policyFor(modelName);
      const onDrift = flOnDrift === undefined ? current.flOnDrift : flOnDrift;
      const schedule = flSchedule === undefined ? current.flSchedule : flSchedule;
      await deps.store.putPolicy(
        {
          modelName,
          riskTier: change.riskTier ?? current.riskTier,
          autoPromote: change.autoPromote ?? current.autoPromote,
          promotionMargin: margin ?? current.promotionMargin,
          flTriggers: onDrift || schedule ? { onDrift, schedule } : null,
        },
        actor,
        new Date(deps.nowMs()),
      );
      return policyFor(modelName);
    },

    withTriggers: async () => (await deps.store.policiesWithTriggers()).map(fromRow),
  };
}
