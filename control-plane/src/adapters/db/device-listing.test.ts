/**
 * The device listing's query shapes: the tag-driven page must probe devices
 * once per tag hit. PostgreSQL otherwise pulls the lateral subquery up into a
 * merge join that walks the devices primary key from its start, and a page of
 * 50 reads thousands of rows (seen at 100,000 devices: 4 to 8 ms of database
 * CPU per page instead of about 1). The fence is an OFFSET clause, which
 * drizzle leaves out when given a literal 0. With the hardware class given
 * too, the tag scan reads the (key, value, hardware, device_id) index, so
 * it meets only matching devices.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'drizzle-orm';
import { deviceTags, devices } from '../../db/schema/index.ts';
import { openDatabase, type OpenDatabase } from './database.ts';
import { paramsOf, shapeOf, shapeQuery } from './device-listing.ts';
import type { DeviceQuery } from '../../core/devices/device-query.ts';

const DEVICES = 4_000;
const HARDWARE = ['rpi4', 'rpi5', 'x86-64', 'jetson-orin'];
let database: OpenDatabase;

before(async () => {
  database = await openDatabase({});
  for (let start = 0; start < DEVICES; start += 1_000) {
    const rows = Array.from({ length: 1_000 }, (_, k) => {
      const i = start + k;
      const id = `dev-${String(i).padStart(6, '0')}`;
      return {
        id,
        idFolded: id,
        publicKey: 'AAAA',
        keyId: `key-${i}`,
        hardware: HARDWARE[Math.floor(i / 20) % 4]!,
        tags: { site: `site-${i % 20}` },
        agentVersion: '0.1.0',
        enrolledAt: new Date(Date.UTC(2026, 0, 1)),
      };
    });
    await database.db.insert(devices).values(rows);
    await database.db.insert(deviceTags).values(
      rows.map((r) => ({
        deviceId: r.id,
        key: 'site',
        value: r.tags.site,
        hardware: r.hardware,
      })),
    );
  }
  await database.db.execute(sql`ANALYZE devices`);
  await database.db.execute(sql`ANALYZE device_tags`);
});
after(() => database.close());

const query: DeviceQuery = { tags: { site: 'site-3' }, hardware: 'rpi5', limit: 51 };

describe('device listing queries', () => {
  it('fences the lateral device probe with a bound OFFSET 0', () => {
    const rendered = shapeQuery(database.db, shapeOf(query)).toSQL();
    const fence = /offset (\$\d+)\) "devices" on true/.exec(rendered.sql);
    assert.ok(fence, `no OFFSET fence in: ${rendered.sql}`);
    assert.equal(paramsOf(query).zero, 0);
  });

  it('plans a range of the tag-and-hardware index with a per-hit probe of devices, not a merge join', async () => {
    const rendered = shapeQuery(database.db, shapeOf(query)).toSQL();
    const params = paramsOf(query);
    // Inline the placeholders' values in order, for EXPLAIN.
    const names = ['hw', 'k0', 'v0', 'zero', 'limit'];
    let text = rendered.sql;
    rendered.params.forEach((placeholder, i) => {
      const name = (placeholder as { name: string }).name;
      assert.ok(names.includes(name), `unexpected placeholder ${name}`);
      const value = params[name];
      text = text.replace(
        `$${i + 1}`,
        typeof value === 'number' ? String(value) : `'${String(value)}'`,
      );
    });
    const plan = await database.db.execute(sql.raw(`EXPLAIN ${text}`));
    // PGlite (this suite's database) answers { rows }; each row is one plan line.
    const { rows } = plan as { rows: Record<string, unknown>[] };
    const lines = rows.map((row) => String(Object.values(row)[0])).join('\n');
    assert.doesNotMatch(lines, /Merge Join/, lines);
    assert.match(lines, /Nested Loop/, lines);
    // Tag and hardware together: one range of exactly the matching devices.
    assert.match(lines, /device_tags_hardware_idx/, lines);
  });

  it('returns the matching devices in id order', async () => {
    const prepared = shapeQuery(database.db, shapeOf(query)).prepare('listing_test');
    const rows = (await prepared.execute(paramsOf(query))) as { id: string; hardware: string }[];
    assert.equal(rows.length, 50); // 4,000 / 20 sites / 4 hardware classes
    assert.ok(rows.every((r) => r.hardware === 'rpi5'));
    assert.deepEqual(
      rows.map((r) => r.id),
      rows.map((r) => r.id).toSorted(),
    );
  });
});
