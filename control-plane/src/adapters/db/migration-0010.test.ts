/**
 * Migration 0010 (device_tags.hardware): it rebuilds the listing's tag rows
 * from `devices.tags`, the value shown, because tag edits before it changed
 * `devices.tags` only. A database migrated up to 0009 with such a stale row
 * comes out with rows matching each device's tags and hardware, and nothing
 * of the devices themselves changed.
 */
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, it } from 'node:test';
import { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/pglite';
import { migrate } from 'drizzle-orm/pglite/migrator';

const migrations = fileURLToPath(new URL('../../../drizzle', import.meta.url));
let upTo0009: string;

before(async () => {
  // The committed migrations as they were before 0010: same files, shorter journal.
  upTo0009 = await mkdtemp(join(tmpdir(), 'fleet-migrations-'));
  await cp(migrations, upTo0009, { recursive: true });
  const journalPath = join(upTo0009, 'meta', '_journal.json');
  const journal = JSON.parse(await readFile(journalPath, 'utf8')) as {
    entries: { idx: number }[];
  };
  journal.entries = journal.entries.filter((e) => e.idx <= 9);
  await writeFile(journalPath, JSON.stringify(journal));
});
after(() => rm(upTo0009, { recursive: true, force: true }));

it('rebuilds stale tag rows from devices.tags, with each device hardware', async () => {
  const client = new PGlite();
  const db = drizzle(client);
  try {
    await migrate(db, { migrationsFolder: upTo0009 });
    await db.execute(sql`
      insert into devices (id, id_folded, public_key, key_id, hardware, tags, agent_version, enrolled_at)
      values ('dev-1', 'dev-1', 'AAAA', 'k1', 'rpi4', '{"site":"b","ring":"canary"}', '0.1.0', now()),
             ('dev-2', 'dev-2', 'AAAA', 'k2', 'rpi5', '{}', '0.1.0', now())`);
    // As a tag edit before 0010 left it: the old site, and no ring.
    await db.execute(
      sql`insert into device_tags (device_id, key, value) values ('dev-1', 'site', 'a')`,
    );
    const devicesBefore = await db.execute(sql`select * from devices order by id`);

    await migrate(db, { migrationsFolder: migrations });

    const tags = await db.execute(
      sql`select device_id, key, value, hardware from device_tags order by device_id, key`,
    );
    assert.deepEqual(tags.rows, [
      { device_id: 'dev-1', key: 'ring', value: 'canary', hardware: 'rpi4' },
      { device_id: 'dev-1', key: 'site', value: 'b', hardware: 'rpi4' },
    ]);
    const devicesAfter = await db.execute(sql`select * from devices order by id`);
    assert.deepEqual(devicesAfter.rows, devicesBefore.rows);
  } finally {
    await client.close();
  }
});
