/**
 * Drift in the database (schema/drift.ts): flushes, pending and scored
 * windows, the cumulative view, alerts. The decisions are the caller's (the
 * drift service runs the pure core inside the transaction); this store makes
 * them atomic and safe between replicas:
 *
 * - Every change for one bundle holds an advisory lock on it: receiving a
 *   flush takes it shared (flushes do not wait for each other), scoring a
 *   window or merging the cumulative view takes it exclusive. So a window is
 *   scored once, a flush is late exactly when its window was scored before
 *   it was stored, and the cumulative cursor (`serial`) never passes a flush
 *   whose insert has not committed yet (serials are taken in insert order,
 *   but commits can come in another order; none is in flight under the
 *   exclusive lock).
 * - A replayed flush id, or a second flush with the same (device, seq),
 *   inserts nothing (`on conflict do nothing`) and is reported as such.
 * - A window's scores, the alerts it opens or clears and their audit
 *   entries commit together; a decision that throws changes nothing.
 */
import { and, asc, desc, eq, gt, gte, isNull, lte, sql } from 'drizzle-orm';
import type { ModelRef } from '@fleet/protocol';
import {
  driftAlerts,
  driftCumulative,
  driftFlushes,
  driftPendingWindows,
  driftWindows,
  modelVersions,
} from '../../db/schema/index.ts';
import { FLEET_COHORT } from '../../core/drift/cohorts.ts';
import type { CumulativeRecord, WindowDecision } from '../../core/drift/window-scoring.ts';
import { appendAuditIn } from './audit-store.ts';
import { SYSTEM_ACTOR } from './actor.ts';
import type { Database } from './database.ts';

/** Advisory-lock namespace of drift work per bundle ("flee" + 6). */
const DRIFT_LOCK_KEY = 0x666c6566;

export type NewFlush = Omit<typeof driftFlushes.$inferInsert, 'serial' | 'late'>;
export type StoredFlush = Pick<
  typeof driftFlushes.$inferSelect,
  'id' | 'serial' | 'deviceId' | 'labels' | 'sampled' | 'inferences' | 'signals'
>;
export type WindowRow = typeof driftWindows.$inferSelect;
export type CumulativeRow = typeof driftCumulative.$inferSelect;
export type AlertRow = typeof driftAlerts.$inferSelect;

export type LatestWindow = Pick<
  WindowRow,
  'bundleId' | 'cohort' | 'windowEnd' | 'verdict' | 'signalScores'
> & { modelName: string; modelVersion: string };

export type InsertOutcome =
  { result: 'accepted'; late: boolean } | { result: 'replayed' | 'seq_reused' };

export interface AlertQuery {
  modelName?: string;
  modelVersion?: string;
  open?: boolean;
  limit: number;
}

export interface DriftStore {
  /** Stores an accepted flush (its window marked pending unless scored already), or says why not. */
  insertFlush(flush: NewFlush): Promise<InsertOutcome>;
  /** Bundles with a pending window or flushes not yet in their cumulative view. */
  bundlesWithWork(): Promise<string[]>;
  /** A bundle's pending windows ending at or before `throughMs`, oldest first. */
  dueWindows(bundleId: string, throughMs: number): Promise<Date[]>;
  /**
   * Scores one pending window: loads its flushes and the cohorts with an open
   * alert, lets `decide` (no database use) decide, writes the scores and the
   * alerts with their audit entries. False when the window was not pending
   * (another replica scored it).
   */
  scoreWindow(
    bundleId: string,
    model: ModelRef,
    window: { start: Date; end: Date },
    decide: (flushes: StoredFlush[], openCohorts: ReadonlySet<string>) => WindowDecision,
    now: Date,
  ): Promise<boolean>;
  /**
   * Merges up to `limit` flushes past the bundle's cumulative cursor: `decide`
   * gets the current rows and those flushes (by serial) and returns every
   * cohort's new row. Returns how many flushes it merged.
   */
  updateCumulative(
    bundleId: string,
    limit: number,
    decide: (current: CumulativeRow[], flushes: StoredFlush[]) => CumulativeRecord[],
    now: Date,
  ): Promise<number>;
  /** Scored windows ending after `since`, newest `limit` per call, returned oldest first. */
  windows(
    bundleId: string,
    query: { cohort?: string; since: Date; limit: number },
  ): Promise<WindowRow[]>;
  cumulative(bundleId: string, cohort?: string): Promise<CumulativeRow[]>;
  alerts(query: AlertQuery): Promise<AlertRow[]>;
  /** Whether any window or cumulative view exists for the bundle. */
  hasScores(bundleId: string): Promise<boolean>;
  /** For the metrics: the latest window per bundle and cohort ending at or after `since`, with the model. */
  latestWindows(since: Date): Promise<LatestWindow[]>;
  openAlerts(): Promise<AlertRow[]>;
}

export function createDriftStore(db: Database): DriftStore {
  const lock = (tx: Database, bundleId: string, mode: 'shared' | 'exclusive') =>
    tx.execute(
      mode === 'shared'
        ? sql`select pg_advisory_xact_lock_shared(${DRIFT_LOCK_KEY}, hashtext(${bundleId}))`
        : sql`select pg_advisory_xact_lock(${DRIFT_LOCK_KEY}, hashtext(${bundleId}))`,
    );

  const flushColumns = {
    id: driftFlushes.id,
    serial: driftFlushes.serial,
    deviceId: driftFlushes.deviceId,
    labels: driftFlushes.labels,
    sampled: driftFlushes.sampled,
    inferences: driftFlushes.inferences,
    signals: driftFlushes.signals,
  };

  return {
    insertFlush: (flush) =>
      db.transaction(async (tx) => {
        await lock(tx, flush.bundleId, 'shared');
        const [scored] = await tx
          .select({ end: driftWindows.windowEnd })
          .from(driftWindows)
          .where(
            and(
              eq(driftWindows.bundleId, flush.bundleId),
              eq(driftWindows.cohort, FLEET_COHORT),
              eq(driftWindows.windowEnd, flush.windowEnd),
            ),
          );
        const late = scored !== undefined;
        const inserted = await tx
          .insert(driftFlushes)
          .values({ ...flush, late })
          .onConflictDoNothing()
          .returning({ id: driftFlushes.id });
        if (inserted.length === 0) {
          const [same] = await tx
            .select({ id: driftFlushes.id })
            .from(driftFlushes)
            .where(eq(driftFlushes.id, flush.id));
          return { result: same ? 'replayed' : 'seq_reused' };
        }
        if (!late) {
          await tx
            .insert(driftPendingWindows)
            .values({ bundleId: flush.bundleId, windowEnd: flush.windowEnd })
            .onConflictDoNothing();
        }
        return { result: 'accepted', late };
      }),

    bundlesWithWork: async () => {
      const pending = await db
        .selectDistinct({ bundleId: driftPendingWindows.bundleId })
        .from(driftPendingWindows);
      // Every cohort row of a bundle has the same cursor, so any one will do.
      const behind = await db
        .selectDistinct({ bundleId: driftCumulative.bundleId })
        .from(driftCumulative)
        .where(
          sql`exists (select 1 from ${driftFlushes} where ${driftFlushes.bundleId} = ${driftCumulative.bundleId} and ${driftFlushes.serial} > ${driftCumulative.throughSerial})`,
        );
      return [...new Set([...pending, ...behind].map((r) => r.bundleId))];
    },

    dueWindows: async (bundleId, throughMs) =>
      (
        await db
          .select({ end: driftPendingWindows.windowEnd })
          .from(driftPendingWindows)
          .where(
            and(
              eq(driftPendingWindows.bundleId, bundleId),
              lte(driftPendingWindows.windowEnd, new Date(throughMs)),
            ),
          )
          .orderBy(asc(driftPendingWindows.windowEnd))
      ).map((r) => r.end),

    scoreWindow: (bundleId, model, window, decide, now) =>
      db.transaction(async (tx) => {
        await lock(tx, bundleId, 'exclusive');
        const pending = and(
          eq(driftPendingWindows.bundleId, bundleId),
          eq(driftPendingWindows.windowEnd, window.end),
        );
        const [still] = await tx.select().from(driftPendingWindows).where(pending);
        if (!still) return false;
        const flushes = await tx
          .select(flushColumns)
          .from(driftFlushes)
          .where(and(eq(driftFlushes.bundleId, bundleId), eq(driftFlushes.windowEnd, window.end)))
          .orderBy(asc(driftFlushes.serial));
        const open = await tx
          .select()
          .from(driftAlerts)
          .where(and(eq(driftAlerts.bundleId, bundleId), isNull(driftAlerts.clearedAt)));
        const decision = decide(flushes, new Set(open.map((a) => a.cohort)));
        if (decision.windows.length > 0) {
          await tx
            .insert(driftWindows)
            .values(
              decision.windows.map((w) => ({
                ...w,
                bundleId,
                windowStart: window.start,
                windowEnd: window.end,
                scoredAt: now,
              })),
            )
            .onConflictDoNothing();
        }
        const subject = `model:${model.name}@${model.version}`;
        const span = { start: window.start.toISOString(), end: window.end.toISOString() };
        for (const alert of decision.open) {
          await tx.insert(driftAlerts).values({
            ...alert,
            bundleId,
            modelName: model.name,
            modelVersion: model.version,
            modelRelease: model.release,
            windowStart: window.start,
            windowEnd: window.end,
            openedAt: now,
          });
          await appendAuditIn(tx, {
            at: now.toISOString(),
            actor: SYSTEM_ACTOR,
            action: 'drift.alert',
            subject,
            before: null,
            after: {
              alertId: alert.id,
              bundleId,
              cohort: alert.cohort,
              window: span,
              driftedShare: alert.driftedShare,
              signals: alert.signals,
            },
          });
        }
        for (const cleared of decision.clear) {
          const [row] = await tx
            .update(driftAlerts)
            .set({ clearedAt: now, clearedWindowEnd: window.end })
            .where(
              and(
                eq(driftAlerts.bundleId, bundleId),
                eq(driftAlerts.cohort, cleared.cohort),
                isNull(driftAlerts.clearedAt),
              ),
            )
            .returning();
          if (!row) continue;
          await appendAuditIn(tx, {
            at: now.toISOString(),
            actor: SYSTEM_ACTOR,
            action: 'drift.cleared',
            subject,
            before: { alertId: row.id, openedAt: row.openedAt.toISOString() },
            after: {
              bundleId,
              cohort: cleared.cohort,
              window: span,
              driftedShare: cleared.driftedShare,
            },
          });
        }
        await tx.delete(driftPendingWindows).where(pending);
        return true;
      }),

    updateCumulative: (bundleId, limit, decide, now) =>
      db.transaction(async (tx) => {
        await lock(tx, bundleId, 'exclusive');
        const current = await tx
          .select()
          .from(driftCumulative)
          .where(eq(driftCumulative.bundleId, bundleId));
        const through = Math.max(0, ...current.map((r) => r.throughSerial));
        const flushes = await tx
          .select(flushColumns)
          .from(driftFlushes)
          .where(and(eq(driftFlushes.bundleId, bundleId), gt(driftFlushes.serial, through)))
          .orderBy(asc(driftFlushes.serial))
          .limit(limit);
        if (flushes.length === 0) return 0;
        const throughSerial = flushes.at(-1)!.serial;
        const rows = decide(current, flushes).map((r) => ({
          ...r,
          bundleId,
          throughSerial,
          updatedAt: now,
        }));
        for (const row of rows) {
          await tx
            .insert(driftCumulative)
            .values(row)
            .onConflictDoUpdate({
              target: [driftCumulative.bundleId, driftCumulative.cohort],
              set: row,
            });
        }
        return flushes.length;
      }),

    windows: async (bundleId, query) => {
      const rows = await db
        .select()
        .from(driftWindows)
        .where(
          and(
            eq(driftWindows.bundleId, bundleId),
            gt(driftWindows.windowEnd, query.since),
            query.cohort === undefined ? undefined : eq(driftWindows.cohort, query.cohort),
          ),
        )
        .orderBy(desc(driftWindows.windowEnd), desc(driftWindows.cohort))
        .limit(query.limit);
      return rows.reverse();
    },

    cumulative: (bundleId, cohort) =>
      db
        .select()
        .from(driftCumulative)
        .where(
          and(
            eq(driftCumulative.bundleId, bundleId),
            cohort === undefined ? undefined : eq(driftCumulative.cohort, cohort),
          ),
        )
        .orderBy(asc(driftCumulative.cohort)),

    alerts: (query) =>
      db
        .select()
        .from(driftAlerts)
        .where(
          and(
            query.modelName === undefined ? undefined : eq(driftAlerts.modelName, query.modelName),
            query.modelVersion === undefined
              ? undefined
              : eq(driftAlerts.modelVersion, query.modelVersion),
            query.open === undefined
              ? undefined
              : query.open
                ? isNull(driftAlerts.clearedAt)
                : sql`${driftAlerts.clearedAt} is not null`,
          ),
        )
        .orderBy(desc(driftAlerts.openedAt), asc(driftAlerts.cohort))
        .limit(query.limit),

    hasScores: async (bundleId) => {
      const [row] = await db
        .select({ one: sql<number>`1` })
        .from(driftCumulative)
        .where(eq(driftCumulative.bundleId, bundleId))
        .limit(1);
      return row !== undefined;
    },

    latestWindows: (since) =>
      db
        .selectDistinctOn([driftWindows.bundleId, driftWindows.cohort], {
          bundleId: driftWindows.bundleId,
          cohort: driftWindows.cohort,
          windowEnd: driftWindows.windowEnd,
          verdict: driftWindows.verdict,
          signalScores: driftWindows.signalScores,
          modelName: modelVersions.name,
          modelVersion: modelVersions.version,
        })
        .from(driftWindows)
        .innerJoin(modelVersions, eq(modelVersions.bundleId, driftWindows.bundleId))
        .where(gte(driftWindows.windowEnd, since))
        .orderBy(driftWindows.bundleId, driftWindows.cohort, desc(driftWindows.windowEnd)),

    openAlerts: () => db.select().from(driftAlerts).where(isNull(driftAlerts.clearedAt)),
  };
}
