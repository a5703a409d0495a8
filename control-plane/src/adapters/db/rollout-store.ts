/**
 * Rollouts in the database, so a control plane restarted mid-rollout carries
 * on where it was, and replicas on one PostgreSQL never apply two decisions
 * to one rollout at once: every change locks the rollout's row
 * (`SELECT ... FOR UPDATE`), reads, lets the caller's function (the pure
 * engine) decide, and writes the decision and its audit entries in that one
 * transaction.
 *
 * Two ways to change a rollout:
 *
 * - `update` loads every device row. Simple, and right for rare whole-rollout
 *   decisions (create-time checks, abort of a small rollout), but for 10,000
 *   devices it reads 10,000 rows per call.
 * - `updateDevices` loads only the devices a selection names (the reporting
 *   device; a wave's pending devices; those in flight) plus the per-wave
 *   status counts, which is what the engine's ratios need. Counts come from
 *   one index-only aggregate (rollout_devices_status_idx); the caller sees
 *   only the rows it asked for, so a decision that needs other rows (rolling
 *   back every succeeded device) selects them by status, or uses `update`.
 *
 * Only rows the decision changed are written, with one statement per 2,000
 * rows (the rows travel as one jsonb parameter, so there is no limit on bind
 * parameters and no per-row SQL to build). Per-device transitions are not
 * audited unless the decision says so: they are telemetry, and every audit
 * append takes the one audit lock.
 *
 * Adding a field to RolloutSnapshot or RolloutDevice makes `tsc` fail here
 * (see `mappedAll`) until it has a column and a mapping both ways; a field
 * inside `policy`, `selector`, `model`, `previousModel` or `error` is jsonb
 * and needs nothing (rows written before it lack it).
 */
import { and, asc, desc, eq, inArray, sql, type SQL } from 'drizzle-orm';
import { rolloutDevices, rollouts } from '../../db/schema/index.ts';
import { controlPlaneError } from '../../core/errors.ts';
import {
  ROLLOUT_DEVICE_STATUSES,
  type RolloutDevice,
  type RolloutDeviceStatus,
  type RolloutSnapshot,
  type RolloutStatus,
} from '../../core/rollouts/rollout-types.ts';
import { appendAuditIn } from './audit-store.ts';
import type { Actor } from './actor.ts';
import type { Database } from './database.ts';

/** A rollout with every one of its devices. */
export interface RolloutState {
  rollout: RolloutSnapshot;
  devices: RolloutDevice[];
}

export type StatusCounts = Record<RolloutDeviceStatus, number>;
/** Devices per status for each wave; index = wave, one entry per `policy.waves`. */
export type WaveCounts = StatusCounts[];

/** A rollout with some of its devices (those selected) and the counts of all of them. */
export interface PartialRolloutState {
  rollout: RolloutSnapshot;
  devices: RolloutDevice[];
  counts: WaveCounts;
}

export interface RolloutAudit {
  /** E.g. `rollout.wave-advanced`, `rollout.aborted`; the subject is `rollout:{id}`. */
  action: string;
  detail: Record<string, unknown>;
}

/** What a decision changed. Devices not listed are left as they are. */
export interface RolloutChange {
  rollout: RolloutSnapshot;
  /** Devices the decision was given and changed. */
  changedDevices: RolloutDevice[];
  /** Devices joining the rollout (enrolled later, matching the target). */
  newDevices?: RolloutDevice[];
  /** Written in the same transaction, in this order. */
  audit: RolloutAudit[];
}

/** A decision: the pure engine's (synchronous), or one that awaits something first. */
export type Decided = RolloutChange | null | Promise<RolloutChange | null>;

/** Which devices `updateDevices` loads; given fields must all match, `{}` is every device. */
export interface DeviceSelection {
  deviceIds?: string[];
  statuses?: RolloutDeviceStatus[];
  waves?: number[];
  /** At most this many, in device id order. */
  limit?: number;
}

export interface RolloutSummary {
  rollout: RolloutSnapshot;
  deviceCounts: StatusCounts;
}

export interface RolloutListQuery {
  status?: RolloutStatus;
  limit: number;
  /** The id of the last rollout of the previous page. Pages run newest first. */
  cursor?: string;
}

export interface RolloutStore {
  /** Stores a new rollout and its devices with a `rollout.create` audit entry; CONFLICT when the id exists. */
  create(
    snapshot: RolloutSnapshot,
    devices: RolloutDevice[],
    actor: Actor,
    now: Date,
  ): Promise<void>;
  get(id: string): Promise<RolloutState | null>;
  list(query: RolloutListQuery): Promise<RolloutSummary[]>;
  /** Running or paused rollouts, oldest first: what a (re)started control plane drives. */
  activeRolloutIds(): Promise<string[]>;
  /** The active rollouts a device is in, with its row in each (unlocked: for routing its reports). */
  rolloutsForDevice(
    deviceId: string,
  ): Promise<Array<{ rollout: RolloutSnapshot; device: RolloutDevice }>>;
  /** Per-wave status counts of a rollout's devices; NOT_FOUND for an unknown rollout. */
  waveCounts(id: string): Promise<WaveCounts>;
  /**
   * Locks the rollout, loads it with all its devices, and applies what `fn`
   * decides, with its audit entries, in one transaction. `fn` returning null
   * changes nothing (and update returns null); `fn` throwing changes nothing.
   * `fn` runs while the row is locked: decide there, send commands after the
   * returned promise resolves. `fn` must not use the database (on PGlite,
   * which has one connection, it would wait for this transaction forever).
   * NOT_FOUND for an unknown rollout.
   */
  update(
    id: string,
    fn: (current: RolloutState) => Decided,
    actor: Actor,
    now: Date,
  ): Promise<RolloutState | null>;
  /**
   * Like `update`, but loads only the selected devices and the per-wave
   * counts, and returns those devices (changed and new ones merged) and the
   * counts after the change. The selection may depend on the locked rollout
   * (`(r) => ({ waves: [r.currentWave], statuses: ['pending'] })`).
   *
   * @example
   *   // A device's report: one row read, one written.
   *   await store.updateDevices(rolloutId, { deviceIds: [deviceId] },
   *     async ({ rollout, devices, counts }) => engine.onReport(rollout, devices[0], counts, report),
   *     deviceActor(deviceId), now);
   */
  updateDevices(
    id: string,
    select: DeviceSelection | ((rollout: RolloutSnapshot) => DeviceSelection),
    fn: (current: PartialRolloutState) => Decided,
    actor: Actor,
    now: Date,
  ): Promise<PartialRolloutState | null>;
}

type RolloutRow = typeof rollouts.$inferSelect;
type DeviceRow = typeof rolloutDevices.$inferSelect;

const ACTIVE: RolloutStatus[] = ['running', 'paused'];
/**
 * Device order: by code point (collation "C"), the order `mergeDevices` sorts
 * in, whatever the database's default collation.
 */
const byDeviceId = sql`${rolloutDevices.deviceId} collate "C"`;
/** Longest id list sent as separate parameters. */
const MAX_LISTED_IDS = 1_000;
/** Device rows per insert statement. */
const BATCH_ROWS = 2_000;

/** Compile-time guard: every field of the engine's type was mapped (the rest is empty). */
function mappedAll(_rest: Record<string, never>): void {}

const msOrNull = (date: Date | null) => date?.getTime() ?? null;
const isoOrNull = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function toRolloutRow(snapshot: RolloutSnapshot): Omit<RolloutRow, 'revision'> {
  const { id, model, selector, policy, status, currentWave, reason, ...times } = snapshot;
  const { waveStartedAtMs, waveSucceededAtMs, createdAtMs, updatedAtMs, ...rest } = times;
  mappedAll(rest);
  return {
    id,
    status,
    model,
    selector,
    policy,
    currentWave,
    waveStartedAt: new Date(waveStartedAtMs),
    waveSucceededAt: waveSucceededAtMs === null ? null : new Date(waveSucceededAtMs),
    reason,
    createdAt: new Date(createdAtMs),
    updatedAt: new Date(updatedAtMs),
  };
}

function fromRolloutRow(row: RolloutRow): RolloutSnapshot {
  return {
    id: row.id,
    model: row.model,
    selector: row.selector,
    policy: row.policy,
    status: row.status,
    currentWave: row.currentWave,
    waveStartedAtMs: row.waveStartedAt.getTime(),
    waveSucceededAtMs: msOrNull(row.waveSucceededAt),
    createdAtMs: row.createdAt.getTime(),
    updatedAtMs: row.updatedAt.getTime(),
    reason: row.reason,
  };
}

/** A device as one element of the jsonb array the batch statements read (snake_case, ISO times). */
function toDeviceRecord(device: RolloutDevice) {
  const { deviceId, wave, status, attempts, previousModel, error, ...times } = device;
  const { lastSentAtMs, nextAttemptAtMs, committedAtMs, updatedAtMs, ...rest } = times;
  mappedAll(rest);
  return {
    device_id: deviceId,
    wave,
    status,
    attempts,
    last_sent_at: isoOrNull(lastSentAtMs),
    next_attempt_at: isoOrNull(nextAttemptAtMs),
    previous_model: previousModel,
    error,
    committed_at: isoOrNull(committedAtMs),
    updated_at: new Date(updatedAtMs).toISOString(),
  };
}

function fromDeviceRow(row: DeviceRow): RolloutDevice {
  return {
    deviceId: row.deviceId,
    wave: row.wave,
    status: row.status,
    attempts: row.attempts,
    lastSentAtMs: msOrNull(row.lastSentAt),
    nextAttemptAtMs: msOrNull(row.nextAttemptAt),
    previousModel: row.previousModel,
    error: row.error,
    committedAtMs: msOrNull(row.committedAt),
    updatedAtMs: row.updatedAt.getTime(),
  };
}

type DeviceRecord = ReturnType<typeof toDeviceRecord>;

/** The record's fields as columns of rollout_devices, with their SQL types (tsc keeps the two in step). */
const DEVICE_COLUMNS = {
  device_id: 'text',
  wave: 'integer',
  status: 'text',
  attempts: 'integer',
  last_sent_at: 'timestamptz',
  next_attempt_at: 'timestamptz',
  previous_model: 'jsonb',
  error: 'jsonb',
  committed_at: 'timestamptz',
  updated_at: 'timestamptz',
} as const satisfies Record<keyof DeviceRecord, string>;

/** The fixed parts of the batch upsert, built once from DEVICE_COLUMNS (constants only). */
const UPSERT = (() => {
  const names = Object.keys(DEVICE_COLUMNS);
  const typed = Object.entries(DEVICE_COLUMNS).map(([name, type]) => `${name} ${type}`);
  const updates = names.filter((n) => n !== 'device_id').map((n) => `${n} = excluded.${n}`);
  return {
    head: sql.raw(`insert into rollout_devices (rollout_id, ${names.join(', ')}) select `),
    select: sql.raw(`, ${names.map((n) => `d.${n}`).join(', ')} from jsonb_to_recordset(`),
    tail: sql.raw(
      `::jsonb) as d(${typed.join(', ')}) ` +
        `on conflict (rollout_id, device_id) do update set ${updates.join(', ')}`,
    ),
  };
})();

/**
 * Inserts device rows, or overwrites the ones that exist, in batches: each
 * batch is one statement reading its rows from one jsonb parameter.
 */
async function writeDevices(tx: Database, rolloutId: string, devices: RolloutDevice[]) {
  for (let i = 0; i < devices.length; i += BATCH_ROWS) {
    const records: DeviceRecord[] = devices.slice(i, i + BATCH_ROWS).map(toDeviceRecord);
    await tx.execute(
      sql`${UPSERT.head}${rolloutId}${UPSERT.select}${JSON.stringify(records)}${UPSERT.tail}`,
    );
  }
}

function emptyCounts(): StatusCounts {
  return Object.fromEntries(ROLLOUT_DEVICE_STATUSES.map((s) => [s, 0])) as StatusCounts;
}

function assertUniqueIds(devices: RolloutDevice[], what: string) {
  const seen = new Set<string>();
  for (const d of devices) {
    if (seen.has(d.deviceId)) throw new Error(`${what}: device ${d.deviceId} is listed twice`);
    seen.add(d.deviceId);
  }
}

async function lockRollout(
  tx: Database,
  id: string,
): Promise<{ rollout: RolloutSnapshot; revision: number }> {
  const [row] = await tx.select().from(rollouts).where(eq(rollouts.id, id)).for('update');
  if (!row) throw controlPlaneError('NOT_FOUND', `rollout ${id} does not exist`);
  return { rollout: fromRolloutRow(row), revision: row.revision };
}

async function countByWave(tx: Database, rollout: RolloutSnapshot): Promise<WaveCounts> {
  const rows = await tx
    .select({
      wave: rolloutDevices.wave,
      status: rolloutDevices.status,
      n: sql<number>`count(*)::int`,
    })
    .from(rolloutDevices)
    .where(eq(rolloutDevices.rolloutId, rollout.id))
    .groupBy(rolloutDevices.wave, rolloutDevices.status);
  const waves = Math.max(rollout.policy.waves.length, ...rows.map((r) => r.wave + 1));
  const counts = Array.from({ length: waves }, emptyCounts);
  for (const r of rows) counts[r.wave]![r.status] = r.n;
  return counts;
}

/**
 * `column in (...)`: parameters for a short list (the planner sees each id and
 * probes the primary key), one jsonb parameter for a long one (no limit on
 * bind parameters).
 */
function inList(column: typeof rolloutDevices.deviceId, ids: string[]): SQL {
  if (ids.length <= MAX_LISTED_IDS) return inArray(column, ids);
  return sql`${column} in (select jsonb_array_elements_text(${JSON.stringify(ids)}::jsonb))`;
}

function selectionWhere(rolloutId: string, selection: DeviceSelection): SQL | undefined {
  const { deviceIds, statuses, waves } = selection;
  return and(
    eq(rolloutDevices.rolloutId, rolloutId),
    deviceIds && inList(rolloutDevices.deviceId, deviceIds),
    statuses && inArray(rolloutDevices.status, statuses),
    waves && inArray(rolloutDevices.wave, waves),
  );
}

async function loadDevices(tx: Database, rolloutId: string, selection: DeviceSelection = {}) {
  const empty = [selection.deviceIds, selection.statuses, selection.waves].some(
    (list) => list?.length === 0,
  );
  if (empty || selection.limit === 0) return [];
  const query = tx
    .select()
    .from(rolloutDevices)
    .where(selectionWhere(rolloutId, selection))
    .orderBy(byDeviceId);
  const rows = await (selection.limit === undefined ? query : query.limit(selection.limit));
  return rows.map(fromDeviceRow);
}

/**
 * Writes a decision: checks it against what was loaded, then the rollout row,
 * the changed and new device rows, and the audit entries.
 */
async function applyChange(
  tx: Database,
  id: string,
  loaded: Map<string, RolloutDevice>,
  change: RolloutChange,
  actor: Actor,
  now: Date,
) {
  const newDevices = change.newDevices ?? [];
  if (change.rollout.id !== id)
    throw new Error(`rollout ${id}: the decision names ${change.rollout.id}`);
  assertUniqueIds([...change.changedDevices, ...newDevices], `rollout ${id}`);
  const notLoaded = change.changedDevices.find((d) => !loaded.has(d.deviceId));
  if (notLoaded)
    throw new Error(`rollout ${id}: device ${notLoaded.deviceId} was changed but not loaded`);
  if (newDevices.length > 0) {
    const existing = await tx
      .select({ deviceId: rolloutDevices.deviceId })
      .from(rolloutDevices)
      .where(
        and(
          eq(rolloutDevices.rolloutId, id),
          inList(
            rolloutDevices.deviceId,
            newDevices.map((d) => d.deviceId),
          ),
        ),
      )
      .limit(1);
    if (existing[0])
      throw controlPlaneError(
        'CONFLICT',
        `device ${existing[0].deviceId} is in rollout ${id} already`,
      );
  }
  const { id: rolloutId, ...columns } = toRolloutRow(change.rollout);
  await tx
    .update(rollouts)
    .set({ ...columns, revision: sql`${rollouts.revision} + 1` })
    .where(eq(rollouts.id, rolloutId));
  await writeDevices(tx, id, [...change.changedDevices, ...newDevices]);
  for (const entry of change.audit) {
    await appendAuditIn(tx, {
      at: now.toISOString(),
      actor,
      action: entry.action,
      subject: `rollout:${id}`,
      before: null,
      after: entry.detail,
    });
  }
}

/**
 * The selected devices after a change, in device id order. `loaded` is in
 * that order already (the query sorts, and so did the last merge), and a
 * changed device keeps its place, so only new devices call for a sort: a
 * batch of reports on a 10,000-device rollout does not sort 10,000 ids.
 */
function mergeDevices(loaded: Map<string, RolloutDevice>, change: RolloutChange) {
  const merged = new Map(loaded);
  for (const d of change.changedDevices) merged.set(d.deviceId, d);
  const newDevices = change.newDevices ?? [];
  if (newDevices.length === 0) return [...merged.values()];
  for (const d of newDevices) merged.set(d.deviceId, d);
  return [...merged.values()].sort((a, b) =>
    a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0,
  );
}

/** Counts after a change, from the counts before it (all rows were locked with the rollout). */
function countsAfter(
  before: WaveCounts,
  loaded: Map<string, RolloutDevice>,
  change: RolloutChange,
) {
  const counts = before.map((c) => ({ ...c }));
  const at = (wave: number) => (counts[wave] ??= emptyCounts());
  for (const d of change.changedDevices) {
    const old = loaded.get(d.deviceId)!;
    at(old.wave)[old.status] -= 1;
    at(d.wave)[d.status] += 1;
  }
  for (const d of change.newDevices ?? []) at(d.wave)[d.status] += 1;
  return Array.from(counts, (c) => c ?? emptyCounts());
}

export function createRolloutStore(db: Database): RolloutStore {
  /**
   * Each rollout's device rows as this store last wrote them, with the
   * revision its write left. `update` reuses them while the locked row still
   * has that revision (no other process or store changed the rollout since),
   * instead of reading every device row per batch of reports; any other
   * writer bumps the revision and the rows are read again.
   */
  const deviceCache = new Map<string, { revision: number; devices: RolloutDevice[] }>();

  return {
    create: async (snapshot, devices, actor, now) => {
      assertUniqueIds(devices, `rollout ${snapshot.id}`);
      await db.transaction(async (tx) => {
        const inserted = await tx
          .insert(rollouts)
          .values(toRolloutRow(snapshot))
          .onConflictDoNothing()
          .returning({ id: rollouts.id });
        if (inserted.length === 0)
          throw controlPlaneError('CONFLICT', `rollout ${snapshot.id} exists already`);
        await writeDevices(tx, snapshot.id, devices);
        const perWave = Array.from({ length: snapshot.policy.waves.length }, () => 0);
        for (const d of devices) perWave[d.wave] = (perWave[d.wave] ?? 0) + 1;
        await appendAuditIn(tx, {
          at: now.toISOString(),
          actor,
          action: 'rollout.create',
          subject: `rollout:${snapshot.id}`,
          before: null,
          after: {
            model: snapshot.model,
            selector: snapshot.selector,
            policy: snapshot.policy,
            status: snapshot.status,
            devices: devices.length,
            devicesPerWave: perWave,
          },
        });
      });
    },

    get: async (id) => {
      const [row] = await db.select().from(rollouts).where(eq(rollouts.id, id));
      if (!row) return null;
      return { rollout: fromRolloutRow(row), devices: await loadDevices(db, id) };
    },

    list: async ({ status, limit, cursor }) => {
      const after =
        cursor === undefined
          ? undefined
          : sql`(${rollouts.createdAt}, ${rollouts.id}) < (select created_at, id from rollouts where id = ${cursor})`;
      const rows = await db
        .select()
        .from(rollouts)
        .where(and(status === undefined ? undefined : eq(rollouts.status, status), after))
        .orderBy(desc(rollouts.createdAt), desc(rollouts.id))
        .limit(limit);
      if (rows.length === 0) return [];
      const counted = await db
        .select({
          rolloutId: rolloutDevices.rolloutId,
          status: rolloutDevices.status,
          n: sql<number>`count(*)::int`,
        })
        .from(rolloutDevices)
        .where(
          inArray(
            rolloutDevices.rolloutId,
            rows.map((r) => r.id),
          ),
        )
        .groupBy(rolloutDevices.rolloutId, rolloutDevices.status);
      const summaries = new Map(
        rows.map((r) => [r.id, { rollout: fromRolloutRow(r), deviceCounts: emptyCounts() }]),
      );
      for (const c of counted) summaries.get(c.rolloutId)!.deviceCounts[c.status] = c.n;
      return [...summaries.values()];
    },

    activeRolloutIds: async () =>
      (
        await db
          .select({ id: rollouts.id })
          .from(rollouts)
          .where(inArray(rollouts.status, ACTIVE))
          .orderBy(asc(rollouts.createdAt), asc(rollouts.id))
      ).map((r) => r.id),

    rolloutsForDevice: async (deviceId) =>
      (
        await db
          .select({ rollout: rollouts, device: rolloutDevices })
          .from(rolloutDevices)
          .innerJoin(rollouts, eq(rollouts.id, rolloutDevices.rolloutId))
          .where(and(eq(rolloutDevices.deviceId, deviceId), inArray(rollouts.status, ACTIVE)))
          .orderBy(asc(rollouts.createdAt), asc(rollouts.id))
      ).map((r) => ({ rollout: fromRolloutRow(r.rollout), device: fromDeviceRow(r.device) })),

    waveCounts: async (id) => {
      const [row] = await db.select().from(rollouts).where(eq(rollouts.id, id));
      if (!row) throw controlPlaneError('NOT_FOUND', `rollout ${id} does not exist`);
      return countByWave(db, fromRolloutRow(row));
    },

    update: async (id, fn, actor, now) => {
      let written: { revision: number; devices: RolloutDevice[] } | null = null;
      const result = await db.transaction(async (tx) => {
        const { rollout, revision } = await lockRollout(tx, id);
        const cached = deviceCache.get(id);
        const devices = cached?.revision === revision ? cached.devices : await loadDevices(tx, id);
        const change = await fn({ rollout, devices });
        if (!change) {
          if (!cached || cached.revision !== revision) deviceCache.set(id, { revision, devices });
          return null;
        }
        const loaded = new Map(devices.map((d) => [d.deviceId, d]));
        await applyChange(tx, id, loaded, change, actor, now);
        written = { revision: revision + 1, devices: mergeDevices(loaded, change) };
        return { rollout: change.rollout, devices: written.devices };
      });
      // Only once committed: a rolled-back transaction leaves the cache as it was.
      if (written) {
        const { rollout } = result!;
        if (rollout.status === 'running' || rollout.status === 'paused')
          deviceCache.set(id, written);
        else deviceCache.delete(id); // a finished rollout is not stepped again
      }
      return result;
    },

    updateDevices: (id, select, fn, actor, now) =>
      db.transaction(async (tx) => {
        const { rollout } = await lockRollout(tx, id);
        deviceCache.delete(id); // its rows change here without a full copy
        const selection = typeof select === 'function' ? select(rollout) : select;
        const devices = await loadDevices(tx, id, selection);
        const counts = await countByWave(tx, rollout);
        const change = await fn({ rollout, devices, counts });
        if (!change) return null;
        const loaded = new Map(devices.map((d) => [d.deviceId, d]));
        await applyChange(tx, id, loaded, change, actor, now);
        return {
          rollout: change.rollout,
          devices: mergeDevices(loaded, change),
          counts: countsAfter(counts, loaded, change),
        };
      }),
  };
}
