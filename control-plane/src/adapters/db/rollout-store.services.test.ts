/**
 * The rollout store's contract, on embedded PGlite (in a data dir, so the
 * suite can restart it) by default and on PostgreSQL when DATABASE_URL is set
 * (CI): rollouts read back exactly as written; a decision, its device rows
 * and its audit entries commit together or not at all; concurrent decisions
 * on one rollout serialize, also from two connection pools (two replicas);
 * and a reopened database carries on with the active rollouts.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'drizzle-orm';
import type { RolloutDevice, RolloutSnapshot } from '../../core/rollouts/rollout-types.ts';
import { openDatabase, type OpenDatabase } from './database.ts';
import { createAuditStore } from './audit-store.ts';
import { createRolloutStore, type RolloutStore } from './rollout-store.ts';

const url = process.env['DATABASE_URL'];
let dir: string;
let database: OpenDatabase;
let store: RolloutStore;

const open = async () => {
  database = await openDatabase({ url, dataDir: join(dir, 'db') });
  store = createRolloutStore(database.db);
};

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fleet-rollouts-'));
  await open();
  await database.db.execute(sql`truncate audit_log, rollout_devices, rollouts`);
});
after(async () => {
  await database.close();
  await rm(dir, { recursive: true, force: true });
});

const NOW = new Date('2026-11-26T12:00:00.123Z');
const T = NOW.getTime();
const model = { name: 'mnist', version: '1.2.0', release: 7, bundleId: 'b'.repeat(64) };

function snapshot(id: string, fields: Partial<RolloutSnapshot> = {}): RolloutSnapshot {
  return {
    id,
    model,
    selector: {
      tags: { site: 'lab', tier: 'a' },
      hardware: ['rpi4', 'jetson'],
      deviceIds: ['d-1'],
    },
    policy: {
      waves: [{ percent: 1 }, { count: 20 }, { percent: 100 }],
      bakeMs: 60_000,
      successRatio: 0.95,
      maxFailureRatio: 0.05,
      deviceTimeoutMs: 600_000,
      retries: 2,
      retryBackoffMs: 5_000,
      probationMs: 30_000,
      gates: { maxErrorRate: 0.01, maxLatencyP95Ms: 25, minMeanConfidence: 0.8 },
    },
    status: 'running',
    currentWave: 1,
    waveStartedAtMs: T - 5_000,
    waveSucceededAtMs: T - 1_001,
    createdAtMs: T - 9_999,
    updatedAtMs: T - 7,
    reason: 'wave 0 met its success share',
    ...fields,
  };
}

function device(deviceId: string, fields: Partial<RolloutDevice> = {}): RolloutDevice {
  return {
    deviceId,
    wave: 0,
    status: 'pending',
    attempts: 0,
    lastSentAtMs: null,
    nextAttemptAtMs: null,
    previousModel: null,
    error: null,
    committedAtMs: null,
    updatedAtMs: T - 9_999,
    ...fields,
  };
}

/** A device with every nullable field set. */
const fullDevice = device('d-full', {
  wave: 2,
  status: 'failed',
  attempts: 3,
  lastSentAtMs: T - 3_333,
  nextAttemptAtMs: T + 4_444,
  previousModel: { name: 'mnist', version: '1.1.0', release: 6, bundleId: 'a'.repeat(64) },
  error: { code: 'DEVICE_TIMEOUT', message: 'no report in 600 s' },
  committedAtMs: T - 2_222,
  updatedAtMs: T - 1,
});

const auditCount = async () => (await createAuditStore(database.db).list()).length;
const byId = (a: RolloutDevice, b: RolloutDevice) => (a.deviceId < b.deviceId ? -1 : 1);

describe(`rollout store (${url ? 'PostgreSQL' : 'PGlite'})`, () => {
  it('reads back every field of a rollout and its devices as created', async () => {
    const devices = [fullDevice, device('d-1'), device('d-2', { wave: 1, status: 'sent' })];
    await store.create(snapshot('r-full'), devices, 'token:op', NOW);
    assert.deepEqual(await store.get('r-full'), {
      rollout: snapshot('r-full'),
      devices: [...devices].sort(byId),
    });
    const paused = snapshot('r-nulls', {
      status: 'paused',
      selector: { all: true },
      waveSucceededAtMs: null,
      reason: null,
      createdAtMs: T - 5_000,
    });
    await store.create(paused, [device('d-1', { wave: 1 })], 'token:op', NOW);
    assert.deepEqual(await store.get('r-nulls'), {
      rollout: paused,
      devices: [device('d-1', { wave: 1 })],
    });
    assert.equal(await store.get('r-missing'), null);
    const [entry] = (await createAuditStore(database.db).list()).slice(-1);
    assert.equal(entry!.action, 'rollout.create');
    assert.equal(entry!.subject, 'rollout:r-nulls');
    assert.equal(entry!.actor, 'token:op');
    assert.deepEqual((entry!.after as { devicesPerWave: number[] }).devicesPerWave, [0, 1, 0]);
  });

  it('lists summaries newest first with device counts, and finds active rollouts', async () => {
    await store.create(
      snapshot('r-done', { status: 'completed', createdAtMs: T - 1_000 }),
      [device('d-1', { status: 'succeeded' })],
      'token:op',
      NOW,
    );
    const all = await store.list({ limit: 10 });
    assert.deepEqual(
      all.map((s) => s.rollout.id),
      ['r-done', 'r-nulls', 'r-full'],
    );
    assert.deepEqual(all[2]!.deviceCounts, {
      pending: 1,
      sent: 1,
      updating: 0,
      probation: 0,
      succeeded: 0,
      failed: 1,
      cancelled: 0,
      rolled_back: 0,
    });
    const page1 = await store.list({ limit: 2 });
    const page2 = await store.list({ limit: 2, cursor: page1[1]!.rollout.id });
    assert.deepEqual(
      [...page1, ...page2].map((s) => s.rollout.id),
      ['r-done', 'r-nulls', 'r-full'],
    );
    assert.deepEqual(
      (await store.list({ limit: 10, status: 'running' })).map((s) => s.rollout.id),
      ['r-full'],
    );
    assert.deepEqual(await store.activeRolloutIds(), ['r-full', 'r-nulls']);
    const forDevice = await store.rolloutsForDevice('d-1');
    assert.deepEqual(
      forDevice.map((r) => [r.rollout.id, r.device.wave]),
      [
        ['r-full', 0],
        ['r-nulls', 1],
      ],
    );
    assert.deepEqual(await store.rolloutsForDevice('d-nowhere'), []);
  });

  it('refuses a second rollout with the same id and writes nothing of it', async () => {
    const audits = await auditCount();
    await assert.rejects(
      store.create(snapshot('r-full', { reason: 'again' }), [device('d-new')], 'token:op', NOW),
      /CONFLICT/,
    );
    const stored = await store.get('r-full');
    assert.equal(stored!.rollout.reason, snapshot('r-full').reason);
    assert.deepEqual(await store.rolloutsForDevice('d-new'), []);
    assert.equal(await auditCount(), audits);
  });

  it('writes a decision, its device rows and its audit entries together', async () => {
    const audits = await auditCount();
    const result = await store.update(
      'r-full',
      ({ rollout, devices }) => {
        const d1 = devices.find((d) => d.deviceId === 'd-1')!;
        return {
          rollout: { ...rollout, currentWave: 2, reason: 'advanced', updatedAtMs: T },
          changedDevices: [{ ...d1, status: 'sent', attempts: 1, lastSentAtMs: T, updatedAtMs: T }],
          newDevices: [device('d-late', { wave: 2, updatedAtMs: T })],
          audit: [
            { action: 'rollout.wave-advanced', detail: { from: 1, to: 2 } },
            { action: 'rollout.device-joined', detail: { deviceId: 'd-late' } },
          ],
        };
      },
      'system',
      NOW,
    );
    const stored = await store.get('r-full');
    assert.deepEqual(stored, result);
    assert.equal(stored!.rollout.currentWave, 2);
    assert.deepEqual(
      stored!.devices.map((d) => [d.deviceId, d.status, d.attempts]),
      [
        ['d-1', 'sent', 1],
        ['d-2', 'sent', 0],
        ['d-full', 'failed', 3],
        ['d-late', 'pending', 0],
      ],
    );
    const entries = (await createAuditStore(database.db).list()).slice(audits);
    assert.deepEqual(
      entries.map((e) => [e.action, e.subject, e.actor, e.after]),
      [
        ['rollout.wave-advanced', 'rollout:r-full', 'system', { from: 1, to: 2 }],
        ['rollout.device-joined', 'rollout:r-full', 'system', { deviceId: 'd-late' }],
      ],
    );
  });

  it('changes nothing when the decision is null, throws, or fails half-way', async () => {
    const before = await store.get('r-full');
    const audits = await auditCount();
    assert.equal(await store.update('r-full', () => null, 'system', NOW), null);
    await assert.rejects(
      store.update(
        'r-full',
        () => {
          throw new Error('engine bug');
        },
        'system',
        NOW,
      ),
      /engine bug/,
    );
    // The rollout and device rows are written before the audit entry that fails
    // (a bigint has no JSON form): the transaction must take them back.
    await assert.rejects(
      store.update(
        'r-full',
        ({ rollout, devices }) => ({
          rollout: { ...rollout, status: 'aborted', reason: 'half-way' },
          changedDevices: devices.map((d) => ({ ...d, status: 'cancelled' as const })),
          newDevices: [device('d-half')],
          audit: [
            { action: 'rollout.aborted', detail: { ok: true } },
            { action: 'rollout.broken', detail: { n: 1n } },
          ],
        }),
        'system',
        NOW,
      ),
      /MALFORMED|canonical JSON/,
    );
    // A decision that re-adds an existing device is refused as a whole.
    await assert.rejects(
      store.update(
        'r-full',
        ({ rollout }) => ({
          rollout: { ...rollout, reason: 'dup' },
          changedDevices: [],
          newDevices: [device('d-1')],
          audit: [],
        }),
        'system',
        NOW,
      ),
      /CONFLICT/,
    );
    await assert.rejects(
      store.update('r-missing', () => null, 'system', NOW),
      /NOT_FOUND/,
    );
    assert.deepEqual(await store.get('r-full'), before);
    assert.equal(await auditCount(), audits);
    const verdict = await createAuditStore(database.db).verify();
    assert.equal(verdict.ok, true, JSON.stringify(verdict));
  });

  it('loads only the selected devices with per-wave counts, and keeps the counts right', async () => {
    const audits = await auditCount();
    const counts = await store.waveCounts('r-full');
    assert.equal(counts.length, 3);
    assert.deepEqual(
      counts.map((c) => [c.pending, c.sent, c.failed]),
      [
        [0, 1, 0],
        [0, 1, 0],
        [1, 0, 1],
      ],
    );
    let seen: string[] = [];
    const result = await store.updateDevices(
      'r-full',
      (rollout) => ({ waves: [rollout.currentWave], statuses: ['pending', 'failed'] }),
      ({ rollout, devices, counts: before }) => {
        seen = devices.map((d) => d.deviceId);
        assert.deepEqual(before, counts);
        const late = devices.find((d) => d.deviceId === 'd-late')!;
        return {
          rollout: { ...rollout, updatedAtMs: T + 1 },
          changedDevices: [{ ...late, status: 'sent', attempts: 1, lastSentAtMs: T + 1 }],
          newDevices: [device('d-later', { wave: 0, status: 'succeeded', committedAtMs: T })],
          audit: [],
        };
      },
      'system',
      NOW,
    );
    assert.deepEqual(seen, ['d-full', 'd-late']);
    assert.deepEqual(result!.counts, await store.waveCounts('r-full'));
    assert.deepEqual(
      result!.counts.map((c) => [c.pending, c.sent, c.succeeded, c.failed]),
      [
        [0, 1, 1, 0],
        [0, 1, 0, 0],
        [0, 1, 0, 1],
      ],
    );
    assert.deepEqual(
      result!.devices.map((d) => [d.deviceId, d.status]),
      [
        ['d-full', 'failed'],
        ['d-late', 'sent'],
        ['d-later', 'succeeded'],
      ],
    );
    assert.equal(await auditCount(), audits);
    // A device that was not loaded cannot be changed: nothing of that decision lands.
    await assert.rejects(
      store.updateDevices(
        'r-full',
        { deviceIds: ['d-2'] },
        ({ rollout }) => ({
          rollout: { ...rollout, reason: 'sneaky' },
          changedDevices: [device('d-1', { status: 'failed' })],
          audit: [],
        }),
        'system',
        NOW,
      ),
      /not loaded/,
    );
    const stored = await store.get('r-full');
    assert.equal(stored!.rollout.reason, 'advanced');
    assert.equal(stored!.devices.find((d) => d.deviceId === 'd-1')!.status, 'sent');
  });

  it('reuses its own copy of the device rows only while no other writer changed the rollout', async () => {
    await store.create(
      snapshot('r-cache', { createdAtMs: T - 2 }),
      [device('k-1'), device('k-2')],
      'system',
      NOW,
    );
    const other = url ? await openDatabase({ url }) : database;
    const replica = createRolloutStore(other.db);
    const seen: Array<Array<[string, number]>> = [];
    const bump = (target: RolloutStore, deviceId: string) =>
      target.update(
        'r-cache',
        ({ rollout, devices }) => {
          seen.push(devices.map((d) => [d.deviceId, d.attempts]));
          const d = devices.find((x) => x.deviceId === deviceId)!;
          return {
            rollout,
            changedDevices: [{ ...d, attempts: d.attempts + 1 }],
            audit: [],
          };
        },
        'system',
        NOW,
      );
    try {
      await bump(store, 'k-1'); // this store now holds the rows it wrote
      await bump(replica, 'k-2'); // another replica changes a row behind its back
      await bump(store, 'k-1'); // must see k-2's change: the revision moved
      await bump(replica, 'k-1');
      // A decision that fails after writing its rows (its audit entry has no JSON
      // form) commits nothing and leaves this store's copy right.
      await assert.rejects(
        store.update(
          'r-cache',
          ({ rollout, devices }) => ({
            rollout,
            changedDevices: devices.map((d) => ({ ...d, attempts: 99 })),
            audit: [{ action: 'rollout.broken', detail: { n: 1n } }],
          }),
          'system',
          NOW,
        ),
        /MALFORMED|canonical JSON/,
      );
      await bump(store, 'k-2');
    } finally {
      if (other !== database) await other.close();
    }
    assert.deepEqual(seen, [
      [
        ['k-1', 0],
        ['k-2', 0],
      ],
      [
        ['k-1', 1],
        ['k-2', 0],
      ],
      [
        ['k-1', 1],
        ['k-2', 1],
      ],
      [
        ['k-1', 2],
        ['k-2', 1],
      ],
      [
        ['k-1', 3],
        ['k-2', 1],
      ],
    ]);
    assert.deepEqual(
      (await store.get('r-cache'))!.devices.map((d) => [d.deviceId, d.attempts]),
      [
        ['k-1', 3],
        ['k-2', 2],
      ],
    );
    const finished = await store.update(
      'r-cache',
      ({ rollout }) => ({
        rollout: { ...rollout, status: 'completed', reason: 'done' },
        changedDevices: [],
        audit: [],
      }),
      'system',
      NOW,
    );
    assert.equal(finished!.rollout.status, 'completed');
  });

  it('serializes concurrent decisions on one rollout, also from a second replica', async () => {
    await store.create(
      snapshot('r-race', { createdAtMs: T - 1 }),
      [device('c-1'), device('c-2')],
      'system',
      NOW,
    );
    // A second connection pool on PostgreSQL: another replica. PGlite has one connection.
    const other = url ? await openDatabase({ url }) : database;
    const replicas = [store, createRolloutStore(other.db)];
    const audits = await auditCount();
    const yieldOnce = () => new Promise((resolve) => setImmediate(resolve));
    try {
      await Promise.all(
        Array.from({ length: 20 }, (_, i) => {
          const replica = replicas[i % 2]!;
          if (i % 4 < 2) {
            return replica.update(
              'r-race',
              async ({ rollout, devices }) => {
                const c1 = devices.find((d) => d.deviceId === 'c-1')!;
                await yieldOnce(); // room for a lost update, were the row not locked
                return {
                  rollout: { ...rollout, currentWave: rollout.currentWave + 1 },
                  changedDevices: [{ ...c1, attempts: c1.attempts + 1 }],
                  audit: [{ action: 'rollout.tick', detail: { i } }],
                };
              },
              'system',
              NOW,
            );
          }
          return replica.updateDevices(
            'r-race',
            { deviceIds: ['c-2'] },
            async ({ rollout, devices: [c2] }) => {
              await yieldOnce();
              return {
                rollout: { ...rollout, currentWave: rollout.currentWave + 1 },
                changedDevices: [{ ...c2!, attempts: c2!.attempts + 1 }],
                audit: [{ action: 'rollout.report', detail: { i } }],
              };
            },
            'system',
            NOW,
          );
        }),
      );
    } finally {
      if (other !== database) await other.close();
    }
    const stored = await store.get('r-race');
    assert.equal(stored!.rollout.currentWave, 1 + 20);
    assert.deepEqual(
      stored!.devices.map((d) => d.attempts),
      [10, 10],
    );
    assert.equal(await auditCount(), audits + 20);
    assert.equal((await createAuditStore(database.db).verify()).ok, true);
  });

  it('carries on with the active rollouts after the database is closed and reopened', async () => {
    const before = await store.get('r-race');
    await database.close();
    await open();
    assert.deepEqual(await store.activeRolloutIds(), ['r-full', 'r-nulls', 'r-race']);
    assert.deepEqual(await store.get('r-race'), before);
    assert.deepEqual(
      (await store.rolloutsForDevice('c-1')).map((r) => r.rollout.status),
      ['running'],
    );
    const done = await store.update(
      'r-race',
      ({ rollout }) => ({
        rollout: { ...rollout, status: 'completed', reason: 'after restart' },
        changedDevices: [],
        audit: [{ action: 'rollout.completed', detail: {} }],
      }),
      'system',
      NOW,
    );
    assert.equal(done!.rollout.status, 'completed');
    assert.deepEqual(await store.activeRolloutIds(), ['r-full', 'r-nulls']);
    assert.equal((await createAuditStore(database.db).verify()).ok, true);
  });

  it('creates a 10,000-device rollout in batches and updates one device of it', async (t) => {
    const devices = Array.from({ length: 10_000 }, (_, i) =>
      device(`big-${String(i).padStart(5, '0')}`, { wave: i < 100 ? 0 : i < 1_000 ? 1 : 2 }),
    );
    const started = performance.now();
    await store.create(snapshot('r-big', { createdAtMs: T }), devices, 'system', NOW);
    const createdMs = performance.now() - started;
    const read = performance.now();
    const stored = await store.get('r-big');
    const readMs = performance.now() - read;
    const one = performance.now();
    const result = await store.updateDevices(
      'r-big',
      { deviceIds: ['big-00042'] },
      ({ rollout, devices: [d] }) => ({
        rollout,
        changedDevices: [{ ...d!, status: 'sent', attempts: 1 }],
        audit: [],
      }),
      'system',
      NOW,
    );
    const oneMs = performance.now() - one;
    t.diagnostic(
      `10,000 devices: create ${createdMs.toFixed(0)} ms, get ${readMs.toFixed(0)} ms, ` +
        `updateDevices of one ${oneMs.toFixed(0)} ms`,
    );
    assert.equal(stored!.devices.length, 10_000);
    assert.deepEqual(stored!.devices[9_999], devices[9_999]);
    assert.deepEqual(
      result!.counts.map((c) => [c.pending, c.sent]),
      [
        [99, 1],
        [900, 0],
        [9_000, 0],
      ],
    );
    assert.deepEqual(
      (await store.list({ limit: 1 })).map((s) => s.deviceCounts.pending),
      [9_999],
    );
    // A long id list (past the per-parameter limit) selects exactly the listed devices.
    const listed = [...devices.slice(500, 2_000).map((d) => d.deviceId), 'not-in-rollout'];
    let loaded: string[] = [];
    await store.updateDevices(
      'r-big',
      { deviceIds: listed },
      ({ devices: selected }) => {
        loaded = selected.map((d) => d.deviceId);
        return null;
      },
      'system',
      NOW,
    );
    assert.deepEqual(loaded, listed.slice(0, -1));
  });
});
