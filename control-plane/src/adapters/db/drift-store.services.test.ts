/**
 * The drift store's contract, on in-memory PGlite by default and on
 * PostgreSQL when DATABASE_URL is set (CI): flushes stored once (a replayed
 * id or a reused device seq stores nothing), signal bytes read back exactly,
 * a window scored once (also by two connection pools at once), its scores,
 * alerts and audit entries committed together or not at all, late flushes
 * marked and still merged into the cumulative view, and at most one open
 * alert per bundle and cohort.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { sql } from 'drizzle-orm';
import type { PgTable } from 'drizzle-orm/pg-core';
import {
  driftFlushes,
  driftPendingWindows,
  driftWindows,
  modelVersions,
} from '../../db/schema/index.ts';
import type { CumulativeRecord, WindowDecision } from '../../core/drift/window-scoring.ts';
import { openDatabase, type OpenDatabase } from './database.ts';
import { createAuditStore } from './audit-store.ts';
import { createDriftStore, type DriftStore, type NewFlush } from './drift-store.ts';

const url = process.env['DATABASE_URL'];
let database: OpenDatabase;
let store: DriftStore;

const BUNDLE = 'e'.repeat(64);
const MODEL = { name: 'mnist-2nn', version: '1.2.0', release: 5 };
const T = Date.parse('2026-11-26T12:00:00Z');
const NOW = new Date(T);
const W1 = { start: new Date(T - 60_000), end: new Date(T) };

before(async () => {
  database = await openDatabase({ url });
  store = createDriftStore(database.db);
});
after(() => database.close());
beforeEach(async () => {
  await database.db.execute(
    sql`truncate drift_flushes, drift_pending_windows, drift_windows, drift_cumulative, drift_alerts, audit_log, model_versions`,
  );
});

function flush(id: string, fields: Partial<NewFlush> = {}): NewFlush {
  return {
    id,
    deviceId: 'dev-1',
    seq: 1,
    bundleId: BUNDLE,
    modelName: MODEL.name,
    modelVersion: MODEL.version,
    modelRelease: MODEL.release,
    rolloutId: null,
    labels: { cohort: 'a' },
    flushStart: new Date(T - 50_000),
    flushEnd: new Date(T - 10_000),
    windowEnd: W1.end,
    inferences: 5000,
    sampled: 500,
    signals: Uint8Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff),
    receivedAt: NOW,
    ...fields,
  };
}

const count = async (table: PgTable) =>
  (await database.db.select({ n: sql<number>`count(*)::int` }).from(table))[0]!.n;

/** A decision scoring every cohort of the window clean, opening and clearing as told. */
function decision(fields: Partial<WindowDecision> = {}): WindowDecision {
  const window = {
    cohort: '*',
    verdict: 'clean' as const,
    flushes: 1,
    sampled: 500,
    inferences: 5000,
    driftedShare: 0,
    driftedSignals: [],
    signalScores: [],
    devices: 1,
  };
  return { windows: [window, { ...window, cohort: 'cohort=a' }], open: [], clear: [], ...fields };
}

const alertFor = (cohort: string, id = `alert-${cohort}`) => ({
  id,
  cohort,
  driftedShare: 0.5,
  signals: [{ name: 'input.0', tripped: ['ks'], distances: { ks: 0.4, psi: 0.9 } }],
});

describe(`drift store (${url ? 'PostgreSQL' : 'PGlite'})`, () => {
  it('stores a flush once: a replayed id or a reused seq stores nothing', async () => {
    assert.deepEqual(await store.insertFlush(flush('f-1')), { result: 'accepted', late: false });
    assert.deepEqual(await store.insertFlush(flush('f-1', { seq: 2 })), { result: 'replayed' });
    assert.deepEqual(await store.insertFlush(flush('f-2')), { result: 'seq_reused' });
    assert.deepEqual(await store.insertFlush(flush('f-3', { deviceId: 'dev-2' })), {
      result: 'accepted',
      late: false,
    });
    assert.equal(await count(driftFlushes), 2);
    assert.equal(await count(driftPendingWindows), 1);
    assert.deepEqual(await store.bundlesWithWork(), [BUNDLE]);
    assert.deepEqual(await store.dueWindows(BUNDLE, T - 1), []);
    assert.deepEqual(await store.dueWindows(BUNDLE, T), [W1.end]);
  });

  it('scores a window once, with its alerts and audit entries, and reads the signals back exactly', async () => {
    const sent = flush('f-1');
    await store.insertFlush(sent);
    let seen: Uint8Array | undefined;
    const scored = await store.scoreWindow(
      BUNDLE,
      MODEL,
      W1,
      (flushes, open) => {
        seen = flushes[0]!.signals;
        assert.deepEqual([...open], []);
        return decision({ open: [alertFor('cohort=a')] });
      },
      NOW,
    );
    assert.equal(scored, true);
    assert.deepEqual(seen, sent.signals);
    assert.equal(await store.scoreWindow(BUNDLE, MODEL, W1, () => decision(), NOW), false);
    assert.equal(await count(driftPendingWindows), 0);
    const windows = await store.windows(BUNDLE, { since: new Date(0), limit: 10 });
    assert.deepEqual(
      windows.map((w) => [w.cohort, w.windowStart.getTime(), w.windowEnd.getTime()]),
      [
        ['*', T - 60_000, T],
        ['cohort=a', T - 60_000, T],
      ],
    );
    const [alert] = await store.alerts({ open: true, limit: 10 });
    assert.equal(alert!.cohort, 'cohort=a');
    assert.equal(alert!.modelVersion, '1.2.0');
    assert.deepEqual(alert!.signals, alertFor('cohort=a').signals);
    const audit = await createAuditStore(database.db).list();
    assert.deepEqual(
      audit.map((e) => [e.action, e.subject]),
      [['drift.alert', 'model:mnist-2nn@1.2.0']],
    );
    assert.equal((audit[0]!.after as { cohort: string }).cohort, 'cohort=a');
  });

  it('marks a flush for a scored window late: no pending window, but in the cumulative view', async () => {
    await store.insertFlush(flush('f-1'));
    await store.scoreWindow(BUNDLE, MODEL, W1, () => decision(), NOW);
    const merged: string[][] = [];
    const cumulate = (rows: CumulativeRecord[], flushes: Array<{ deviceId: string }>) => {
      merged.push(flushes.map((f) => f.deviceId));
      return [{ ...cumulativeRow('*', rows.length + flushes.length) }];
    };
    assert.equal(await store.updateCumulative(BUNDLE, 100, cumulate, NOW), 1);
    assert.deepEqual(await store.insertFlush(flush('f-late', { deviceId: 'dev-9' })), {
      result: 'accepted',
      late: true,
    });
    assert.equal(await count(driftPendingWindows), 0);
    assert.deepEqual(await store.bundlesWithWork(), [BUNDLE]); // behind its cumulative cursor
    assert.equal(await store.updateCumulative(BUNDLE, 100, cumulate, NOW), 1);
    assert.equal(await store.updateCumulative(BUNDLE, 100, cumulate, NOW), 0);
    assert.deepEqual(merged, [['dev-1'], ['dev-9']]);
    assert.deepEqual(await store.bundlesWithWork(), []);
    const [row] = await store.cumulative(BUNDLE);
    assert.deepEqual(row!.sketches, new Uint8Array([1, 2, 3]));
    assert.equal(await store.hasScores(BUNDLE), true);
  });

  it('commits nothing of a window whose decision fails, and keeps one open alert per cohort', async () => {
    await store.insertFlush(flush('f-1'));
    await store.scoreWindow(
      BUNDLE,
      MODEL,
      W1,
      () => decision({ open: [alertFor('*', 'a1')] }),
      NOW,
    );
    const W2 = { start: W1.end, end: new Date(T + 60_000) };
    await store.insertFlush(flush('f-2', { seq: 2, windowEnd: W2.end }));
    // a second open alert for `*` breaks the partial unique index: all rolls back
    await assert.rejects(
      store.scoreWindow(BUNDLE, MODEL, W2, () => decision({ open: [alertFor('*', 'a2')] }), NOW),
    );
    assert.deepEqual(await store.dueWindows(BUNDLE, T + 60_000), [W2.end]);
    assert.equal((await store.windows(BUNDLE, { since: W1.end, limit: 10 })).length, 0);
    assert.equal((await createAuditStore(database.db).list()).length, 1);
    // a clean window clears it, with its audit entry
    await store.scoreWindow(
      BUNDLE,
      MODEL,
      W2,
      () => decision({ clear: [{ cohort: '*', driftedShare: 0 }] }),
      new Date(T + 90_000),
    );
    const [cleared] = await store.alerts({ open: false, limit: 10 });
    assert.equal(cleared!.id, 'a1');
    assert.equal(cleared!.clearedWindowEnd!.getTime(), T + 60_000);
    assert.deepEqual(await store.alerts({ open: true, limit: 10 }), []);
    const actions = (await createAuditStore(database.db).list()).map((e) => e.action);
    assert.deepEqual(actions, ['drift.alert', 'drift.cleared']);
    assert.equal((await createAuditStore(database.db).verify()).ok, true);
  });

  it('scores a window once when two replicas race for it', async () => {
    await store.insertFlush(flush('f-1'));
    const other = url ? await openDatabase({ url }) : database;
    try {
      const replica = createDriftStore(other.db);
      const results = await Promise.all([
        store.scoreWindow(BUNDLE, MODEL, W1, () => decision(), NOW),
        replica.scoreWindow(BUNDLE, MODEL, W1, () => decision(), NOW),
      ]);
      assert.deepEqual(results.sort(), [false, true]);
      assert.equal(await count(driftWindows), 2);
    } finally {
      if (other !== database) await other.close();
    }
  });

  it('gives the metrics the latest window per cohort with its model, and the open alerts', async () => {
    await database.db.insert(modelVersions).values({
      bundleId: BUNDLE,
      ...MODEL,
      sizeBytes: 1,
      manifest: {},
      manifestEnvelope: '',
      signedBy: [],
      parentRelease: null,
      uploadedBy: 'system',
      uploadedAt: NOW,
    });
    await store.insertFlush(flush('f-1'));
    await store.scoreWindow(
      BUNDLE,
      MODEL,
      W1,
      () => decision({ open: [alertFor('cohort=a')] }),
      NOW,
    );
    const W2 = { start: W1.end, end: new Date(T + 60_000) };
    await store.insertFlush(flush('f-2', { seq: 2, windowEnd: W2.end }));
    await store.scoreWindow(BUNDLE, MODEL, W2, () => decision(), NOW);
    const latest = await store.latestWindows(new Date(0));
    assert.deepEqual(
      latest.map((w) => [w.cohort, w.windowEnd.getTime(), w.modelName, w.modelVersion]),
      [
        ['*', T + 60_000, 'mnist-2nn', '1.2.0'],
        ['cohort=a', T + 60_000, 'mnist-2nn', '1.2.0'],
      ],
    );
    assert.deepEqual(
      (await store.openAlerts()).map((a) => a.cohort),
      ['cohort=a'],
    );
    assert.deepEqual((await store.alerts({ modelName: 'other', limit: 10 })).length, 0);
  });
});

function cumulativeRow(cohort: string, flushes: number): CumulativeRecord {
  return {
    cohort,
    verdict: 'insufficient',
    flushes,
    sampled: 0,
    inferences: 0,
    driftedShare: 0,
    driftedSignals: [],
    signalScores: [],
    sketches: new Uint8Array([1, 2, 3]),
  };
}
