/**
 * The audit log in the database: appends seal each entry against the current
 * head inside one transaction that holds an advisory lock, so concurrent
 * appends (several replicas on one PostgreSQL) still form a single chain.
 */
import { asc, desc, gt, sql } from 'drizzle-orm';
import { auditLog } from '../../db/schema/index.ts';
import {
  sealAuditEntry,
  verifyAuditChain,
  type AuditEntry,
  type AuditFields,
  type AuditVerdict,
  type ChainHead,
} from '../../core/audit/audit-chain.ts';
import type { Database } from './database.ts';

/** Advisory-lock key serializing audit appends ("fleet-audit"). */
const AUDIT_LOCK_KEY = 0x666c6561;

export interface AuditStore {
  append(fields: AuditFields): Promise<AuditEntry>;
  list(): Promise<AuditEntry[]>;
  /** Entries after `afterSeq`, oldest first, at most `limit`. */
  page(afterSeq: number, limit: number): Promise<AuditEntry[]>;
  verify(expectedHead?: ChainHead): Promise<AuditVerdict>;
}

function toEntry(row: typeof auditLog.$inferSelect): AuditEntry {
  return { ...row, before: row.before ?? null, after: row.after ?? null };
}

/**
 * Appends one entry inside the caller's transaction `tx`, so the audited
 * change and its audit row commit together or not at all.
 */
export async function appendAuditIn(tx: Database, fields: AuditFields): Promise<AuditEntry> {
  await tx.execute(sql`select pg_advisory_xact_lock(${AUDIT_LOCK_KEY})`);
  const [head] = await tx
    .select({ seq: auditLog.seq, hash: auditLog.hash })
    .from(auditLog)
    .orderBy(desc(auditLog.seq))
    .limit(1);
  const entry = await sealAuditEntry(head ?? null, fields);
  await tx.insert(auditLog).values(entry);
  return entry;
}

export function createAuditStore(db: Database): AuditStore {
  async function list(): Promise<AuditEntry[]> {
    const rows = await db.select().from(auditLog).orderBy(asc(auditLog.seq));
    return rows.map(toEntry);
  }
  return {
    append: (fields) => db.transaction((tx) => appendAuditIn(tx, fields)),
    list,
    page: async (afterSeq, limit) =>
      (
        await db
          .select()
          .from(auditLog)
          .where(gt(auditLog.seq, afterSeq))
          .orderBy(asc(auditLog.seq))
          .limit(limit)
      ).map(toEntry),
    verify: async (expectedHead) => verifyAuditChain(await list(), expectedHead),
  };
}
