/**
 * Drift: the flushes devices send, the windows they are merged and scored
 * in, the cumulative view per bundle and cohort, and the alerts
 * (adapters/db/drift-store.ts keeps them; core/drift/ decides).
 *
 * - `drift_flushes`: one row per accepted flush, its signal sketches as one
 *   `bytea` (core/drift/signal-codec.ts). The flush id is the key (a replay
 *   is refused); (device_id, seq) is unique too. `window_end` is the
 *   scoring window (core/drift/windows.ts) the flush belongs to; `late` says
 *   it came after that window was scored. `serial` orders flushes for the
 *   cumulative view. Retention is not done yet: rows stay until deleted.
 * - `drift_pending_windows`: windows that have flushes and no score yet:
 *   what the scorer looks at, so it never scans the flushes.
 * - `drift_windows`: each scored window per cohort (`*` = the whole fleet).
 * - `drift_cumulative`: per bundle and cohort, everything merged so far
 *   (the sketches, so the next flushes merge in) with its latest score.
 * - `drift_alerts`: an alert opens when a cohort becomes drifted and stays
 *   open (one per bundle and cohort, by a partial unique index) until a
 *   clean window clears it.
 *
 * No foreign keys to `devices` or `model_versions`: rows are history, and
 * devices are revoked, never deleted.
 */
import {
  bigint,
  bigserial,
  boolean,
  customType,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  unique,
  uniqueIndex,
} from 'drizzle-orm/pg-core';
import { sql } from 'drizzle-orm';
import type { CohortVerdict, SignalScore } from '../../core/drift/cohort-score.ts';
import type { AlertSignal } from '../../core/drift/window-scoring.ts';

const at = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });
const count = (name: string) => bigint(name, { mode: 'number' });

/** Binary data: PGlite gives a Uint8Array, postgres.js a Buffer (one too). */
const bytea = customType<{ data: Uint8Array; driverData: Uint8Array }>({
  dataType: () => 'bytea',
  toDriver: (value) => Buffer.from(value.buffer, value.byteOffset, value.byteLength),
  fromDriver: (value) => new Uint8Array(value.buffer, value.byteOffset, value.byteLength),
});

export const driftFlushes = pgTable(
  'drift_flushes',
  {
    id: text('id').primaryKey(),
    serial: bigserial('serial', { mode: 'number' }).notNull(),
    deviceId: text('device_id').notNull(),
    seq: count('seq').notNull(),
    bundleId: text('bundle_id').notNull(),
    modelName: text('model_name').notNull(),
    modelVersion: text('model_version').notNull(),
    modelRelease: integer('model_release').notNull(),
    rolloutId: text('rollout_id'),
    /** The device's tags when the flush arrived: its cohorts. */
    labels: jsonb('labels').$type<Record<string, string>>().notNull(),
    flushStart: at('flush_start').notNull(),
    flushEnd: at('flush_end').notNull(),
    /** End of the scoring window the flush belongs to. */
    windowEnd: at('window_end').notNull(),
    inferences: count('inferences').notNull(),
    sampled: count('sampled').notNull(),
    signals: bytea('signals').notNull(),
    late: boolean('late').notNull(),
    receivedAt: at('received_at').notNull(),
  },
  (t) => [
    unique('drift_flushes_device_seq').on(t.deviceId, t.seq),
    // A window's flushes, when it is scored.
    index('drift_flushes_window_idx').on(t.bundleId, t.windowEnd),
    // Flushes not yet in the cumulative view.
    index('drift_flushes_serial_idx').on(t.bundleId, t.serial),
  ],
);

export const driftPendingWindows = pgTable(
  'drift_pending_windows',
  {
    bundleId: text('bundle_id').notNull(),
    windowEnd: at('window_end').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.bundleId, t.windowEnd] }),
    index('drift_pending_windows_end_idx').on(t.windowEnd),
  ],
);

/** Columns a window score and a cumulative score share. */
const scoreColumns = () => ({
  verdict: text('verdict').$type<CohortVerdict>().notNull(),
  flushes: integer('flushes').notNull(),
  sampled: count('sampled').notNull(),
  inferences: count('inferences').notNull(),
  driftedShare: doublePrecision('drifted_share').notNull(),
  driftedSignals: jsonb('drifted_signals').$type<string[]>().notNull(),
  signalScores: jsonb('signal_scores').$type<SignalScore[]>().notNull(),
});

export const driftWindows = pgTable(
  'drift_windows',
  {
    bundleId: text('bundle_id').notNull(),
    cohort: text('cohort').notNull(),
    windowStart: at('window_start').notNull(),
    windowEnd: at('window_end').notNull(),
    ...scoreColumns(),
    devices: integer('devices').notNull(),
    scoredAt: at('scored_at').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.bundleId, t.cohort, t.windowEnd] }),
    // The latest windows of every bundle (metrics).
    index('drift_windows_end_idx').on(t.windowEnd),
  ],
);

export const driftCumulative = pgTable(
  'drift_cumulative',
  {
    bundleId: text('bundle_id').notNull(),
    cohort: text('cohort').notNull(),
    ...scoreColumns(),
    /** The merged sketches (signal-codec), for the next flushes to merge into. */
    sketches: bytea('sketches').notNull(),
    /** The highest flush `serial` merged in (the same in every cohort row of a bundle). */
    throughSerial: count('through_serial').notNull(),
    updatedAt: at('updated_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.bundleId, t.cohort] })],
);

export const driftAlerts = pgTable(
  'drift_alerts',
  {
    id: text('id').primaryKey(),
    bundleId: text('bundle_id').notNull(),
    modelName: text('model_name').notNull(),
    modelVersion: text('model_version').notNull(),
    modelRelease: integer('model_release').notNull(),
    cohort: text('cohort').notNull(),
    /** The window that raised it. */
    windowStart: at('window_start').notNull(),
    windowEnd: at('window_end').notNull(),
    driftedShare: doublePrecision('drifted_share').notNull(),
    signals: jsonb('signals').$type<AlertSignal[]>().notNull(),
    openedAt: at('opened_at').notNull(),
    /** The clean window that cleared it, and when; null while open. */
    clearedWindowEnd: at('cleared_window_end'),
    clearedAt: at('cleared_at'),
  },
  (t) => [
    // Raised once: at most one open alert per bundle and cohort.
    uniqueIndex('drift_alerts_open_idx')
      .on(t.bundleId, t.cohort)
      .where(sql`${t.clearedAt} is null`),
    index('drift_alerts_model_idx').on(t.modelName, t.openedAt),
  ],
);
