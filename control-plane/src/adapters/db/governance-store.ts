/**
 * Governance rows in the database (db/schema/governance.ts): eval sets, model
 * policies, federated candidates and their approvals. Every change that an
 * operator or the round pipeline makes is written with its audit entry in one
 * transaction, so the row and the log never disagree.
 */
import { and, asc, desc, eq, isNotNull } from 'drizzle-orm';
import {
  evalSets,
  flCandidates,
  modelApprovals,
  modelPolicies,
  type ApprovalStatus,
} from '../../db/schema/index.ts';
import { controlPlaneError } from '../../core/errors.ts';
import { appendAuditIn } from './audit-store.ts';
import type { Actor } from './actor.ts';
import type { Database } from './database.ts';

export type EvalSetRow = typeof evalSets.$inferSelect;
export type ModelPolicyRow = typeof modelPolicies.$inferSelect;
export type FlCandidateRow = typeof flCandidates.$inferSelect;
export type ApprovalRow = typeof modelApprovals.$inferSelect;

/** One audit entry written with a change: `action` (e.g. `eval-set.uploaded`), subject, after. */
export interface GovernanceAudit {
  action: string;
  subject: string;
  before?: unknown;
  after: unknown;
}

export interface GovernanceStore {
  /** Inserts or replaces the eval set `row.name`, audited (`before`: the replaced row). */
  putEvalSet(
    row: Omit<EvalSetRow, 'uploadedBy' | 'uploadedAt'>,
    actor: Actor,
    now: Date,
  ): Promise<EvalSetRow>;
  getEvalSet(name: string): Promise<EvalSetRow | null>;
  listEvalSets(): Promise<EvalSetRow[]>;

  getPolicy(modelName: string): Promise<ModelPolicyRow | null>;
  /** Policies with round triggers set (drift or schedule), by model name. */
  policiesWithTriggers(): Promise<ModelPolicyRow[]>;
  /** Inserts or replaces the policy of `row.modelName`, audited. */
  putPolicy(
    row: Omit<ModelPolicyRow, 'updatedBy' | 'updatedAt'>,
    actor: Actor,
    now: Date,
  ): Promise<ModelPolicyRow>;

  getCandidate(candidateId: string): Promise<FlCandidateRow | null>;
  /** Records an evaluated candidate (a repeated evaluation replaces it). */
  putCandidate(row: FlCandidateRow): Promise<void>;
  /**
   * Records that the candidate was built and registered as `bundleId`, its
   * lineage, and a pending approval, with one audit entry.
   */
  recordBuilt(
    input: {
      candidateId: string;
      bundleId: string;
      lineage: Record<string, unknown>;
      approval: Omit<ApprovalRow, 'status' | 'decidedBy' | 'decidedAt' | 'rolloutId'>;
    },
    audit: GovernanceAudit,
    actor: Actor,
    now: Date,
  ): Promise<void>;
  getApproval(bundleId: string): Promise<ApprovalRow | null>;
  /**
   * Moves a pending approval to `status`, audited. CONFLICT when it is not
   * pending (decided already, perhaps concurrently); NOT_FOUND when absent.
   */
  decide(
    bundleId: string,
    status: Exclude<ApprovalStatus, 'pending'>,
    audit: GovernanceAudit,
    actor: Actor,
    now: Date,
  ): Promise<ApprovalRow>;
  /** Puts a decided approval back to pending (its rollout could not start), audited. */
  reopen(bundleId: string, audit: GovernanceAudit, actor: Actor, now: Date): Promise<void>;
  /** Records the rollout a candidate's promotion started, audited. */
  recordRollout(
    bundleId: string,
    rolloutId: string,
    audit: GovernanceAudit,
    actor: Actor,
    now: Date,
  ): Promise<void>;
  listApprovals(modelName: string): Promise<ApprovalRow[]>;
}

async function audited(tx: Database, audit: GovernanceAudit, actor: Actor, now: Date) {
  await appendAuditIn(tx, {
    at: now.toISOString(),
    actor,
    action: audit.action,
    subject: audit.subject,
    before: audit.before ?? null,
    after: audit.after ?? null,
  });
}

export function createGovernanceStore(db: Database): GovernanceStore {
  const approval = async (tx: Database, bundleId: string) =>
    (await tx.select().from(modelApprovals).where(eq(modelApprovals.bundleId, bundleId)))[0] ??
    null;

  return {
    putEvalSet: (row, actor, now) =>
      db.transaction(async (tx) => {
        const [before] = await tx.select().from(evalSets).where(eq(evalSets.name, row.name));
        const values = { ...row, uploadedBy: actor, uploadedAt: now };
        const [stored] = await tx
          .insert(evalSets)
          .values(values)
          .onConflictDoUpdate({ target: evalSets.name, set: values })
          .returning();
        const summary = (r: EvalSetRow) => ({
          blobId: r.blobId,
          sizeBytes: r.sizeBytes,
          sampleCount: r.sampleCount,
          featureCount: r.featureCount,
          classCount: r.classCount,
        });
        await audited(
          tx,
          {
            action: before ? 'eval-set.replaced' : 'eval-set.uploaded',
            subject: `eval-set:${row.name}`,
            before: before ? summary(before) : null,
            after: summary(stored!),
          },
          actor,
          now,
        );
        return stored!;
      }),

    getEvalSet: async (name) =>
      (await db.select().from(evalSets).where(eq(evalSets.name, name)))[0] ?? null,

    listEvalSets: () => db.select().from(evalSets).orderBy(asc(evalSets.name)),

    getPolicy: async (modelName) =>
      (await db.select().from(modelPolicies).where(eq(modelPolicies.modelName, modelName)))[0] ??
      null,

    policiesWithTriggers: () =>
      db
        .select()
        .from(modelPolicies)
        .where(isNotNull(modelPolicies.flTriggers))
        .orderBy(asc(modelPolicies.modelName)),

    putPolicy: (row, actor, now) =>
      db.transaction(async (tx) => {
        const [before] = await tx
          .select()
          .from(modelPolicies)
          .where(eq(modelPolicies.modelName, row.modelName));
        const values = { ...row, updatedBy: actor, updatedAt: now };
        const [stored] = await tx
          .insert(modelPolicies)
          .values(values)
          .onConflictDoUpdate({ target: modelPolicies.modelName, set: values })
          .returning();
        const summary = (r: ModelPolicyRow) => ({
          riskTier: r.riskTier,
          autoPromote: r.autoPromote,
          promotionMargin: r.promotionMargin,
          ...(r.flTriggers ? { flTriggers: r.flTriggers } : {}),
        });
        await audited(
          tx,
          {
            action: 'model.policy-set',
            subject: `model:${row.modelName}`,
            before: before ? summary(before) : null,
            after: summary(stored!),
          },
          actor,
          now,
        );
        return stored!;
      }),

    getCandidate: async (candidateId) =>
      (await db.select().from(flCandidates).where(eq(flCandidates.candidateId, candidateId)))[0] ??
      null,

    putCandidate: async (row) => {
      await db
        .insert(flCandidates)
        .values(row)
        .onConflictDoUpdate({ target: flCandidates.candidateId, set: row });
    },

    recordBuilt: (input, audit, actor, now) =>
      db.transaction(async (tx) => {
        await tx
          .update(flCandidates)
          .set({ bundleId: input.bundleId, lineage: input.lineage })
          .where(eq(flCandidates.candidateId, input.candidateId));
        await tx
          .insert(modelApprovals)
          .values({ ...input.approval, status: 'pending' })
          .onConflictDoNothing();
        await audited(tx, audit, actor, now);
      }),

    getApproval: (bundleId) => approval(db, bundleId),

    decide: (bundleId, status, audit, actor, now) =>
      db.transaction(async (tx) => {
        const current = await approval(tx, bundleId);
        if (!current) throw controlPlaneError('NOT_FOUND', `bundle ${bundleId} is not a candidate`);
        const [updated] = await tx
          .update(modelApprovals)
          .set({ status, decidedBy: actor, decidedAt: now })
          .where(and(eq(modelApprovals.bundleId, bundleId), eq(modelApprovals.status, 'pending')))
          .returning();
        if (!updated) {
          throw controlPlaneError(
            'CONFLICT',
            `${current.modelName}@${current.version} is ${current.status} already`,
          );
        }
        await audited(tx, audit, actor, now);
        return updated;
      }),

    reopen: (bundleId, audit, actor, now) =>
      db.transaction(async (tx) => {
        await tx
          .update(modelApprovals)
          .set({ status: 'pending', decidedBy: null, decidedAt: null })
          .where(eq(modelApprovals.bundleId, bundleId));
        await audited(tx, audit, actor, now);
      }),

    recordRollout: (bundleId, rolloutId, audit, actor, now) =>
      db.transaction(async (tx) => {
        await tx
          .update(modelApprovals)
          .set({ rolloutId })
          .where(eq(modelApprovals.bundleId, bundleId));
        await audited(tx, audit, actor, now);
      }),

    listApprovals: (modelName) =>
      db
        .select()
        .from(modelApprovals)
        .where(eq(modelApprovals.modelName, modelName))
        .orderBy(desc(modelApprovals.release)),
  };
}
