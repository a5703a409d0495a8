/**
 * The model registry: one row per uploaded bundle (a model version), and the
 * trust roots bundles are verified against. Bundle bytes live in the blob
 * store under `bundle_id` (their SHA-256); the manifest is kept here as the
 * exact signed envelope and as parsed JSON for queries.
 */
import {
  bigint,
  index,
  integer,
  jsonb,
  pgTable,
  text,
  timestamp,
  unique,
} from 'drizzle-orm/pg-core';

export const modelVersions = pgTable(
  'model_versions',
  {
    bundleId: text('bundle_id').primaryKey(),
    name: text('name').notNull(),
    version: text('version').notNull(),
    release: integer('release').notNull(),
    sizeBytes: bigint('size_bytes', { mode: 'number' }).notNull(),
    manifest: jsonb('manifest').$type<Record<string, unknown>>().notNull(),
    /** The signed manifest envelope, base64, as it came in the bundle. */
    manifestEnvelope: text('manifest_envelope').notNull(),
    signedBy: jsonb('signed_by').$type<string[]>().notNull(),
    /** Release of the parent version of the same model, from the manifest's lineage. */
    parentRelease: integer('parent_release'),
    uploadedBy: text('uploaded_by').notNull(),
    uploadedAt: timestamp('uploaded_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [
    unique('model_versions_name_release').on(t.name, t.release),
    unique('model_versions_name_version').on(t.name, t.version),
    index('model_versions_name_idx').on(t.name, t.release),
  ],
);

export const trustRoots = pgTable('trust_roots', {
  version: integer('version').primaryKey(),
  /** The signed root envelope, base64, exactly as uploaded. */
  envelope: text('envelope').notNull(),
  expires: text('expires').notNull(),
  installedBy: text('installed_by').notNull(),
  installedAt: timestamp('installed_at', { withTimezone: true, mode: 'date' }).notNull(),
});
