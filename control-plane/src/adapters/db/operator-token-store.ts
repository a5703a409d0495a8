/**
 * Operator API tokens in the database (hash only), with their audit entries.
 * `bootstrapAdmin` creates the first admin token exactly once: the insert and
 * the "no token exists yet" check run under one advisory lock, so two replicas
 * starting together cannot both print one.
 */
import { and, asc, eq, isNull, sql } from 'drizzle-orm';
import { operatorTokens } from '../../db/schema/index.ts';
import type { OperatorRole } from '../../core/auth/operator-tokens.ts';
import { controlPlaneError } from '../../core/errors.ts';
import { appendAuditIn } from './audit-store.ts';
import { SYSTEM_ACTOR, type Actor } from './actor.ts';
import type { Database } from './database.ts';

export type OperatorTokenRow = typeof operatorTokens.$inferSelect;

export interface NewOperatorToken {
  id: string;
  tokenHash: string;
  name: string;
  role: OperatorRole;
}

const BOOTSTRAP_LOCK_KEY = 0x666c6562;

export interface OperatorTokenStore {
  create(token: NewOperatorToken, actor: Actor, now: Date): Promise<OperatorTokenRow>;
  /** Creates `token` as the first admin when no token exists; false when one does. */
  bootstrapAdmin(token: NewOperatorToken, now: Date): Promise<boolean>;
  /** The live (not revoked) token with this hash. */
  findActive(tokenHash: string): Promise<OperatorTokenRow | null>;
  list(): Promise<OperatorTokenRow[]>;
  revoke(id: string, actor: Actor, now: Date): Promise<OperatorTokenRow>;
}

const auditView = (row: OperatorTokenRow) => ({
  id: row.id,
  name: row.name,
  role: row.role,
  revokedAt: row.revokedAt?.toISOString() ?? null,
});

export function createOperatorTokenStore(db: Database): OperatorTokenStore {
  const activeByHash = db
    .select()
    .from(operatorTokens)
    .where(
      and(
        eq(operatorTokens.tokenHash, sql.placeholder('tokenHash')),
        isNull(operatorTokens.revokedAt),
      ),
    )
    .prepare('fleet_active_token_by_hash');

  async function insert(tx: Database, token: NewOperatorToken, actor: Actor, now: Date) {
    const [row] = await tx
      .insert(operatorTokens)
      .values({ ...token, createdBy: actor, createdAt: now })
      .returning();
    await appendAuditIn(tx, {
      at: now.toISOString(),
      actor,
      action: 'token.created',
      subject: `token:${token.id}`,
      before: null,
      after: auditView(row!),
    });
    return row!;
  }

  return {
    create: (token, actor, now) => db.transaction((tx) => insert(tx, token, actor, now)),

    bootstrapAdmin: (token, now) =>
      db.transaction(async (tx) => {
        await tx.execute(sql`select pg_advisory_xact_lock(${BOOTSTRAP_LOCK_KEY})`);
        const [any] = await tx.select({ id: operatorTokens.id }).from(operatorTokens).limit(1);
        if (any) return false;
        await insert(tx, { ...token, role: 'admin' }, SYSTEM_ACTOR, now);
        return true;
      }),

    findActive: async (tokenHash) => (await activeByHash.execute({ tokenHash }))[0] ?? null,

    list: () => db.select().from(operatorTokens).orderBy(asc(operatorTokens.createdAt)),

    revoke: (id, actor, now) =>
      db.transaction(async (tx) => {
        const [before] = await tx
          .select()
          .from(operatorTokens)
          .where(eq(operatorTokens.id, id))
          .for('update');
        if (!before) throw controlPlaneError('NOT_FOUND', `token ${id} does not exist`);
        if (before.revokedAt) throw controlPlaneError('CONFLICT', `token ${id} is already revoked`);
        const [after] = await tx
          .update(operatorTokens)
          .set({ revokedAt: now })
          .where(eq(operatorTokens.id, id))
          .returning();
        await appendAuditIn(tx, {
          at: now.toISOString(),
          actor,
          action: 'token.revoked',
          subject: `token:${id}`,
          before: auditView(before),
          after: auditView(after!),
        });
        return after!;
      }),
  };
}
