/**
 * Federated rounds (services/fl-rounds.ts drives them; adapters/db/fl-store.ts
 * keeps them):
 *
 * - `fl_rounds`: one row per round. The pure core's `RoundSnapshot` is kept
 *   whole as jsonb (`snapshot`); `status` repeats its status for queries.
 *   `revision` is bumped by every write, so a caller can update only the
 *   state it read. `settings` is what the round needs beyond the core's
 *   config (model, eval set, target, rollout template); `outbox` the actions
 *   the core asked for that are not carried out yet (a restarted control plane
 *   carries them out); `outcome` what the candidate pipeline returned.
 * - `fl_updates`: one row per answer of a selected device (accepted, failed,
 *   or rejected as its answer). `update_id` is unique (a replay is refused).
 *   An accepted update's assembled bytes live in the blob store (`blob_id`,
 *   their SHA-256); `scale` is the factor the control plane applies before
 *   aggregating (1, or clipNorm / norm for a norm over the clip bound).
 *
 * No foreign key to `devices` or `model_versions`: rows are history.
 */
import {
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  text,
  timestamp,
} from 'drizzle-orm/pg-core';
import type { RoundAction, RoundSnapshot, RoundStatus } from '../../core/fl/round-types.ts';
import type { TargetSelector } from '../../core/rollouts/rollout-types.ts';

const at = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

/** Why a round started. */
export interface FlRoundTrigger {
  kind: 'operator' | 'drift' | 'schedule';
  /** E.g. the drift alert id, or the schedule's name. */
  detail: string | null;
}

/** What a round needs beyond the core's config. */
export interface FlRoundSettings {
  model: { name: string; version: string; release: number; bundleId: string };
  evalSet: string;
  target: TargetSelector;
  /** The body `POST /v1/rollouts` takes, without `model`, used when the candidate is promoted. */
  rollout: Record<string, unknown>;
}

/** What the candidate pipeline returned for a round. */
export interface FlRoundOutcome {
  /** Blob id of the candidate's full weights (float32 tensor set), once aggregated. */
  weightsBlobId?: string;
  candidate?: { bundleId: string; name: string; version: string; release: number };
  rolloutId?: string;
  /** The last failed action, when one was given up on. */
  error?: string;
}

export const flRounds = pgTable(
  'fl_rounds',
  {
    id: text('id').primaryKey(),
    modelName: text('model_name').notNull(),
    baseBundleId: text('base_bundle_id').notNull(),
    status: text('status').$type<RoundStatus>().notNull(),
    snapshot: jsonb('snapshot').$type<RoundSnapshot>().notNull(),
    revision: integer('revision').notNull().default(0),
    settings: jsonb('settings').$type<FlRoundSettings>().notNull(),
    trigger: jsonb('trigger').$type<FlRoundTrigger>().notNull(),
    outbox: jsonb('outbox').$type<RoundAction[]>().notNull(),
    outcome: jsonb('outcome').$type<FlRoundOutcome>().notNull(),
    createdBy: text('created_by').notNull(),
    createdAt: at('created_at').notNull(),
    updatedAt: at('updated_at').notNull(),
  },
  (t) => [
    index('fl_rounds_status_idx').on(t.status, t.createdAt, t.id),
    index('fl_rounds_created_idx').on(t.createdAt, t.id),
  ],
);

export type FlUpdateStatus = 'accepted' | 'failed' | 'rejected';

export const flUpdates = pgTable(
  'fl_updates',
  {
    updateId: text('update_id').primaryKey(),
    roundId: text('round_id')
      .notNull()
      .references(() => flRounds.id, { onDelete: 'cascade' }),
    deviceId: text('device_id').notNull(),
    status: text('status').$type<FlUpdateStatus>().notNull(),
    sampleCount: integer('sample_count').notNull(),
    metrics: jsonb('metrics').$type<Record<string, number | null>>().notNull(),
    /** SHA-256 of the assembled tensor-set bytes in the blob store (accepted only). */
    blobId: text('blob_id'),
    /** Decoded global L2 norm (ok updates that decoded). */
    norm: doublePrecision('norm'),
    scale: doublePrecision('scale').notNull().default(1),
    /** The device's failure reason or the rejection reason. */
    reason: text('reason'),
    receivedAt: at('received_at').notNull(),
  },
  (t) => [index('fl_updates_round_idx').on(t.roundId, t.status)],
);
