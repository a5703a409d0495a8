/**
 * Storage contract for the audit log, on embedded PGlite by default and on
 * PostgreSQL when DATABASE_URL is set (CI): appends chain, concurrent appends
 * stay one chain, and a row edited behind the application's back is caught.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'drizzle-orm';
import { openDatabase, type OpenDatabase } from './database.ts';
import { createAuditStore } from './audit-store.ts';

let database: OpenDatabase;

before(async () => {
  database = await openDatabase({ url: process.env['DATABASE_URL'] });
  await database.db.execute(sql`truncate audit_log`);
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
