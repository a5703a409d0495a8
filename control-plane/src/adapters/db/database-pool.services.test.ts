/**
 * The PostgreSQL pool's queueing (database.ts POSTGRES_POOL): while one slow
 * query runs, at most one other query waits behind it on its connection;
 * every other query goes to the other connections as they come free.
 * PostgreSQL only (DATABASE_URL, as in CI): PGlite is one connection in this
 * process and runs queries one at a time by design.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'drizzle-orm';
import { openDatabase, POSTGRES_POOL, type OpenDatabase } from './database.ts';

const url = process.env['DATABASE_URL'];
const SLOW_QUERY_MS = 1500;
const QUICK_QUERIES = POSTGRES_POOL.max * 10;

describe(
  'PostgreSQL connection pool',
  { skip: url ? false : 'PostgreSQL only (DATABASE_URL unset)' },
  () => {
    let database: OpenDatabase;
    before(async () => {
      database = await openDatabase({ url });
    });
    after(() => database?.close());

    it('holds at most one query behind a slow one while other connections serve the rest', async () => {
      const started = performance.now();
      // No parameters: postgres.js pipelines only statements it need not describe first.
      const slow = database.db
        .execute(sql.raw(`select pg_sleep(${SLOW_QUERY_MS / 1000})`))
        .then(() => performance.now() - started);
      const quick = Array.from({ length: QUICK_QUERIES }, (_, i) =>
        database.db.execute(sql.raw(`select ${i} as i`)).then(() => performance.now() - started),
      );
      const slowDoneMs = await slow;
      const quickDoneMs = await Promise.all(quick);
      const heldBySlow = quickDoneMs.filter((ms) => ms >= slowDoneMs).length;
      assert.ok(slowDoneMs >= SLOW_QUERY_MS);
      assert.ok(
        heldBySlow <= 1,
        `${heldBySlow} of ${QUICK_QUERIES} quick queries waited for the slow one`,
      );
    });
  },
);
