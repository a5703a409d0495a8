/**
 * Secrets handed to people and devices: operator API tokens and single-use
 * enrolment tokens. Only their SHA-256 is stored (core/auth/operator-tokens.ts).
 */
import { index, jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

export const operatorTokens = pgTable('operator_tokens', {
  id: text('id').primaryKey(),
  tokenHash: text('token_hash').notNull().unique(),
  name: text('name').notNull(),
  role: text('role').notNull(),
  createdBy: text('created_by').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
  revokedAt: timestamp('revoked_at', { withTimezone: true, mode: 'date' }),
});

export const enrolmentTokens = pgTable(
  'enrolment_tokens',
  {
    id: text('id').primaryKey(),
    tokenHash: text('token_hash').notNull().unique(),
    /** Tags every device enrolled with this token gets (the device's own are merged under them). */
    tags: jsonb('tags').$type<Record<string, string>>().notNull(),
    /** When set, only a device of this hardware class may use the token. */
    hardware: text('hardware'),
    createdBy: text('created_by').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }).notNull(),
    usedAt: timestamp('used_at', { withTimezone: true, mode: 'date' }),
    usedBy: text('used_by'),
  },
  (t) => [index('enrolment_tokens_expires_idx').on(t.expiresAt)],
);
