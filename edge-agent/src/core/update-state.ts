/**
 * The agent's persisted update state: what model is committed in which slot,
 * the anti-rollback floor, and the one update in flight. It is written
 * atomically (temp file, fsync, rename) before every action the update
 * machine (update-machine.ts) asks for, so a power cut at any step finds
 * either the state before the step or the state after it, never half.
 *
 * Plain JSON, times in epoch ms. `parseAgentState` checks a file read back
 * from disk, so a corrupt state file is reported, never half-trusted.
 */
import { z } from 'zod';
import {
  bundleIdSchema,
  bundleModelRefSchema,
  errorReportSchema,
  probationPolicySchema,
  rolloutIdSchema,
  type BundleModelRef,
  type ErrorReport,
  type ProbationPolicy,
  type UpdateState,
} from '@fleet/protocol';

/** The two model slots (A/B): the committed model lives in one, an update is staged in the other. */
export type Slot = 'a' | 'b';
const slotSchema = z.enum(['a', 'b']);

export function spareSlot(slot: Slot | undefined): Slot {
  return slot === 'a' ? 'b' : 'a';
}

/** The phases of an update in flight; `committed` / `rolled_back` end it. */
export type JobPhase = Extract<
  UpdateState,
  'downloading' | 'verifying' | 'staged' | 'activating' | 'probation'
>;
const jobPhaseSchema = z.enum(['downloading', 'verifying', 'staged', 'activating', 'probation']);

export interface InstalledModel {
  ref: BundleModelRef;
  slot: Slot;
  /** The rollout that installed it (absent in state files written before drift monitoring). */
  rolloutId?: string;
  /** That rollout's drift sampling rate (deploy `drift.sampleRate`); absent: the manifest's. */
  driftSampleRate?: number;
}
const driftSampleRateSchema = z.number().gt(0).max(1);
const installedModelSchema = z.strictObject({
  ref: bundleModelRefSchema,
  slot: slotSchema,
  rolloutId: rolloutIdSchema.optional(),
  driftSampleRate: driftSampleRateSchema.optional(),
});

/** An update in flight: one bundle of one rollout, from download to commit. */
export interface UpdateJob {
  rolloutId: string;
  /** The deploy command that started it (for de-duplication and reports). */
  commandId: string;
  /** The model the signed manifest names (checked before the job existed). */
  model: BundleModelRef;
  sizeBytes: number;
  blockSizeBytes: number;
  blockCount: number;
  /** Merkle root of the blocks (from the deploy command; transport integrity only). */
  blockRoot: string;
  /** The signed manifest envelope as received, base64 (verified again with the whole file). */
  manifestEnvelope: string;
  phase: JobPhase;
  /** The spare slot the new model goes into. */
  slot: Slot;
  startedAtMs: number;
  /** The download and verification must end by then (THREATS 26). */
  deadlineMs: number;
  probation: ProbationPolicy;
  /** When the new model started serving on probation. */
  probationStartedAtMs: number | null;
  /**
   * Set when a signed rollback instruction authorized this (lower) release:
   * then the anti-rollback check is the instruction's, not the release floor.
   */
  authorizedRollback: boolean;
  /** The deploy's drift sampling rate override (`drift.sampleRate`), if it set one. */
  driftSampleRate?: number;
}
const updateJobSchema = z.strictObject({
  rolloutId: rolloutIdSchema,
  commandId: z.string().max(64),
  model: bundleModelRefSchema,
  sizeBytes: z.number().int().min(1),
  blockSizeBytes: z.number().int().min(1),
  blockCount: z.number().int().min(1),
  blockRoot: z.string().regex(/^[0-9a-f]{64}$/),
  manifestEnvelope: z.string().max(256 * 1024),
  phase: jobPhaseSchema,
  slot: slotSchema,
  startedAtMs: z.number().int(),
  deadlineMs: z.number().int(),
  probation: probationPolicySchema,
  probationStartedAtMs: z.number().int().nullable(),
  authorizedRollback: z.boolean(),
  driftSampleRate: driftSampleRateSchema.optional(),
});

/** How the last update ended, to report it and to answer a duplicate deploy. */
export interface UpdateOutcome {
  /** Null for a rollback ordered outside any rollout. */
  rolloutId: string | null;
  bundleId: string;
  state: 'committed' | 'rolled_back' | 'idle';
  error: ErrorReport | null;
  atMs: number;
}
const updateOutcomeSchema = z.strictObject({
  rolloutId: rolloutIdSchema.nullable(),
  bundleId: bundleIdSchema,
  state: z.enum(['committed', 'rolled_back', 'idle']),
  error: errorReportSchema.nullable(),
  atMs: z.number().int(),
});

export interface AgentState {
  schemaVersion: 1;
  /** The model that serves after any restart; null before the first install. */
  committed: InstalledModel | null;
  /** The model committed before `committed`, still in the other slot unless an update overwrote it. */
  previous: InstalledModel | null;
  /** Highest release ever committed per model name: the anti-rollback floor (THREATS 9). */
  releaseFloor: Record<string, number>;
  job: UpdateJob | null;
  last: UpdateOutcome | null;
  /** Ids of the latest commands handled, newest last (QoS 1 redelivers; THREATS 23). */
  recentCommandIds: string[];
}

/** How many command ids the agent remembers for de-duplication. */
export const RECENT_COMMAND_IDS = 64;

export const agentStateSchema = z.strictObject({
  schemaVersion: z.literal(1),
  committed: installedModelSchema.nullable(),
  previous: installedModelSchema.nullable(),
  releaseFloor: z.record(z.string().max(64), z.number().int().min(0)),
  job: updateJobSchema.nullable(),
  last: updateOutcomeSchema.nullable(),
  recentCommandIds: z.array(z.string().max(64)).max(RECENT_COMMAND_IDS),
});

export function initialAgentState(): AgentState {
  return {
    schemaVersion: 1,
    committed: null,
    previous: null,
    releaseFloor: {},
    job: null,
    last: null,
    recentCommandIds: [],
  };
}

/** The update state the agent reports: the job's phase, else how the last job ended. */
export function reportedUpdateState(state: AgentState): UpdateState {
  if (state.job) return state.job.phase;
  return state.last?.state ?? 'idle';
}

/**
 * Who installed the model of `bundleId` that serves now, by the persisted
 * state: the update on probation (its rollout and deploy), else the committed
 * model; for drift flushes, and the rollout's drift sampling rate.
 */
export function installOf(
  state: AgentState,
  bundleId: string,
): { rolloutId: string | null; driftSampleRate?: number } {
  const { job, committed } = state;
  const source =
    job?.model.bundleId === bundleId
      ? job
      : committed?.ref.bundleId === bundleId
        ? committed
        : null;
  if (source === null) return { rolloutId: null };
  const rate = source.driftSampleRate;
  return {
    rolloutId: source.rolloutId ?? null,
    ...(rate === undefined ? {} : { driftSampleRate: rate }),
  };
}
