/**
 * Rollouts and where each of their devices stands, as the rollout store
 * (adapters/db/rollout-store.ts) keeps the engine's RolloutSnapshot and
 * RolloutDevice. Columns for what is queried or compared (status, wave,
 * times); jsonb for the nested specs (model, selector, policy, a device's
 * previous model and last error), so a field added inside them needs no
 * migration. Times are timestamptz here and epoch ms in the engine's types.
 *
 * `rollout_devices.device_id` has no foreign key to `devices`: the rows are
 * the rollout's history (devices are revoked, never deleted, so it would
 * guard nothing), and a key would make every `truncate devices` name this
 * table too.
 */
import { index, integer, jsonb, pgTable, primaryKey, text, timestamp } from 'drizzle-orm/pg-core';
import type { BundleModelRef } from '@fleet/protocol';
import type {
  RolloutDeviceStatus,
  RolloutPolicy,
  RolloutStatus,
  TargetSelector,
} from '../../core/rollouts/rollout-types.ts';

const at = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

export const rollouts = pgTable(
  'rollouts',
  {
    id: text('id').primaryKey(),
    status: text('status').$type<RolloutStatus>().notNull(),
    model: jsonb('model').$type<BundleModelRef>().notNull(),
    selector: jsonb('selector').$type<TargetSelector>().notNull(),
    policy: jsonb('policy').$type<RolloutPolicy>().notNull(),
    currentWave: integer('current_wave').notNull(),
    waveStartedAt: at('wave_started_at').notNull(),
    waveSucceededAt: at('wave_succeeded_at'),
    reason: text('reason'),
    createdAt: at('created_at').notNull(),
    updatedAt: at('updated_at').notNull(),
    /**
     * Bumped by every change to the rollout or its devices (rollout-store
     * `applyChange`): a process that made the last change knows its copy of
     * the device rows is current when the locked row still has that revision.
     */
    revision: integer('revision').notNull().default(0),
  },
  (t) => [
    // Active rollouts (running, paused) at start-up and per tick; listings by status, newest first.
    index('rollouts_status_idx').on(t.status, t.createdAt, t.id),
    // Listings without a status filter, newest first.
    index('rollouts_created_idx').on(t.createdAt, t.id),
  ],
);

export const rolloutDevices = pgTable(
  'rollout_devices',
  {
    rolloutId: text('rollout_id')
      .notNull()
      .references(() => rollouts.id, { onDelete: 'cascade' }),
    deviceId: text('device_id').notNull(),
    wave: integer('wave').notNull(),
    status: text('status').$type<RolloutDeviceStatus>().notNull(),
    attempts: integer('attempts').notNull(),
    lastSentAt: at('last_sent_at'),
    nextAttemptAt: at('next_attempt_at'),
    previousModel: jsonb('previous_model').$type<BundleModelRef>(),
    error: jsonb('error').$type<{ code: string; message: string }>(),
    committedAt: at('committed_at'),
    updatedAt: at('updated_at').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.rolloutId, t.deviceId] }),
    // A rollout's devices in one status (and wave); per-wave status counts read this index only.
    index('rollout_devices_status_idx').on(t.rolloutId, t.status, t.wave),
    // The rollouts a device is in, to route its reports.
    index('rollout_devices_device_idx').on(t.deviceId, t.rolloutId),
  ],
);
