/**
 * The device registry's use cases: enrolment tokens, enrolment, listing,
 * tagging, revocation, and keeping connection and model state current from
 * what devices report (signed `state` messages, retained and as last will).
 *
 * Enrolment, in order; the first failure throws and nothing changes:
 *   1. request     protocol `verifyEnrolmentRequest`: size, fields, a valid
 *                  signature by the key it carries (proof of possession), time
 *   2. token       shaped like one, then (in the store's transaction, row
 *                  locked) known, unused, unexpired, for this hardware class
 *   3. identity    device id free, compared case-insensitively
 *   4. record      device row, token consumed, audit entry: one transaction
 */
import {
  fromBase64,
  keyIdOf,
  verifyDeviceMessage,
  verifyEnrolmentRequest,
  type StateMessage,
} from '@fleet/protocol';
import { hashToken, issueToken } from '../core/auth/operator-tokens.ts';
import {
  DEFAULT_ENROLMENT_TOKEN_TTL_MS,
  MAX_ENROLMENT_TOKEN_TTL_MS,
} from '../core/devices/enrolment-policy.ts';
import { encodeCursor, type DeviceQuery } from '../core/devices/device-query.ts';
import { controlPlaneError } from '../core/errors.ts';
import type { Actor } from '../adapters/db/actor.ts';
import DataLoader from 'dataloader';
import type {
  DeviceKeyRow,
  DeviceRow,
  DeviceStore,
  StateUpdate,
} from '../adapters/db/device-store.ts';

export interface CreatedEnrolmentToken {
  id: string;
  /** Shown once. */
  token: string;
  expiresAt: Date;
  tags: Record<string, string>;
  hardware: string | null;
}

/** A page whose devices are already the API's JSON array of device views. */
export interface DeviceViewPage {
  devicesJson: string;
  nextCursor: string | null;
}

export interface DeviceRegistry {
  createEnrolmentToken(
    options: { ttlMs?: number; tags?: Record<string, string>; hardware?: string | null },
    actor: Actor,
  ): Promise<CreatedEnrolmentToken>;
  enrol(requestBytes: Uint8Array): Promise<DeviceRow>;
  get(id: string): Promise<DeviceRow>;
  /** One page of devices in id order, as the API shows them: the database renders the views. */
  listViews(query: DeviceQuery): Promise<DeviceViewPage>;
  editTags(
    id: string,
    edit: { set?: Record<string, string>; remove?: string[] },
    actor: Actor,
  ): Promise<DeviceRow>;
  revoke(id: string, actor: Actor, reason: string): Promise<DeviceRow>;
  /**
   * Public key of a device that may connect (null when unknown); for the
   * broker and every device message. Cached per device (see KEY_CACHE_TTL_MS).
   */
  lookup(id: string): Promise<{ publicKey: Uint8Array; revoked: boolean; keyId: string } | null>;
  /**
   * A payload that arrived on `fleet/v1/dev/{id}/state`: verified against the
   * device's key, then applied if newer. Throws FleetError when refused.
   */
  onStateMessage(deviceId: string, payload: Uint8Array): Promise<boolean>;
  onConnection(deviceId: string, online: boolean): Promise<void>;
  /** Calls `listener` with every state message that passed verification (applied or stale), after it is stored. */
  observeState(listener: (deviceId: string, message: StateMessage) => Promise<void>): void;
}

/**
 * How long a looked-up device key and revocation flag are reused. Keys never
 * change; revocation through this registry drops the entry at once, and one
 * made through another replica (same database) is seen here within this time.
 * Every device message is verified against its key, so without the cache each
 * one costs a database read.
 */
export const KEY_CACHE_TTL_MS = 30_000;
/** Devices whose keys are kept; past it the oldest entry goes. */
const KEY_CACHE_MAX = 100_000;
/** Most device keys read in one query. */
const KEY_READ_BATCH_MAX = 500;
/**
 * How long a key read waits for other lookups to join it. Dispatched at
 * once (setImmediate), a read took only the lookups of the same turn of the
 * event loop: 1.0 id a query, 2,400 queries for 2,500 CONNECTs on PGlite
 * (bench:control-plane's connects), whose queries run on this thread. With
 * this window: 6.4 ids a query and 1,893 connects/s against 1,064 (one
 * script run each, PGlite, 100,000 devices). A lone CONNECT waits 1 ms more.
 */
const KEY_READ_WINDOW_MS = 1;
/** Most state messages applied in one statement. */
const STATE_WRITE_BATCH_MAX = 500;
/**
 * How long a state write waits for others to join it. Without it a write
 * that finishes quickly leaves the next to the few messages that arrived
 * meanwhile: 2.8 a statement in a 1,000-device rollout. State is telemetry;
 * 10 ms later is not noticed.
 */
const STATE_WRITE_WINDOW_MS = 10;

type DeviceKey = { publicKey: Uint8Array; revoked: boolean; keyId: string };

export function createDeviceRegistry(deps: {
  store: DeviceStore;
  nowMs: () => number;
  /** Drops a revoked device's live MQTT connection (embedded broker). */
  disconnect?: (deviceId: string) => void;
  randomBytes?: (n: number) => Uint8Array;
}): DeviceRegistry {
  const { store, nowMs } = deps;
  const stateListeners: Array<(deviceId: string, message: StateMessage) => Promise<void>> = [];
  const now = () => new Date(nowMs());
  const keys = new Map<string, { key: DeviceKey; atMs: number }>();

  // Lookups that miss the cache are batched: while one read is in flight, the
  // ids asked for meanwhile wait and go in the next read, one query for all,
  // and a read waits KEY_READ_WINDOW_MS for company. A fleet reconnecting at
  // once (after a broker restart) costs a few queries instead of one per
  // device.
  let reading: Promise<unknown> = Promise.resolve();
  const loader = new DataLoader<string, DeviceKeyRow | null>(
    async (ids) => {
      const read = store.getKeys(ids);
      reading = read.catch(() => undefined);
      const rows = new Map((await read).map((row) => [row.id, row]));
      return ids.map((id) => rows.get(id) ?? null);
    },
    {
      cache: false, // the key cache below is the cache, with its expiry
      maxBatchSize: KEY_READ_BATCH_MAX,
      batchScheduleFn: (dispatch) =>
        void reading.then(() => setTimeout(dispatch, KEY_READ_WINDOW_MS)),
    },
  );

  // State messages are applied in batches the same way: those arriving while
  // one write is in flight, or within STATE_WRITE_WINDOW_MS, go together in
  // the next statement. A rollout sends six per device, and one statement
  // per message cost about 1 ms of PGlite's time each, against 35-100 us per
  // row batched (DeviceStore `applyStates`). A batch that fails is retried
  // message by message, so one message the database refuses cannot fail the
  // others with it.
  let writing: Promise<unknown> = Promise.resolve();
  const stateWriter = new DataLoader<StateUpdate, boolean>(
    async (updates) => {
      const write = store.applyStates(updates);
      writing = write.catch(() => undefined);
      try {
        return await write;
      } catch (error) {
        if (updates.length === 1) throw error;
        return Promise.all(
          updates.map((u) => store.applyState(u.id, u.state, u.now).catch((e: Error) => e)),
        );
      }
    },
    {
      cache: false,
      maxBatchSize: STATE_WRITE_BATCH_MAX,
      batchScheduleFn: (dispatch) =>
        void writing.then(() => setTimeout(dispatch, STATE_WRITE_WINDOW_MS)),
    },
  );

  async function lookupKey(id: string): Promise<DeviceKey | null> {
    const cached = keys.get(id);
    if (cached && nowMs() - cached.atMs < KEY_CACHE_TTL_MS) return cached.key;
    const row = await loader.load(id);
    if (!row) return null; // not cached: the device may enrol any moment
    const key = {
      publicKey: fromBase64(row.publicKey),
      revoked: row.revokedAt !== null,
      keyId: row.keyId,
    };
    keys.delete(id);
    if (keys.size >= KEY_CACHE_MAX) keys.delete(keys.keys().next().value!);
    keys.set(id, { key, atMs: nowMs() });
    return key;
  }

  return {
    async createEnrolmentToken(options, actor) {
      const ttlMs = options.ttlMs ?? DEFAULT_ENROLMENT_TOKEN_TTL_MS;
      if (!Number.isSafeInteger(ttlMs) || ttlMs < 1000 || ttlMs > MAX_ENROLMENT_TOKEN_TTL_MS) {
        throw controlPlaneError('INVALID_REQUEST', 'ttlSeconds: between 1 second and 30 days');
      }
      const issued = await issueToken('enrolment', deps.randomBytes);
      const id = issued.tokenHash.slice(0, 16);
      const at = now();
      const expiresAt = new Date(at.getTime() + ttlMs);
      const tags = options.tags ?? {};
      const hardware = options.hardware ?? null;
      await store.createEnrolmentToken(
        { id, tokenHash: issued.tokenHash, tags, hardware, expiresAt },
        actor,
        at,
      );
      return { id, token: issued.secret, expiresAt, tags, hardware };
    },

    async enrol(requestBytes) {
      const at = now();
      const enrolment = await verifyEnrolmentRequest(requestBytes, at.getTime()); // 1
      const tokenHash = await hashToken('enrolment', enrolment.request.token); // 2
      if (!tokenHash) throw controlPlaneError('ENROLMENT_REFUSED', 'enrolment token is malformed');
      const keyId = await keyIdOf(enrolment.publicKey);
      return store.enrol(tokenHash, enrolment, keyId, at); // 2-4
    },

    async get(id) {
      const row = await store.get(id);
      if (!row) throw controlPlaneError('NOT_FOUND', `device ${id} is not enrolled`);
      return row;
    },

    async listViews(query) {
      const rows = await store.listViews({ ...query, limit: query.limit + 1 });
      const page = rows.slice(0, query.limit);
      const more = rows.length > query.limit;
      return {
        devicesJson: `[${page.map((row) => row.view).join(',')}]`,
        nextCursor: more ? encodeCursor(page.at(-1)!.id) : null,
      };
    },

    editTags: (id, edit, actor) => store.editTags(id, edit, actor, now()),

    async revoke(id, actor, reason) {
      const row = await store.revoke(id, actor, now(), reason);
      keys.delete(id);
      deps.disconnect?.(id); // after the commit: a reconnect is refused by then
      return row;
    },

    lookup: lookupKey,

    async onStateMessage(deviceId, payload) {
      const device = await lookupKey(deviceId);
      if (!device) throw controlPlaneError('NOT_FOUND', `state from unknown device ${deviceId}`);
      if (device.revoked)
        throw controlPlaneError('REVOKED', `state from revoked device ${deviceId}`);
      const message = await verifyDeviceMessage(payload, {
        expectedDeviceId: deviceId,
        publicKey: device.publicKey,
        keyId: device.keyId,
      });
      if (message.type !== 'state') {
        throw controlPlaneError('INVALID_REQUEST', `a ${message.type} message on the state topic`);
      }
      const applied = await stateWriter.load({ id: deviceId, state: message, now: now() });
      for (const listener of stateListeners) await listener(deviceId, message);
      return applied;
    },

    observeState(listener) {
      stateListeners.push(listener);
    },

    onConnection: (deviceId, online) => store.markConnection(deviceId, online, now()),
  };
}
