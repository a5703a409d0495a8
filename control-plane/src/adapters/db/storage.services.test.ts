/**
 * The storage contract, on embedded PGlite by default and on PostgreSQL when
 * DATABASE_URL is set (CI): one suite, both databases. The audit log chains
 * (also under concurrent appends) and catches rows edited behind the
 * application's back; the registry stores keep their rules under races
 * (one token, one enrolment; one release, one registration; one first admin),
 * and every change they make is in the chain.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'drizzle-orm';
import { openDatabase, type OpenDatabase } from './database.ts';
import { createAuditStore } from './audit-store.ts';
import { createDeviceStore } from './device-store.ts';
import { createModelStore } from './model-store.ts';
import { createOperatorTokenStore } from './operator-token-store.ts';
import {
  generateKeyPair,
  keyIdOf,
  signEnrolmentRequest,
  verifyEnrolmentRequest,
  type StateMessage,
} from '@fleet/protocol';

let database: OpenDatabase;

before(async () => {
  database = await openDatabase({ url: process.env['DATABASE_URL'] });
  await database.db.execute(
    sql`truncate audit_log, device_tags, devices, enrolment_tokens, operator_tokens, model_versions, trust_roots`,
  );
});
after(() => database.close());

const change = (i: number) => ({
  at: new Date(Date.UTC(2026, 10, 26, 12, 0, i)).toISOString(),
  actor: 'token:admin',
  action: 'device.tagged',
  subject: `dev-${i}`,
  before: { tags: { n: i } },
  after: { tags: { n: i + 1, nested: { b: [1, 2], a: 'x' } } },
});

describe(`audit store (${process.env['DATABASE_URL'] ? 'PostgreSQL' : 'PGlite'})`, () => {
  it('appends entries that read back as a valid chain', async () => {
    const store = createAuditStore(database.db);
    for (let i = 0; i < 5; i++) await store.append(change(i));
    const verdict = await store.verify();
    assert.equal(verdict.ok, true);
    assert.equal(verdict.ok && verdict.count, 5);
    assert.deepEqual((await store.list())[4]!.after, change(4).after);
  });

  it('concurrent appends still form one gap-free chain', async () => {
    const store = createAuditStore(database.db);
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.append(change(10 + i))));
    const verdict = await store.verify();
    assert.equal(verdict.ok, true, JSON.stringify(verdict));
    assert.equal(verdict.ok && verdict.count, 25);
  });

  it('detects a row edited directly in the database', async () => {
    const store = createAuditStore(database.db);
    await database.db.execute(sql`update audit_log set actor = 'token:intruder' where seq = 3`);
    assert.deepEqual(await store.verify(), { ok: false, seq: 3, problem: 'edited' });
  });

  it('detects a row deleted directly in the database', async () => {
    const store = createAuditStore(database.db);
    await database.db.execute(sql`update audit_log set actor = 'token:admin' where seq = 3`);
    assert.equal((await store.verify()).ok, true); // restored
    await database.db.execute(sql`delete from audit_log where seq = 7`);
    assert.deepEqual(await store.verify(), { ok: false, seq: 8, problem: 'missing-or-reordered' });
  });
});

const NOW = new Date('2026-11-26T12:00:00Z');
const later = (ms: number) => new Date(NOW.getTime() + ms);

async function enrolment(deviceId: string, token = `enr_${'A'.repeat(43)}`) {
  const pair = generateKeyPair();
  const request = signEnrolmentRequest({
    token,
    deviceId,
    publicKey: pair.publicKey,
    hardware: 'rpi4',
    tags: { site: 'lab' },
    agentVersion: '0.1.0',
    nowMs: NOW.getTime(),
    signer: { keyId: await keyIdOf(pair.publicKey), secretKey: pair.secretKey },
  });
  return {
    verified: await verifyEnrolmentRequest(request, NOW.getTime()),
    keyId: await keyIdOf(pair.publicKey),
  };
}

function stateMessage(deviceId: string, ts: string, online: boolean): StateMessage {
  return {
    type: 'state',
    id: `s-${ts}`,
    schemaVersion: 1,
    ts,
    deviceId,
    online,
    agentVersion: '0.1.0',
    hardware: 'rpi4',
    model: null,
    update: { state: 'idle' },
  };
}

describe(`registry stores (${process.env['DATABASE_URL'] ? 'PostgreSQL' : 'PGlite'})`, () => {
  // The audit suite above tampers with its rows on purpose; start a clean chain.
  before(() => database.db.execute(sql`truncate audit_log`));

  it('one enrolment token enrols exactly one of two racing devices', async () => {
    const store = createDeviceStore(database.db);
    await store.createEnrolmentToken(
      {
        id: 'tok-1',
        tokenHash: 'h1',
        tags: { fleet: 'n' },
        hardware: null,
        expiresAt: later(60_000),
      },
      'token:admin',
      NOW,
    );
    const [a, b] = [await enrolment('race-a'), await enrolment('race-b')];
    const results = await Promise.allSettled([
      store.enrol('h1', a.verified, a.keyId, NOW),
      store.enrol('h1', b.verified, b.keyId, NOW),
    ]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    const refused = results.find((r) => r.status === 'rejected');
    assert.match(String(refused?.reason), /ENROLMENT_REFUSED/);
  });

  it('refuses ids differing only in case, and lists by tag with keyset pages', async () => {
    const store = createDeviceStore(database.db);
    await store.createEnrolmentToken(
      { id: 'tok-2', tokenHash: 'h2', tags: {}, hardware: null, expiresAt: later(60_000) },
      'token:admin',
      NOW,
    );
    const winner = (await store.list({ tags: {}, limit: 10 }))[0]!.id;
    const twin = await enrolment(winner.toUpperCase());
    await assert.rejects(store.enrol('h2', twin.verified, twin.keyId, NOW), /CONFLICT/);
    const page = await store.list({ tags: { fleet: 'n' }, limit: 10 });
    assert.deepEqual(
      page.map((d) => d.id),
      [winner],
    );
    assert.deepEqual(await store.list({ tags: { fleet: 'n' }, limit: 10, afterId: winner }), []);
    assert.deepEqual(await store.list({ tags: { fleet: 's' }, limit: 10 }), []);
  });

  it('reads the keys of several devices in one query, skipping unknown ids', async () => {
    const store = createDeviceStore(database.db);
    const [device] = await store.list({ tags: {}, limit: 1 });
    const rows = await store.getKeys([device!.id, 'nobody', device!.id.toUpperCase()]);
    assert.deepEqual(rows, [
      {
        id: device!.id,
        publicKey: device!.publicKey,
        keyId: device!.keyId,
        revokedAt: device!.revokedAt,
      },
    ]);
    assert.deepEqual(await store.getKeys([]), []);
  });

  it('lists a re-tagged device under its new tags, and no longer under its old ones', async () => {
    const store = createDeviceStore(database.db);
    const id = (await store.list({ tags: { fleet: 'n' }, limit: 1 }))[0]!.id;
    const ids = (tags: Record<string, string>, hardware?: string) =>
      store
        .list({ tags, limit: 10, ...(hardware ? { hardware } : {}) })
        .then((rows) => rows.map((d) => d.id));
    await store.editTags(id, { set: { fleet: 's', site: 'lab' } }, 'token:op', NOW);
    assert.deepEqual(await ids({ fleet: 's' }), [id]);
    assert.deepEqual(await ids({ site: 'lab', fleet: 's' }), [id]);
    assert.deepEqual(await ids({ site: 'lab' }, 'rpi4'), [id]);
    assert.deepEqual(await ids({ fleet: 'n' }), []);
    await store.editTags(id, { set: { fleet: 'n' }, remove: ['site'] }, 'token:op', NOW);
    assert.deepEqual(await ids({ fleet: 'n' }), [id]);
    assert.deepEqual(await ids({ site: 'lab' }), []);
    assert.deepEqual(await ids({ fleet: 's' }), []);
  });

  it('applies only newer state, and none after revocation', async () => {
    const store = createDeviceStore(database.db);
    const id = (await store.list({ tags: {}, limit: 1 }))[0]!.id;
    assert.equal(
      await store.applyState(id, stateMessage(id, '2026-11-26T12:00:05Z', true), NOW),
      true,
    );
    assert.equal(
      await store.applyState(id, stateMessage(id, '2026-11-26T12:00:01Z', false), NOW),
      false,
    );
    assert.equal((await store.get(id))!.online, true);
    const seenSince = { tags: {}, limit: 10, lastSeenAfter: later(-1000) };
    assert.deepEqual(
      (await store.list({ ...seenSince, status: 'online' })).map((d) => d.id),
      [id],
    );
    assert.deepEqual(await store.list({ ...seenSince, status: 'offline' }), []);
    assert.deepEqual(
      await store
        .list({ ...seenSince, tags: { fleet: 'n' }, hardware: 'rpi4' })
        .then((r) => r.map((d) => d.id)),
      [id],
    );
    assert.deepEqual(await store.list({ tags: {}, limit: 10, lastSeenBefore: later(-1000) }), []);
    assert.deepEqual(await store.countByStatus(), { online: 1, offline: 0, revoked: 0 });
    await store.revoke(id, 'token:op', NOW, 'lost');
    assert.equal(
      await store.applyState(id, stateMessage(id, '2026-11-26T12:00:09Z', true), NOW),
      false,
    );
    assert.deepEqual(await store.countByStatus(), { online: 0, offline: 0, revoked: 1 });
  });

  it('registers each release of a model once, even when two uploads race', async () => {
    const store = createModelStore(database.db);
    const row = (version: string, release: number) => ({
      bundleId: `${release}${version}`.padEnd(64, '0'),
      name: 'm',
      version,
      release,
      sizeBytes: 10,
      manifest: {},
      manifestEnvelope: '',
      signedBy: [],
      parentRelease: null,
    });
    const results = await Promise.allSettled([
      store.register(row('1.0.0', 1), 'token:a', NOW),
      store.register(row('1.0.1', 1), 'token:b', NOW),
    ]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    await assert.rejects(store.register(row('0.9.0', 1), 'token:a', NOW), /CONFLICT/);
    await store.register(row('1.1.0', 2), 'token:a', NOW);
    assert.equal(await store.latestRelease('m'), 2);
  });

  it('installs trust roots in order only', async () => {
    const store = createModelStore(database.db);
    const root = (version: number) => ({ version, envelope: 'e', expires: '2027-01-01T00:00:00Z' });
    await store.installRoot(root(1), 0, 'token:admin', NOW);
    await assert.rejects(store.installRoot(root(2), 0, 'token:admin', NOW), /CONFLICT/);
    await store.installRoot(root(2), 1, 'token:admin', NOW);
    assert.deepEqual(
      (await store.rootsAfter(0)).map((r) => r.version),
      [1, 2],
    );
  });

  it('creates the first admin once when two replicas start together', async () => {
    const store = createOperatorTokenStore(database.db);
    const token = (id: string) => ({
      id,
      tokenHash: `hash-${id}`,
      name: 'first',
      role: 'admin' as const,
    });
    const created = await Promise.all([
      store.bootstrapAdmin(token('x'), NOW),
      store.bootstrapAdmin(token('y'), NOW),
    ]);
    assert.deepEqual(created.sort(), [false, true]);
    assert.equal((await store.list()).length, 1);
  });

  it('leaves every change above in one valid audit chain', async () => {
    const entries = await createAuditStore(database.db).list();
    const actions = entries.map((e) => e.action);
    for (const a of [
      'enrolment-token.created',
      'device.enrolled',
      'device.revoked',
      'model.uploaded',
      'trust-root.rotated',
      'token.created',
    ]) {
      assert.ok(actions.includes(a), a);
    }
    assert.equal((await createAuditStore(database.db).verify()).ok, true);
  });
});

describe(`device state in batches (${process.env['DATABASE_URL'] ? 'PostgreSQL' : 'PGlite'})`, () => {
  const ids = ['batch-a', 'batch-b', 'batch-c', 'batch-d'];
  before(async () => {
    await database.db.execute(sql`delete from devices where id like 'batch-%'`);
    for (const id of ids) {
      await database.db.execute(sql`
        insert into devices (id, id_folded, public_key, key_id, hardware, tags, agent_version, enrolled_at)
        values (${id}, ${id}, 'AAAA', ${`key-${id}`}, 'rpi4', '{}'::jsonb, '0.1.0', ${NOW.toISOString()})`);
    }
  });
  after(() => database.db.execute(sql`delete from devices where id like 'batch-%'`));

  const at = (seconds: number) => new Date(Date.UTC(2026, 10, 26, 13, 0, seconds)).toISOString();
  const update = (id: string, seconds: number, online: boolean, now = NOW) => ({
    id,
    state: stateMessage(id, at(seconds), online),
    now,
  });

  it('applies a batch as one by one would, in order, and stores the newest of each device', async () => {
    const store = createDeviceStore(database.db);
    const modelState = {
      ...stateMessage('batch-b', at(2), true),
      model: { name: 'digits', version: '1.2.0', release: 7, bundleId: 'b'.repeat(64) },
      update: { state: 'probation' as const },
    };
    assert.deepEqual(
      await store.applyStates([
        update('batch-a', 5, true),
        update('batch-a', 3, false), // older than the one before it: not applied
        { id: 'batch-b', state: modelState, now: later(2_000) },
        update('batch-c', 1, false),
        update('batch-c', 4, true), // newer than the one before it: applied too
        update('ghost', 9, true), // no such device
      ]),
      [true, false, true, true, true, false],
    );
    const a = (await store.get('batch-a'))!;
    assert.equal(a.online, true);
    assert.equal(a.stateAt?.toISOString(), at(5));
    const b = (await store.get('batch-b'))!;
    assert.deepEqual(
      [b.modelName, b.modelVersion, b.modelRelease, b.bundleId, b.updateState, b.online],
      ['digits', '1.2.0', 7, 'b'.repeat(64), 'probation', true],
    );
    assert.equal(b.lastSeenAt?.toISOString(), later(2_000).toISOString());
    const c = (await store.get('batch-c'))!;
    assert.equal(c.stateAt?.toISOString(), at(4));
    assert.equal(c.online, true);
    assert.equal((await store.get('batch-d'))!.stateAt, null, 'a device not in the batch');
  });

  it('refuses stale and revoked devices’ states in a batch, and applies the rest', async () => {
    const store = createDeviceStore(database.db);
    await database.db.execute(
      sql`update devices set revoked_at = ${NOW.toISOString()} where id = 'batch-d'`,
    );
    assert.deepEqual(
      await store.applyStates([
        update('batch-a', 5, false), // the same send time as stored: not newer
        update('batch-b', 1, false), // older than stored
        update('batch-c', 6, false),
        update('batch-d', 9, true), // revoked
      ]),
      [false, false, true, false],
    );
    assert.equal((await store.get('batch-a'))!.online, true);
    assert.equal((await store.get('batch-c'))!.online, false);
    assert.equal((await store.get('batch-d'))!.stateAt, null);
    assert.deepEqual(await store.applyStates([]), []);
  });
});
