/**
 * The model registry's rows and the trust roots, with their audit entries.
 * Verification happens before anything reaches this store
 * (core/models/registry.ts); here the rules that need the database are
 * enforced inside one transaction: release counters only move forward per
 * model name, and a root version is installed only once, in order.
 */
import { and, asc, desc, eq, sql } from 'drizzle-orm';
import { modelVersions, trustRoots } from '../../db/schema/index.ts';
import { controlPlaneError } from '../../core/errors.ts';
import { appendAuditIn } from './audit-store.ts';
import type { Actor } from './actor.ts';
import type { Database } from './database.ts';

export type ModelVersionRow = typeof modelVersions.$inferSelect;
export type NewModelVersion = Omit<ModelVersionRow, 'uploadedBy' | 'uploadedAt'>;
export type TrustRootRow = typeof trustRoots.$inferSelect;

export interface ModelSummary {
  name: string;
  versions: number;
  latestVersion: string;
  latestRelease: number;
}

export interface ModelStore {
  /** Highest release registered for `name`, 0 when none. */
  latestRelease(name: string): Promise<number>;
  /** Registers a verified bundle; CONFLICT when its release or version is not new. */
  register(row: NewModelVersion, actor: Actor, now: Date): Promise<ModelVersionRow>;
  listModels(): Promise<ModelSummary[]>;
  listVersions(name: string): Promise<ModelVersionRow[]>;
  getVersion(name: string, release: number): Promise<ModelVersionRow | null>;
  getByBundleId(bundleId: string): Promise<ModelVersionRow | null>;
  /** The installed root with the highest version, or null before the first. */
  currentRoot(): Promise<TrustRootRow | null>;
  /** Every installed root after `afterVersion`, oldest first (a rotation chain). */
  rootsAfter(afterVersion: number): Promise<TrustRootRow[]>;
  /** Installs the root that follows `expectedCurrent` (0: the first). */
  installRoot(
    row: Omit<TrustRootRow, 'installedBy' | 'installedAt'>,
    expectedCurrent: number,
    actor: Actor,
    now: Date,
  ): Promise<TrustRootRow>;
}

/** Serializes registrations of one model name (and root installs) across replicas. */
const REGISTRY_LOCK_KEY = 0x666c6563;

export function createModelStore(db: Database): ModelStore {
  async function latestRelease(tx: Database, name: string) {
    const [row] = await tx
      .select({ release: modelVersions.release })
      .from(modelVersions)
      .where(eq(modelVersions.name, name))
      .orderBy(desc(modelVersions.release))
      .limit(1);
    return row?.release ?? 0;
  }

  return {
    latestRelease: (name) => latestRelease(db, name),

    register: (row, actor, now) =>
      db.transaction(async (tx) => {
        await tx.execute(
          sql`select pg_advisory_xact_lock(${REGISTRY_LOCK_KEY}, hashtext(${row.name}))`,
        );
        const latest = await latestRelease(tx, row.name);
        if (row.release <= latest) {
          throw controlPlaneError(
            'CONFLICT',
            `${row.name} release ${row.release} is not above the registered release ${latest}`,
          );
        }
        const [sameVersion] = await tx
          .select({ release: modelVersions.release })
          .from(modelVersions)
          .where(and(eq(modelVersions.name, row.name), eq(modelVersions.version, row.version)));
        if (sameVersion) {
          throw controlPlaneError('CONFLICT', `${row.name}@${row.version} is registered already`);
        }
        const [stored] = await tx
          .insert(modelVersions)
          .values({ ...row, uploadedBy: actor, uploadedAt: now })
          .returning();
        await appendAuditIn(tx, {
          at: now.toISOString(),
          actor,
          action: 'model.uploaded',
          subject: `model:${row.name}@${row.version}`,
          before: null,
          after: {
            bundleId: row.bundleId,
            release: row.release,
            sizeBytes: row.sizeBytes,
            signedBy: row.signedBy,
            parentRelease: row.parentRelease,
          },
        });
        return stored!;
      }),

    listModels: async () => {
      const rows = await db
        .select({
          name: modelVersions.name,
          versions: sql<number>`count(*)::int`,
          latestRelease: sql<number>`max(${modelVersions.release})`,
        })
        .from(modelVersions)
        .groupBy(modelVersions.name)
        .orderBy(asc(modelVersions.name));
      const out: ModelSummary[] = [];
      for (const r of rows) {
        const latest = await latestVersion(db, r.name);
        out.push({
          ...r,
          latestVersion: latest?.version ?? '',
          latestRelease: latest?.release ?? 0,
        });
      }
      return out;
    },

    listVersions: (name) =>
      db
        .select()
        .from(modelVersions)
        .where(eq(modelVersions.name, name))
        .orderBy(desc(modelVersions.release)),

    getVersion: async (name, release) =>
      (
        await db
          .select()
          .from(modelVersions)
          .where(and(eq(modelVersions.name, name), eq(modelVersions.release, release)))
      )[0] ?? null,

    getByBundleId: async (bundleId) =>
      (await db.select().from(modelVersions).where(eq(modelVersions.bundleId, bundleId)))[0] ??
      null,

    currentRoot: async () =>
      (await db.select().from(trustRoots).orderBy(desc(trustRoots.version)).limit(1))[0] ?? null,

    rootsAfter: (afterVersion) =>
      db
        .select()
        .from(trustRoots)
        .where(sql`${trustRoots.version} > ${afterVersion}`)
        .orderBy(asc(trustRoots.version)),

    installRoot: (row, expectedCurrent, actor, now) =>
      db.transaction(async (tx) => {
        await tx.execute(sql`select pg_advisory_xact_lock(${REGISTRY_LOCK_KEY}, 0)`);
        const [current] = await tx
          .select()
          .from(trustRoots)
          .orderBy(desc(trustRoots.version))
          .limit(1);
        if ((current?.version ?? 0) !== expectedCurrent) {
          throw controlPlaneError(
            'CONFLICT',
            `trust root v${current?.version ?? 0} was installed meanwhile; retry`,
          );
        }
        const [stored] = await tx
          .insert(trustRoots)
          .values({ ...row, installedBy: actor, installedAt: now })
          .returning();
        await appendAuditIn(tx, {
          at: now.toISOString(),
          actor,
          action: expectedCurrent === 0 ? 'trust-root.installed' : 'trust-root.rotated',
          subject: `trust-root:v${row.version}`,
          before: current ? { version: current.version, expires: current.expires } : null,
          after: { version: row.version, expires: row.expires },
        });
        return stored!;
      }),
  };
}

async function latestVersion(db: Database, name: string) {
  const [row] = await db
    .select({ version: modelVersions.version, release: modelVersions.release })
    .from(modelVersions)
    .where(eq(modelVersions.name, name))
    .orderBy(desc(modelVersions.release))
    .limit(1);
  return row;
}
