/**
 * The device view the database renders for the listing (device-view-sql.ts)
 * against `toDeviceView`, the one every other route uses: the same JSON for
 * rows covering each branch of the view, including timestamps finer than a
 * millisecond, which both must cut (not round) to the millisecond. On
 * PGlite, and on PostgreSQL when DATABASE_URL is set (CI).
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { sql } from 'drizzle-orm';
import { toDeviceView } from '../http/views.ts';
import { openDatabase, type OpenDatabase } from './database.ts';
import { createDeviceStore } from './device-store.ts';

let database: OpenDatabase;

before(async () => {
  database = await openDatabase({ url: process.env['DATABASE_URL'] });
  await database.db.execute(sql`truncate device_tags, devices cascade`);
  await database.db.execute(sql`
    insert into devices (id, id_folded, public_key, key_id, hardware, tags, agent_version,
                         enrolled_at, revoked_at, online, last_seen_at, model_name, model_version,
                         model_release, bundle_id, update_state, labelled_samples, labelled_samples_at)
    values
      -- never seen: every optional field null
      ('d-bare', 'd-bare', 'AAAA', 'k1', 'rpi4', '{}', '0.1.0',
       '2026-01-01 00:00:00+00', null, false, null, null, null, null, null, null, null, null),
      -- online, serving a model, labelled samples; timestamps below a millisecond
      ('d-full', 'd-full', 'AAAA', 'k2', 'x86-64', '{"site":"lab","ring":"canary","b":"\\"q\\""}', '0.2.0',
       '2026-11-27 10:44:31.348999+00', null, true, '2026-11-27 23:59:59.999999+00',
       'mnist', '1.2.0', 7, 'ab', 'probation', 120, '2026-11-27 10:00:00.0005+00'),
      -- revoked (still marked online), a model half known, a count without its time
      ('d-revoked', 'd-revoked', 'AAAA', 'k3', 'rpi5', '{"site":"b"}', '0.1.0',
       '2025-12-31 23:59:59.9999+00', '2026-02-03 04:05:06.007+00', true, '2026-02-03 04:05:06+00',
       'mnist', null, 3, 'cd', 'idle', 5, null),
      -- empty strings where the model's text fields are: not a model
      ('d-empty', 'd-empty', 'AAAA', 'k4', 'rpi4', '{"e":""}', '0.1.0',
       '2026-06-15 12:00:00+00', null, false, '2026-06-15 12:00:00.5+00',
       '', '1.0.0', 1, 'ef', null, 0, '2026-06-15 12:00:01+00')`);
});
after(() => database.close());

it(`renders what toDeviceView renders, for every branch of the view (${process.env['DATABASE_URL'] ? 'PostgreSQL' : 'PGlite'})`, async () => {
  const store = createDeviceStore(database.db);
  const rows = await store.listViews({ tags: {}, limit: 10 });
  assert.deepEqual(
    rows.map((r) => r.id),
    ['d-bare', 'd-empty', 'd-full', 'd-revoked'],
  );
  for (const { id, view } of rows) {
    const row = await store.get(id);
    const expected: unknown = JSON.parse(JSON.stringify(toDeviceView(row!)));
    assert.deepEqual(JSON.parse(view), expected, id);
  }
  const full = JSON.parse(rows.find((r) => r.id === 'd-full')!.view) as Record<string, unknown>;
  assert.equal(
    full['lastSeenAt'],
    '2026-11-27T23:59:59.999Z',
    'cut, not rounded into the next day',
  );
});

it('renders the same for a tag-driven page as for a page of the whole fleet', async () => {
  const store = createDeviceStore(database.db);
  await database.db.execute(sql`
    insert into device_tags (device_id, key, value, hardware)
    select d.id, t.key, t.value, d.hardware from devices d, jsonb_each_text(d.tags) t`);
  const all = await store.listViews({ tags: {}, limit: 10 });
  const bySite = await store.listViews({ tags: { site: 'lab' }, hardware: 'x86-64', limit: 10 });
  assert.deepEqual(
    bySite,
    all.filter((r) => r.id === 'd-full'),
  );
});
