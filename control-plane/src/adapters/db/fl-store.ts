/**
 * Federated rounds in the database (db/schema/fl.ts): the core's snapshot
 * with its settings, outbox and outcome, the devices' answers, and the audit
 * entries of every change, written together in one transaction that holds
 * the round's row lock (`update`), so two writers (a device's update and the
 * deadline tick, or two replicas) apply one after the other and each sees the
 * other's state. Every write bumps `revision`; `update` can insist on the
 * revision its caller read.
 */
import { and, asc, desc, eq, inArray, sql } from 'drizzle-orm';
import {
  flRounds,
  flUpdates,
  type FlRoundOutcome,
  type FlRoundSettings,
  type FlRoundTrigger,
  type FlUpdateStatus,
} from '../../db/schema/index.ts';
import { controlPlaneError } from '../../core/errors.ts';
import type { RoundAction, RoundSnapshot, RoundStatus } from '../../core/fl/round-types.ts';
import { appendAuditIn } from './audit-store.ts';
import type { Actor } from './actor.ts';
import type { Database } from './database.ts';

export interface FlRoundRecord {
  id: string;
  modelName: string;
  baseBundleId: string;
  status: RoundStatus;
  snapshot: RoundSnapshot;
  revision: number;
  settings: FlRoundSettings;
  trigger: FlRoundTrigger;
  /** Actions the core asked for that are not carried out yet, in order. */
  outbox: RoundAction[];
  outcome: FlRoundOutcome;
  createdBy: Actor;
  createdAtMs: number;
  updatedAtMs: number;
}

export interface FlUpdateRecord {
  updateId: string;
  roundId: string;
  deviceId: string;
  status: FlUpdateStatus;
  sampleCount: number;
  metrics: Record<string, number | null>;
  blobId: string | null;
  norm: number | null;
  scale: number;
  reason: string | null;
  receivedAtMs: number;
}

/** One audit entry: `action` (e.g. `fl.round-started`) and what to record after it. */
export interface FlAudit {
  action: string;
  detail: unknown;
}

/** What one write changes: the new snapshot and outbox, and what goes with them. */
export interface FlRoundChange {
  snapshot: RoundSnapshot;
  outbox: RoundAction[];
  outcome?: FlRoundOutcome;
  updates?: Omit<FlUpdateRecord, 'roundId'>[];
  audit?: FlAudit[];
}

export interface FlRoundListQuery {
  status?: RoundStatus;
  limit: number;
  /** The last id of the previous page. */
  cursor?: string;
}

export interface FlStore {
  /** Stores a new round with its audit entries; CONFLICT when the id exists. */
  create(
    round: Omit<FlRoundRecord, 'revision' | 'createdAtMs' | 'updatedAtMs' | 'status'>,
    audit: FlAudit[],
    actor: Actor,
    now: Date,
  ): Promise<FlRoundRecord>;
  get(id: string): Promise<FlRoundRecord | null>;
  /** Newest first. */
  list(query: FlRoundListQuery): Promise<FlRoundRecord[]>;
  /** Rounds not final, or with actions still to carry out, oldest first (start-up and ticks). */
  resumableIds(): Promise<string[]>;
  /**
   * Locks the round and writes what `fn` decides (snapshot, outbox, update
   * rows, audit entries) in one transaction; null from `fn` changes nothing.
   * `fn` must not use the database. NOT_FOUND for an unknown round; CONFLICT
   * when `expectRevision` is given and the row has moved on.
   */
  update(
    id: string,
    fn: (current: FlRoundRecord) => FlRoundChange | null,
    actor: Actor,
    now: Date,
    expectRevision?: number,
  ): Promise<FlRoundRecord | null>;
  /** A round's answers, oldest first, optionally only one status. */
  updates(roundId: string, status?: FlUpdateStatus): Promise<FlUpdateRecord[]>;
  /** Whether an update id was ever recorded (in any round). */
  hasUpdate(updateId: string): Promise<boolean>;
  /** The newest round of a model, optionally only in these statuses or started by this trigger kind. */
  latestOf(
    modelName: string,
    where?: { statuses?: readonly RoundStatus[]; triggerKind?: FlRoundTrigger['kind'] },
  ): Promise<FlRoundRecord | null>;
}

type RoundRow = typeof flRounds.$inferSelect;
type UpdateRow = typeof flUpdates.$inferSelect;

const FINAL: RoundStatus[] = ['promoted', 'rejected', 'failed', 'cancelled'];

function fromRoundRow(row: RoundRow): FlRoundRecord {
  return {
    id: row.id,
    modelName: row.modelName,
    baseBundleId: row.baseBundleId,
    status: row.status,
    snapshot: row.snapshot,
    revision: row.revision,
    settings: row.settings,
    trigger: row.trigger,
    outbox: row.outbox,
    outcome: row.outcome,
    createdBy: row.createdBy,
    createdAtMs: row.createdAt.getTime(),
    updatedAtMs: row.updatedAt.getTime(),
  };
}

function fromUpdateRow(row: UpdateRow): FlUpdateRecord {
  const { receivedAt, ...rest } = row;
  return { ...rest, receivedAtMs: receivedAt.getTime() };
}

async function appendAll(
  tx: Database,
  roundId: string,
  audit: readonly FlAudit[],
  actor: Actor,
  now: Date,
): Promise<void> {
  for (const entry of audit) {
    await appendAuditIn(tx, {
      at: now.toISOString(),
      actor,
      action: entry.action,
      subject: roundId,
      before: null,
      after: entry.detail,
    });
  }
}

export function createFlStore(db: Database): FlStore {
  async function get(id: string): Promise<FlRoundRecord | null> {
    const [row] = await db.select().from(flRounds).where(eq(flRounds.id, id));
    return row ? fromRoundRow(row) : null;
  }

  return {
    async create(round, audit, actor, now) {
      return db.transaction(async (tx) => {
        const inserted = await tx
          .insert(flRounds)
          .values({
            ...round,
            status: round.snapshot.status,
            revision: 0,
            createdAt: now,
            updatedAt: now,
          })
          .onConflictDoNothing()
          .returning();
        if (inserted.length === 0) throw controlPlaneError('CONFLICT', `round ${round.id} exists`);
        await appendAll(tx, round.id, audit, actor, now);
        return fromRoundRow(inserted[0]!);
      });
    },

    get,

    async list({ status, limit, cursor }) {
      const after =
        cursor === undefined
          ? undefined
          : sql`(${flRounds.createdAt}, ${flRounds.id}) < (select created_at, id from fl_rounds where id = ${cursor})`;
      const rows = await db
        .select()
        .from(flRounds)
        .where(and(status ? eq(flRounds.status, status) : undefined, after))
        .orderBy(desc(flRounds.createdAt), desc(flRounds.id))
        .limit(limit);
      return rows.map(fromRoundRow);
    },

    async latestOf(modelName, where = {}) {
      const [row] = await db
        .select()
        .from(flRounds)
        .where(
          and(
            eq(flRounds.modelName, modelName),
            where.statuses ? inArray(flRounds.status, [...where.statuses]) : undefined,
            where.triggerKind
              ? sql`${flRounds.trigger}->>'kind' = ${where.triggerKind}`
              : undefined,
          ),
        )
        .orderBy(desc(flRounds.createdAt), desc(flRounds.id))
        .limit(1);
      return row ? fromRoundRow(row) : null;
    },

    async resumableIds() {
      const rows = await db
        .select({ id: flRounds.id })
        .from(flRounds)
        .where(
          sql`${flRounds.status} not in (${sql.join(
            FINAL.map((s) => sql`${s}`),
            sql`, `,
          )}) or jsonb_array_length(${flRounds.outbox}) > 0`,
        )
        .orderBy(asc(flRounds.createdAt), asc(flRounds.id));
      return rows.map((r) => r.id);
    },

    async update(id, fn, actor, now, expectRevision) {
      return db.transaction(async (tx) => {
        const [row] = await tx.select().from(flRounds).where(eq(flRounds.id, id)).for('update');
        if (!row) throw controlPlaneError('NOT_FOUND', `no round ${id}`);
        if (expectRevision !== undefined && row.revision !== expectRevision) {
          throw controlPlaneError(
            'CONFLICT',
            `round ${id} is at revision ${row.revision}, not ${expectRevision}`,
          );
        }
        const change = fn(fromRoundRow(row));
        if (change === null) return null;
        const [written] = await tx
          .update(flRounds)
          .set({
            status: change.snapshot.status,
            snapshot: change.snapshot,
            outbox: change.outbox,
            ...(change.outcome ? { outcome: change.outcome } : {}),
            revision: sql`${flRounds.revision} + 1`,
            updatedAt: now,
          })
          .where(eq(flRounds.id, id))
          .returning();
        if (change.updates && change.updates.length > 0) {
          await tx.insert(flUpdates).values(
            change.updates.map(({ receivedAtMs, ...u }) => ({
              ...u,
              roundId: id,
              receivedAt: new Date(receivedAtMs),
            })),
          );
        }
        await appendAll(tx, id, change.audit ?? [], actor, now);
        return fromRoundRow(written!);
      });
    },

    async updates(roundId, status) {
      const rows = await db
        .select()
        .from(flUpdates)
        .where(
          and(eq(flUpdates.roundId, roundId), status ? eq(flUpdates.status, status) : undefined),
        )
        .orderBy(asc(flUpdates.receivedAt), asc(flUpdates.updateId));
      return rows.map(fromUpdateRow);
    },

    async hasUpdate(updateId) {
      const rows = await db
        .select({ id: flUpdates.updateId })
        .from(flUpdates)
        .where(inArray(flUpdates.updateId, [updateId]));
      return rows.length > 0;
    },
  };
}
