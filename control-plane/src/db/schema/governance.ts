/**
 * Model governance (services/eval-sets.ts, model-policies.ts, fl-candidates.ts;
 * adapters/db/governance-store.ts keeps them):
 *
 * - `eval_sets`: named held-out evaluation sets (`.fleval` files). The bytes
 *   live in the blob store under `blob_id` (their SHA-256); a new upload under
 *   a name replaces the row (the audit log keeps the old blob id).
 * - `model_policies`: per model name, its risk tier, whether a better
 *   candidate may be promoted without an approver, the accuracy margin, and
 *   what starts its federated rounds (`fl_triggers`: on drift, on a schedule).
 *   No row: the defaults (high risk, no auto-promotion).
 * - `fl_candidates`: one row per evaluated federated candidate: the weights it
 *   was evaluated with (an FTNS float32 tensor set in the blob store), the
 *   SHA-256 of the int8 model that was evaluated (the one that must ship),
 *   the accuracies, and once built, its bundle id and full lineage
 *   (participants with their sample counts: more than the signed manifest's
 *   lineage schema can carry).
 * - `model_approvals`: one row per registered candidate: pending until an
 *   approver (or an auto-promotion) decides, then the rollout it started.
 *
 * No foreign keys to `model_versions` or `fl_rounds`: rows are history.
 */
import {
  boolean,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  text,
  timestamp,
} from 'drizzle-orm/pg-core';
import type { FlTriggerSettings } from '../../core/fl/fl-triggers.ts';

const at = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

export const evalSets = pgTable('eval_sets', {
  name: text('name').primaryKey(),
  /** SHA-256 of the `.fleval` bytes in the blob store. */
  blobId: text('blob_id').notNull(),
  sizeBytes: integer('size_bytes').notNull(),
  sampleCount: integer('sample_count').notNull(),
  featureCount: integer('feature_count').notNull(),
  classCount: integer('class_count').notNull(),
  uploadedBy: text('uploaded_by').notNull(),
  uploadedAt: at('uploaded_at').notNull(),
});

export type RiskTierColumn = 'low' | 'high';

export const modelPolicies = pgTable('model_policies', {
  modelName: text('model_name').primaryKey(),
  riskTier: text('risk_tier').$type<RiskTierColumn>().notNull().default('high'),
  autoPromote: boolean('auto_promote').notNull().default(false),
  /** Accuracy (0..1) a candidate must gain over the champion. */
  promotionMargin: doublePrecision('promotion_margin').notNull().default(0.005),
  /** What starts rounds of the model besides an operator (drift alerts, a schedule); null: nothing. */
  flTriggers: jsonb('fl_triggers').$type<FlTriggerSettings>(),
  updatedBy: text('updated_by').notNull(),
  updatedAt: at('updated_at').notNull(),
});

export const flCandidates = pgTable(
  'fl_candidates',
  {
    candidateId: text('candidate_id').primaryKey(),
    roundId: text('round_id').notNull(),
    baseBundleId: text('base_bundle_id').notNull(),
    evalSet: text('eval_set').notNull(),
    /** The candidate's full float32 weights, an FTNS tensor set in the blob store. */
    weightsBlobId: text('weights_blob_id').notNull(),
    /** SHA-256 of the int8 model.onnx that was evaluated. */
    modelSha256: text('model_sha256').notNull(),
    candidateAccuracy: doublePrecision('candidate_accuracy').notNull(),
    championAccuracy: doublePrecision('champion_accuracy').notNull(),
    /** Set once built and registered. */
    bundleId: text('bundle_id'),
    /** The round's lineage (core CandidateLineage), set when built. */
    lineage: jsonb('lineage').$type<Record<string, unknown>>(),
    createdAt: at('created_at').notNull(),
  },
  (t) => [index('fl_candidates_round_idx').on(t.roundId)],
);

export type ApprovalStatus = 'pending' | 'approved' | 'rejected';

export const modelApprovals = pgTable(
  'model_approvals',
  {
    bundleId: text('bundle_id').primaryKey(),
    modelName: text('model_name').notNull(),
    version: text('version').notNull(),
    release: integer('release').notNull(),
    roundId: text('round_id').notNull(),
    status: text('status').$type<ApprovalStatus>().notNull().default('pending'),
    requestedAt: at('requested_at').notNull(),
    decidedBy: text('decided_by'),
    decidedAt: at('decided_at'),
    /** The rollout its promotion started. */
    rolloutId: text('rollout_id'),
  },
  (t) => [index('model_approvals_model_idx').on(t.modelName, t.release)],
);
