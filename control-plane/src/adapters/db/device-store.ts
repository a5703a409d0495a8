/**
 * Devices and their enrolment tokens in the database. Every operator-visible
 * change (token created, device enrolled, tagged, revoked) commits in one
 * transaction with its audit entry. Connection and model state reported by the
 * device itself is applied without an audit entry (it is telemetry, and would
 * flood the log), and only when newer than what is stored.
 */
import { and, eq, isNull, ne, or, sql } from 'drizzle-orm';
import { toBase64, type StateMessage, type VerifiedEnrolment } from '@fleet/protocol';
import { deviceTags, devices, enrolmentTokens } from '../../db/schema/index.ts';
import {
  checkEnrolmentToken,
  editTags,
  enrolledTags,
} from '../../core/devices/enrolment-policy.ts';
import type { DeviceQuery } from '../../core/devices/device-query.ts';
import { createDeviceLister, createDeviceViewLister } from './device-listing.ts';
import { controlPlaneError } from '../../core/errors.ts';
import { appendAuditIn } from './audit-store.ts';
import { deviceActor, type Actor } from './actor.ts';
import type { Database } from './database.ts';

export type DeviceRow = typeof devices.$inferSelect;

export interface NewEnrolmentToken {
  id: string;
  tokenHash: string;
  tags: Record<string, string>;
  hardware: string | null;
  expiresAt: Date;
}

export interface DeviceStore {
  createEnrolmentToken(token: NewEnrolmentToken, actor: Actor, now: Date): Promise<void>;
  /** Consumes the token and creates the device, or throws and changes nothing. */
  enrol(
    tokenHash: string,
    enrolment: VerifiedEnrolment,
    keyId: string,
    now: Date,
  ): Promise<DeviceRow>;
  get(id: string): Promise<DeviceRow | null>;
  /** The keys and revocation of the devices among `ids` that exist, in one query. */
  getKeys(ids: readonly string[]): Promise<DeviceKeyRow[]>;
  list(query: DeviceQuery): Promise<DeviceRow[]>;
  /** `list`, each row as its API view in JSON text (device-view-sql.ts), with its id. */
  listViews(query: DeviceQuery): Promise<{ id: string; view: string }[]>;
  editTags(
    id: string,
    edit: { set?: Record<string, string>; remove?: string[] },
    actor: Actor,
    now: Date,
  ): Promise<DeviceRow>;
  revoke(id: string, actor: Actor, now: Date, reason: string): Promise<DeviceRow>;
  /** Applies a verified state message if it is newer than the last one applied. */
  applyState(id: string, state: StateMessage, now: Date): Promise<boolean>;
  /**
   * `applyState` for many messages, in one statement (a few when a device has
   * several): whether each applied, in order. The result is the one applying
   * them one by one in this order would give.
   */
  applyStates(updates: readonly StateUpdate[]): Promise<boolean[]>;
  /** Records a connect or disconnect the broker saw. */
  markConnection(id: string, online: boolean, now: Date): Promise<void>;
  /**
   * Records the labelled samples a device reports holding (health
   * `feedback.stored`), and `now` as when it changed; writes nothing when the
   * count is the one stored. Whether it wrote.
   */
  recordLabelledSamples(id: string, count: number, now: Date): Promise<boolean>;
  /** Device counts by status, for metrics. */
  countByStatus(): Promise<Record<'online' | 'offline' | 'revoked', number>>;
}

/** What the audit log keeps of a device: identity and operator-set fields. */
function auditView(row: DeviceRow) {
  return {
    id: row.id,
    keyId: row.keyId,
    hardware: row.hardware,
    tags: row.tags,
    revokedAt: row.revokedAt?.toISOString() ?? null,
  };
}

/** Rows of device_tags for a device's tag map. */
const tagRows = (device: { id: string; hardware: string; tags: Record<string, string> }) =>
  Object.entries(device.tags).map(([key, value]) => ({
    deviceId: device.id,
    key,
    value,
    hardware: device.hardware,
  }));

/** One state message to apply (`applyStates`). */
export interface StateUpdate {
  id: string;
  state: StateMessage;
  now: Date;
}

/**
 * Groups `updates` into rounds holding each device at most once, in arrival
 * order: an UPDATE ... FROM that matched one row twice would apply one of
 * the two arbitrarily. Round r holds every device's r-th update.
 */
function rounds(updates: readonly StateUpdate[]): number[][] {
  const result: number[][] = [];
  const seen = new Map<string, number>();
  updates.forEach((update, index) => {
    const round = seen.get(update.id) ?? 0;
    seen.set(update.id, round + 1);
    (result[round] ??= []).push(index);
  });
  return result;
}

/** `db.execute`'s rows: PGlite answers `{ rows }`, postgres.js an array of them. */
function rowsOf<T>(result: unknown): T[] {
  return Array.isArray(result) ? (result as T[]) : ((result as { rows?: T[] }).rows ?? []);
}

/** What a key lookup reads of a device. */
export type DeviceKeyRow = Pick<DeviceRow, 'id' | 'publicKey' | 'keyId' | 'revokedAt'>;

export function createDeviceStore(db: Database): DeviceStore {
  async function applyStates(updates: readonly StateUpdate[]): Promise<boolean[]> {
    // One statement for many devices: a state write costs about 1 ms of
    // PGlite's time alone and 35-100 us per row in batches of 100-16
    // (simulator/bench/README.md); a rollout sends six per device. Retained
    // and QoS 1 messages arrive again; only a newer send time applies.
    const applied = updates.map(() => false);
    for (const round of rounds(updates)) {
      const rows = round.map((index) => {
        const { id, state, now } = updates[index]!;
        return {
          id,
          online: state.online,
          last_seen_at: now.toISOString(),
          // Through Date, as a single update compared it: milliseconds.
          state_at: new Date(state.ts).toISOString(),
          agent_version: state.agentVersion,
          model_name: state.model?.name ?? null,
          model_version: state.model?.version ?? null,
          model_release: state.model?.release ?? null,
          bundle_id: state.model?.bundleId ?? null,
          update_state: state.update.state,
        };
      });
      const result = await db.execute(sql`
        update ${devices} set
          online = v.online, last_seen_at = v.last_seen_at, state_at = v.state_at,
          agent_version = v.agent_version, model_name = v.model_name,
          model_version = v.model_version, model_release = v.model_release,
          bundle_id = v.bundle_id, update_state = v.update_state
        from json_to_recordset(${JSON.stringify(rows)}::json) as v(
          id text, online boolean, last_seen_at timestamptz, state_at timestamptz,
          agent_version text, model_name text, model_version text, model_release integer,
          bundle_id text, update_state text)
        where ${devices.id} = v.id and ${devices.revokedAt} is null
          and (${devices.stateAt} is null or ${devices.stateAt} < v.state_at)
        returning ${devices.id}`);
      const done = new Set(rowsOf<{ id: string }>(result).map((row) => row.id));
      for (const index of round) applied[index] = done.has(updates[index]!.id);
    }
    return applied;
  }

  // The hottest query (API lookups, broker CONNECT): prepared once.
  const byId = db
    .select()
    .from(devices)
    .where(eq(devices.id, sql.placeholder('id')))
    .prepare('fleet_device_by_id');
  // Key lookups of many devices at once (a fleet reconnecting after an outage).
  const keysByIds = db
    .select({
      id: devices.id,
      publicKey: devices.publicKey,
      keyId: devices.keyId,
      revokedAt: devices.revokedAt,
    })
    .from(devices)
    .where(sql`${devices.id} = any(${sql.placeholder('ids')})`)
    .prepare('fleet_device_keys_by_ids');

  async function mustGet(tx: Database, id: string): Promise<DeviceRow> {
    const [row] = await tx.select().from(devices).where(eq(devices.id, id)).for('update');
    if (!row) throw controlPlaneError('NOT_FOUND', `device ${id} is not enrolled`);
    return row;
  }

  return {
    createEnrolmentToken: (token, actor, now) =>
      db.transaction(async (tx) => {
        await tx.insert(enrolmentTokens).values({ ...token, createdBy: actor, createdAt: now });
        await appendAuditIn(tx, {
          at: now.toISOString(),
          actor,
          action: 'enrolment-token.created',
          subject: `enrolment-token:${token.id}`,
          before: null,
          after: {
            tags: token.tags,
            hardware: token.hardware,
            expiresAt: token.expiresAt.toISOString(),
          },
        });
      }),

    enrol: (tokenHash, { request, publicKey }, keyId, now) =>
      db.transaction(async (tx) => {
        // Row lock: two devices racing with one token cannot both consume it.
        const [token] = await tx
          .select()
          .from(enrolmentTokens)
          .where(eq(enrolmentTokens.tokenHash, tokenHash))
          .for('update');
        checkEnrolmentToken(token ?? null, request.hardware, now.getTime());
        const idFolded = request.deviceId.toLowerCase();
        const [taken] = await tx
          .select({ id: devices.id })
          .from(devices)
          .where(eq(devices.idFolded, idFolded));
        if (taken)
          throw controlPlaneError(
            'CONFLICT',
            `device id ${request.deviceId} is taken (as ${taken.id})`,
          );
        const [row] = await tx
          .insert(devices)
          .values({
            id: request.deviceId,
            idFolded,
            publicKey: toBase64(publicKey),
            keyId,
            hardware: request.hardware,
            tags: enrolledTags(token!.tags, request.tags),
            agentVersion: request.agentVersion,
            enrolledAt: now,
          })
          .returning();
        const tagged = tagRows(row!);
        if (tagged.length > 0) await tx.insert(deviceTags).values(tagged);
        await tx
          .update(enrolmentTokens)
          .set({ usedAt: now, usedBy: request.deviceId })
          .where(eq(enrolmentTokens.id, token!.id));
        await appendAuditIn(tx, {
          at: now.toISOString(),
          actor: deviceActor(request.deviceId),
          action: 'device.enrolled',
          subject: `device:${request.deviceId}`,
          before: null,
          after: { ...auditView(row!), enrolmentToken: token!.id },
        });
        return row!;
      }),

    get: async (id) => (await byId.execute({ id }))[0] ?? null,

    getKeys: (ids) => keysByIds.execute({ ids: [...ids] }),

    list: createDeviceLister(db),
    listViews: createDeviceViewLister(db),

    editTags: (id, edit, actor, now) =>
      db.transaction(async (tx) => {
        const before = await mustGet(tx, id);
        const tags = editTags(before.tags, edit);
        const [after] = await tx
          .update(devices)
          .set({ tags })
          .where(eq(devices.id, id))
          .returning();
        // The listing's tag index follows in the same transaction.
        await tx.delete(deviceTags).where(eq(deviceTags.deviceId, id));
        const tagged = tagRows(after!);
        if (tagged.length > 0) await tx.insert(deviceTags).values(tagged);
        await appendAuditIn(tx, {
          at: now.toISOString(),
          actor,
          action: 'device.tagged',
          subject: `device:${id}`,
          before: auditView(before),
          after: auditView(after!),
        });
        return after!;
      }),

    revoke: (id, actor, now, reason) =>
      db.transaction(async (tx) => {
        const before = await mustGet(tx, id);
        if (before.revokedAt)
          throw controlPlaneError('CONFLICT', `device ${id} is already revoked`);
        const [after] = await tx
          .update(devices)
          .set({ revokedAt: now, online: false })
          .where(eq(devices.id, id))
          .returning();
        await appendAuditIn(tx, {
          at: now.toISOString(),
          actor,
          action: 'device.revoked',
          subject: `device:${id}`,
          before: auditView(before),
          after: { ...auditView(after!), reason },
        });
        return after!;
      }),

    async applyState(id, state, now) {
      return (await applyStates([{ id, state, now }]))[0]!;
    },

    applyStates,

    async countByStatus() {
      const [row] = await db
        .select({
          online: sql<number>`count(*) filter (where ${devices.online} and ${devices.revokedAt} is null)::int`,
          offline: sql<number>`count(*) filter (where not ${devices.online} and ${devices.revokedAt} is null)::int`,
          revoked: sql<number>`count(*) filter (where ${devices.revokedAt} is not null)::int`,
        })
        .from(devices);
      return row ?? { online: 0, offline: 0, revoked: 0 };
    },

    async markConnection(id, online, now) {
      await db
        .update(devices)
        .set({ online, lastSeenAt: now })
        .where(and(eq(devices.id, id), isNull(devices.revokedAt)));
    },

    async recordLabelledSamples(id, count, now) {
      // Every health report carries the count; the row is written only when it changed.
      const updated = await db
        .update(devices)
        .set({ labelledSamples: count, labelledSamplesAt: now })
        .where(
          and(
            eq(devices.id, id),
            isNull(devices.revokedAt),
            or(isNull(devices.labelledSamples), ne(devices.labelledSamples, count)),
          ),
        )
        .returning({ id: devices.id });
      return updated.length > 0;
    },
  };
}
