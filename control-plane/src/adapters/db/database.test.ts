/**
 * New PGlite databases start from a migrated template kept on disk
 * (database.ts `newPglite`): the template is written once and reused, in
 * memory and in a new data dir; an existing data dir opens as it is; and a
 * corrupt template file is replaced, not fatal.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { PGlite } from '@electric-sql/pglite';
import { newPglite, openDatabase } from './database.ts';

const dirs: string[] = [];
async function freshDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fleet-template-test-'));
  dirs.push(dir);
  return dir;
}
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function tarsIn(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name.endsWith('.tar'));
}

async function hasTable(client: PGlite, table: string): Promise<boolean> {
  const found = await client.query<{ n: number }>(
    `select count(*)::int as n from information_schema.tables where table_name = $1`,
    [table],
  );
  return found.rows[0]?.n === 1;
}

describe('new PGlite databases from a migrated template', () => {
  it('writes the template once and opens migrated databases from it', async () => {
    const templates = await freshDir();
    const first = await newPglite(undefined, templates);
    const [tar] = await tarsIn(templates);
    assert.ok(tar, 'a template was written');
    assert.ok((await stat(join(templates, tar))).size > 1_000_000);
    const second = await newPglite(undefined, templates);
    assert.deepEqual(await tarsIn(templates), [tar]);
    assert.ok(await hasTable(first, 'rollouts'));
    assert.ok(await hasTable(second, 'rollouts'));
    await first.close();
    await second.close();
  });

  it('starts a new data dir from the template and opens an existing one as it is', async () => {
    const templates = await freshDir();
    const dataDir = join(await freshDir(), 'db');
    const created = await newPglite(dataDir, templates);
    assert.ok(await hasTable(created, 'rollouts'));
    await created.query(`create table kept (x int)`);
    await created.query(`insert into kept values (42)`);
    await created.close();
    const reopened = await newPglite(dataDir, templates);
    const kept = await reopened.query<{ x: number }>(`select x from kept`);
    assert.deepEqual(kept.rows, [{ x: 42 }]);
    await reopened.close();
  });

  it('replaces a corrupt template file; the database is still made', async () => {
    const good = await freshDir();
    await (await newPglite(undefined, good)).close();
    const [tar] = await tarsIn(good);
    const corrupt = await freshDir();
    await writeFile(join(corrupt, tar!), 'not a tar file at all');
    const dataDir = join(corrupt, 'db');
    await mkdir(dataDir);
    // The slow way: a working database (openDatabase then migrates it).
    const client = await newPglite(dataDir, corrupt);
    assert.deepEqual((await client.query(`select 1 as one`)).rows, [{ one: 1 }]);
    await client.close();
    assert.deepEqual(await tarsIn(corrupt), [], 'the corrupt template was deleted');
    const next = await newPglite(undefined, corrupt);
    assert.ok(await hasTable(next, 'rollouts'));
    await next.close();
    assert.ok((await stat(join(corrupt, tar!))).size > 1_000_000, 'the template was rebuilt');
  });

  it('openDatabase gives each in-memory database its own data', async () => {
    const a = await openDatabase();
    const b = await openDatabase();
    await a.db.execute(`create table only_in_a (x int)`);
    const found = await b.db.execute(
      `select count(*)::int as n from information_schema.tables where table_name = 'only_in_a'`,
    );
    const { rows } = found as { rows: { n: number }[] };
    assert.equal(rows[0]?.n, 0);
    await a.close();
    await b.close();
  });
});

describe('openDatabase settings', () => {
  it('refuses a PostgreSQL pool size that is not a whole number of connections, before connecting', async () => {
    // Port 9 (discard): a connection attempt would fail differently, and slowly.
    const url = 'postgres://nobody@127.0.0.1:9/none';
    for (const poolSize of [0, -1, 2.5, Number.NaN]) {
      await assert.rejects(openDatabase({ url, poolSize }), /database pool size: a whole number/);
    }
  });
});
