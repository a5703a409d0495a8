/**
 * The audit log table: one row per state change, hash-chained (see
 * core/audit/audit-chain.ts). `at` is kept as the exact ISO string that was
 * hashed, not a timestamptz the database would reformat.
 */
import { bigint, jsonb, pgTable, text } from 'drizzle-orm/pg-core';

export const auditLog = pgTable('audit_log', {
  seq: bigint('seq', { mode: 'number' }).primaryKey(),
  at: text('at').notNull(),
  actor: text('actor').notNull(),
  action: text('action').notNull(),
  subject: text('subject').notNull(),
  before: jsonb('before'),
  after: jsonb('after'),
  prevHash: text('prev_hash').notNull(),
  hash: text('hash').notNull(),
});
