/**
 * Opens the control plane's database and applies the committed migrations:
 * embedded PGlite (Postgres in WASM) when no URL is given, persisting in
 * `dataDir` or in memory, or PostgreSQL through `postgres` when `url` is set.
 * Both give the same drizzle API over the same schema.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import * as schema from '../../db/schema/index.ts';

export type Schema = typeof schema;
export type Database = PgDatabase<PgQueryResultHKT, Schema>;

export interface DatabaseOptions {
  /** PostgreSQL connection URL; unset: embedded PGlite. */
  url?: string;
  /** PGlite data directory; unset: in memory (tests). */
  dataDir?: string;
  /** PostgreSQL connections per pool, queries and transactions (DEFAULT_POSTGRES_POOL_SIZE); PGlite is one. */
  poolSize?: number;
}

export interface OpenDatabase {
  db: Database;
  kind: 'pglite' | 'postgres';
  close(): Promise<void>;
}

/**
 * The PostgreSQL connections: two pools of `poolSize` each (so up to twice
 * that many connections), one for single queries and one for transactions.
 *
 * Single queries: when every connection is busy, postgres.js pipelines a
 * query onto one of them (by default up to 100 deep), where it waits for
 * everything ahead of it on that connection, however slow, while other
 * connections may come free first. `max_pipeline: 1` lets at most one query
 * wait on a connection behind the running one; the rest wait in the pool's
 * first-come queue for the next connection that has room.
 *
 * Transactions cannot share that pool: postgres.js reserves a connection for
 * a transaction when its BEGIN is sent, but skips that step when the BEGIN is
 * the query that fills a connection's pipeline (connection.js `execute`), and
 * the transaction then fails with UNSAFE_TRANSACTION; at `max_pipeline: 1`
 * that is any BEGIN sent while every connection is running a query. In their
 * own pool, with postgres.js' defaults, a BEGIN waits for a free connection
 * (every other connection there is reserved by a transaction), as it always
 * did. database-pool.services.test.ts holds both pools to this.
 *
 * Measured with 50 concurrent device listings (100,000 devices, PostgreSQL
 * on the same 2-core machine; bench/README.md), p99 and pages/s:
 * 10 connections pipelined 100 deep, 68-94 ms at 2,456-2,878; 10 with
 * `max_pipeline: 1`, 31-50 ms at 2,433-2,961; 5 with `max_pipeline: 1`,
 * 25-27 ms at 2,973-3,120 (more backends than cores only take turns on
 * them); 5 pipelined 100 deep, 65 ms. A database server with more cores may
 * want more connections: `poolSize` (FLEET_DATABASE_POOL_SIZE).
 *
 * `max_pipeline` is read by postgres.js 3.4 (src/index.js parseOptions, 100
 * by default) but not in its types or README; the pool test fails on
 * PostgreSQL if it stops being honoured.
 */
export const DEFAULT_POSTGRES_POOL_SIZE = 5;
const QUERY_MAX_PIPELINE = 1;

/**
 * One postgres.js client for drizzle: its queries go to `queries`, its
 * transactions (`begin`) to `transactions`. drizzle's driver sets its value
 * parsers and serializers on the client's options; the transactions client
 * gets the same ones.
 */
function openPostgresClients(url: string, poolSize: number) {
  const queryOptions = { max: poolSize, max_pipeline: QUERY_MAX_PIPELINE };
  const queries = postgres(url, { ...queryOptions, onnotice: () => undefined });
  const transactions = postgres(url, { max: poolSize, onnotice: () => undefined });
  const client = new Proxy(queries, {
    get: (target, property, receiver) =>
      property === 'begin'
        ? transactions.begin.bind(transactions)
        : (Reflect.get(target, property, receiver) as unknown),
  });
  const db = drizzlePostgres(client, { schema });
  Object.assign(transactions.options.parsers, queries.options.parsers);
  Object.assign(transactions.options.serializers, queries.options.serializers);
  const close = async () => {
    await Promise.all([queries.end({ timeout: 5 }), transactions.end({ timeout: 5 })]);
  };
  return { db, close };
}

const migrationsFolder = fileURLToPath(new URL('../../../drizzle', import.meta.url));

export async function openDatabase(options: DatabaseOptions = {}): Promise<OpenDatabase> {
  if (options.url) {
    const max = options.poolSize ?? DEFAULT_POSTGRES_POOL_SIZE;
    if (!Number.isInteger(max) || max < 1) {
      throw new Error(`database pool size: a whole number of connections, at least 1, not ${max}`);
    }
    const { db, close } = openPostgresClients(options.url, max);
    await migratePostgres(db, { migrationsFolder });
    return { db, kind: 'postgres', close };
  }
  const client = await newPglite(options.dataDir);
  const db = drizzlePglite(client, { schema });
  // A no-op on a database started from the template (every migration is
  // recorded in it), and what makes a stale template harmless.
  await migratePglite(db, { migrationsFolder });
  return { db, kind: 'pglite', close: () => client.close() };
}

/**
 * A PGlite in memory, or in `dataDir`. A new database (in memory, or a data
 * dir that is absent or empty) starts from a template: the data directory
 * of a PGlite with every migration applied, as a tar (PGlite's
 * `dumpDataDir`); an existing data dir opens as it is.
 *
 * Why: a new PGlite runs initdb and then the migrations, about 3 s of CPU
 * here, where loading the template takes 0.6-0.9 s. Tests and simulations
 * open new databases by the hundred per run, each test file in its own
 * process; so the template is kept on disk (in `templateDir`, named by the
 * hash of the PGlite version and the migration files, written to a
 * temporary name and renamed into place so that no reader sees half of one)
 * and once per process. A template that cannot be read or loaded (a
 * corrupt file) is deleted, and the database is made the slow way; one that
 * cannot be written is only kept in memory.
 */
export async function newPglite(dataDir?: string, templateDir = TEMPLATE_DIR): Promise<PGlite> {
  if (dataDir && !(await isNewDataDir(dataDir))) return new PGlite(dataDir);
  const template = await migratedTemplate(templateDir).catch(() => null);
  if (template) {
    const client = dataDir
      ? new PGlite(dataDir, { loadDataDir: template.tar })
      : new PGlite({ loadDataDir: template.tar });
    try {
      await client.waitReady;
      return client;
    } catch {
      templates.delete(templateDir);
      await rm(template.path, { force: true });
      // It was absent or empty before: what is in it now is the failed load's.
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    }
  }
  return dataDir ? new PGlite(dataDir) : new PGlite();
}

async function isNewDataDir(dataDir: string): Promise<boolean> {
  const entries = await readdir(dataDir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  return entries.length === 0;
}

const TEMPLATE_DIR = join(tmpdir(), 'fleet-pglite-templates');

interface Template {
  path: string;
  tar: Blob;
}

/** Per template directory, this process's template. */
const templates = new Map<string, Promise<Template>>();

function migratedTemplate(templateDir: string): Promise<Template> {
  let template = templates.get(templateDir);
  if (!template) {
    template = loadOrBuildTemplate(templateDir);
    templates.set(templateDir, template);
    template.catch(() => templates.delete(templateDir));
  }
  return template;
}

async function loadOrBuildTemplate(templateDir: string): Promise<Template> {
  const path = join(templateDir, `${await templateKey()}.tar`);
  const stored = await readFile(path).catch(() => null);
  if (stored) return { path, tar: new Blob([stored]) };
  const client = new PGlite();
  try {
    await migratePglite(drizzlePglite(client, { schema }), { migrationsFolder });
    const tar = await client.dumpDataDir('none');
    await storeTemplate(templateDir, path, tar).catch(() => undefined);
    return { path, tar };
  } finally {
    await client.close();
  }
}

async function storeTemplate(templateDir: string, path: string, tar: Blob): Promise<void> {
  await mkdir(templateDir, { recursive: true });
  const partial = `${path}.${process.pid}.partial`;
  await writeFile(partial, new Uint8Array(await tar.arrayBuffer()));
  await rename(partial, path);
  // Templates of other migration sets or PGlite versions are stale (40 MB each).
  for (const name of await readdir(templateDir)) {
    const other = join(templateDir, name);
    if (other !== path && name.endsWith('.tar')) await rm(other, { force: true });
  }
}

async function pgliteVersion(): Promise<string> {
  let dir = dirname(fileURLToPath(import.meta.resolve('@electric-sql/pglite')));
  for (; dir !== dirname(dir); dir = dirname(dir)) {
    const text = await readFile(join(dir, 'package.json'), 'utf8').catch(() => null);
    const manifest = text ? (JSON.parse(text) as { name?: string; version?: string }) : null;
    if (manifest?.name === '@electric-sql/pglite') return manifest.version ?? 'unknown';
  }
  return 'unknown';
}

async function templateKey(): Promise<string> {
  const hash = createHash('sha256');
  hash.update(`pglite ${await pgliteVersion()}\n`);
  const files = (await readdir(migrationsFolder, { recursive: true })).sort();
  for (const file of files) {
    const bytes = await readFile(join(migrationsFolder, file)).catch(() => null);
    if (bytes) hash.update(`${file}\n`).update(bytes);
  }
  return hash.digest('hex').slice(0, 32);
}
