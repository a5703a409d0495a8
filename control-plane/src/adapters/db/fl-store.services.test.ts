/**
 * The federated round store's contract, on embedded PGlite (in a data dir,
 * so the suite can reopen it) by default and on PostgreSQL when DATABASE_URL
 * is set (CI): a round reads back exactly as written; a change, its answer
 * rows and its audit entries commit together or not at all; a stale revision
 * is refused; an update id is stored once; listings page newest first; a
 * reopened database still lists the rounds to resume.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'drizzle-orm';
import { createRound } from '../../core/fl/round-machine.ts';
import { defaultRoundConfig } from '../../core/fl/round-config.ts';
import { openDatabase, type OpenDatabase } from './database.ts';
import { createAuditStore } from './audit-store.ts';
import { createFlStore, type FlStore } from './fl-store.ts';

const url = process.env['DATABASE_URL'];
let dir: string;
let database: OpenDatabase;
let store: FlStore;

const open = async () => {
  database = await openDatabase({ url, dataDir: join(dir, 'db') });
  store = createFlStore(database.db);
};

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fleet-fl-'));
  await open();
  await database.db.execute(sql`truncate audit_log, fl_updates, fl_rounds`);
});
after(async () => {
  await database.close();
  await rm(dir, { recursive: true, force: true });
});

const T = Date.parse('2026-11-26T12:00:00.123Z');
const model = { name: 'mnist-2nn', version: '1.2.0', release: 5, bundleId: 'b'.repeat(64) };

function round(id: string, createdAtMs = T) {
  const snapshot = createRound({
    roundId: id,
    baseBundleId: model.bundleId,
    config: { ...defaultRoundConfig, strategy: { kind: 'trimmed-mean', beta: 0.1 } },
    promotion: { riskTier: 'low', autoPromote: true },
    nowMs: createdAtMs,
  });
  return {
    id,
    modelName: model.name,
    baseBundleId: model.bundleId,
    snapshot,
    settings: {
      model,
      evalSet: 'holdout',
      target: { tags: { site: 'lab' } },
      rollout: { waves: '10%,all' },
    },
    trigger: { kind: 'drift' as const, detail: 'alert-1' },
    outbox: [],
    outcome: {},
    createdBy: 'token:t1',
  };
}

const answerRow = (updateId: string) => ({
  updateId,
  deviceId: 'd-1',
  status: 'accepted' as const,
  sampleCount: 120,
  metrics: { lossBefore: 0.5, lossAfter: null },
  blobId: 'a'.repeat(64),
  norm: 1.5,
  scale: 2 / 3,
  reason: null,
  receivedAtMs: T + 5,
});

describe('fl store', () => {
  it('reads a round back exactly as written, with its audit entry', async () => {
    const written = await store.create(
      round('fl-store-0001'),
      [{ action: 'fl.round-created', detail: { a: 1 } }],
      'token:t1',
      new Date(T),
    );
    const read = await store.get('fl-store-0001');
    assert.deepEqual(read, written);
    assert.deepEqual(read?.snapshot, round('fl-store-0001').snapshot);
    assert.equal(read?.revision, 0);
    assert.equal(read?.createdAtMs, T);
    const audit = await createAuditStore(database.db).list();
    assert.equal(audit.at(-1)!.action, 'fl.round-created');
    assert.equal(audit.at(-1)!.subject, 'fl-store-0001');
    await assert.rejects(store.create(round('fl-store-0001'), [], 'x', new Date(T)), {
      code: 'CONFLICT',
    });
  });

  it('writes a change with its answer rows and audit entries, bumping the revision', async () => {
    const before = (await store.get('fl-store-0001'))!;
    const snapshot = { ...before.snapshot, status: 'collecting' as const, selected: ['d-1'] };
    const after = await store.update(
      before.id,
      () => ({
        snapshot,
        outbox: [{ type: 'evaluate', roundId: before.id, candidateId: 'c-1' }],
        outcome: { weightsBlobId: 'f'.repeat(64) },
        updates: [answerRow('upd-00000001')],
        audit: [{ action: 'fl.update-rejected', detail: { reason: 'x' } }],
      }),
      'device:d-1',
      new Date(T + 10),
    );
    assert.equal(after!.revision, 1);
    assert.equal(after!.status, 'collecting');
    assert.deepEqual(after!.outbox, [{ type: 'evaluate', roundId: before.id, candidateId: 'c-1' }]);
    assert.deepEqual(await store.updates(before.id), [
      { ...answerRow('upd-00000001'), roundId: before.id },
    ]);
    assert.equal(await store.hasUpdate('upd-00000001'), true);
    assert.equal(await store.hasUpdate('upd-00000002'), false);
    assert.deepEqual(await store.updates(before.id, 'failed'), []);
  });

  it('changes nothing when fn returns null or throws, a revision is stale, or an update id repeats', async () => {
    const id = 'fl-store-0001';
    const before = (await store.get(id))!;
    assert.equal(await store.update(id, () => null, 'x', new Date(T)), null);
    await assert.rejects(
      store.update(
        id,
        () => {
          throw new Error('no');
        },
        'x',
        new Date(T),
      ),
      /no/,
    );
    await assert.rejects(
      store.update(
        id,
        (c) => ({ snapshot: c.snapshot, outbox: [] }),
        'x',
        new Date(T),
        before.revision - 1,
      ),
      { code: 'CONFLICT' },
    );
    const audits = (await createAuditStore(database.db).list()).length;
    await assert.rejects(
      store.update(
        id,
        (c) => ({
          snapshot: { ...c.snapshot, status: 'failed' },
          outbox: [],
          updates: [answerRow('upd-00000001')],
          audit: [{ action: 'fl.x', detail: null }],
        }),
        'x',
        new Date(T),
      ),
    );
    assert.deepEqual(await store.get(id), before);
    assert.equal((await createAuditStore(database.db).list()).length, audits);
    await assert.rejects(
      store.update('fl-missing-01', () => null, 'x', new Date(T)),
      { code: 'NOT_FOUND' },
    );
  });

  it('lists newest first with a cursor and a status filter, and keeps resumable rounds across a reopen', async () => {
    await store.create(round('fl-store-0002', T + 1000), [], 'x', new Date(T + 1000));
    await store.create(round('fl-store-0003', T + 2000), [], 'x', new Date(T + 2000));
    const final = (await store.get('fl-store-0003'))!;
    await store.update(
      final.id,
      (c) => ({ snapshot: { ...c.snapshot, status: 'cancelled' }, outbox: [] }),
      'x',
      new Date(T + 3000),
    );
    const first = await store.list({ limit: 2 });
    assert.deepEqual(
      first.map((r) => r.id),
      ['fl-store-0003', 'fl-store-0002'],
    );
    const next = await store.list({ limit: 2, cursor: 'fl-store-0002' });
    assert.deepEqual(
      next.map((r) => r.id),
      ['fl-store-0001'],
    );
    assert.deepEqual(
      (await store.list({ limit: 10, status: 'cancelled' })).map((r) => r.id),
      ['fl-store-0003'],
    );
    await database.close();
    await open();
    assert.deepEqual(await store.resumableIds(), ['fl-store-0001', 'fl-store-0002']);
  });
});
