/**
 * The PostgreSQL pools (database.ts `openPostgresClients`): the query pool
 * opens at most `poolSize` connections, and while one slow query runs, at
 * most one other query waits behind it on its connection, every other one
 * going to the other connections as they come free; a transaction begun
 * while every query connection is busy still runs (its own pool).
 * PostgreSQL only (DATABASE_URL, as in CI): PGlite is one connection in this
 * process and runs queries one at a time by design.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'drizzle-orm';
import { DEFAULT_POSTGRES_POOL_SIZE, openDatabase, type OpenDatabase } from './database.ts';

const url = process.env['DATABASE_URL'];
const SLOW_QUERY_MS = 1500;
const QUICK_QUERIES = DEFAULT_POSTGRES_POOL_SIZE * 20;

describe(
  'PostgreSQL connection pool',
  { skip: url ? false : 'PostgreSQL only (DATABASE_URL unset)' },
  () => {
    let database: OpenDatabase;
    before(async () => {
      database = await openDatabase({ url });
    });
    after(() => database?.close());

    it('opens at most poolSize connections', async () => {
      const small = await openDatabase({ url, poolSize: 3 });
      try {
        const backends = async () => {
          const result = await database.db.execute(
            sql.raw(
              `select count(*)::int as n from pg_stat_activity
              where datname = current_database() and application_name = 'fleet-pool-test'`,
            ),
          );
          return (result as { n: number }[])[0]!.n;
        };
        // drizzle sends a query when it is awaited: `.then` sends these now.
        const busy = Array.from({ length: 30 }, () =>
          small.db
            .execute(sql.raw(`set application_name = 'fleet-pool-test'; select pg_sleep(0.05)`))
            .then(() => undefined),
        );
        // 30 x 50 ms on 3 connections takes about 500 ms; count once all are open.
        await new Promise((resolve) => setTimeout(resolve, 200));
        const seen = await backends();
        await Promise.all(busy);
        assert.ok(seen >= 2 && seen <= 3, `${seen} connections of a pool of 3 were open`);
      } finally {
        await small.close();
      }
    });

    it('runs a transaction begun while every connection is running a query', async () => {
      await database.db.execute(sql.raw(`create table if not exists pool_test_tx (n int)`));
      await database.db.execute(sql.raw(`truncate pool_test_tx`));
      // drizzle sends a query when it is awaited: `.then` sends these now.
      const busy = Array.from({ length: DEFAULT_POSTGRES_POOL_SIZE }, () =>
        database.db.execute(sql.raw(`select pg_sleep(0.3)`)).then(() => undefined),
      );
      await new Promise((resolve) => setTimeout(resolve, 100));
      await database.db.transaction(async (tx) => {
        await tx.execute(sql`insert into pool_test_tx (n) values (${1})`);
        await tx.execute(sql`insert into pool_test_tx (n) values (${2})`);
      });
      await Promise.all(busy);
      const rows = (await database.db.execute(
        sql.raw(`select count(*)::int as n from pool_test_tx`),
      )) as { n: number }[];
      assert.equal(rows[0]!.n, 2);
      await database.db.execute(sql.raw(`drop table pool_test_tx`));
    });

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
