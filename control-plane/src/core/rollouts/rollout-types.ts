/**
 * The rollout engine's data: what a rollout is (its spec and policy), where it
 * stands, and where each of its devices stands. Plain, JSON-safe values with
 * times in epoch ms, so the pure engine (rollout-engine.ts) reads and returns
 * them and the database adapter (adapters/db/rollout-store.ts) stores them
 * without either knowing the other. Never wire types: the adapter that sends
 * commands builds protocol messages from these.
 */
import type { BundleModelRef } from '@fleet/protocol';

/**
 * Which devices a rollout targets; every given field must match (AND), tags all
 * of them. A selector with no criterion is refused when it is built
 * (target-selector.ts): the whole fleet is targeted only by saying `all: true`,
 * alone.
 */
export interface TargetSelector {
  /** Every device. Never combined with another field. */
  all?: true;
  /** Each `key=value` must be among the device's tags. */
  tags?: Record<string, string>;
  /** The device's hardware class is one of these. */
  hardware?: string[];
  /** The device is one of these ids. */
  deviceIds?: string[];
}

/** One wave's size: a share of the target (1..100 %) or a device count, cumulative over waves. */
export type WaveSize = { percent: number } | { count: number };

/** Health gates on what devices report while the new model is on probation. */
export interface HealthGates {
  maxErrorRate: number;
  maxLatencyP95Ms: number;
  minMeanConfidence: number;
}

export interface RolloutPolicy {
  /** Cumulative wave sizes, e.g. 1 %, 10 %, 50 %, 100 %. The last one covers the whole target. */
  waves: WaveSize[];
  /** How long a wave must stay at its success share before the next starts. */
  bakeMs: number;
  /** Share of a wave's devices that must have succeeded before it may advance (0..1). */
  successRatio: number;
  /** Share of failed devices, over the devices started so far, above which the rollout aborts (0..1). */
  maxFailureRatio: number;
  /** How long a device may take from the deploy command to its final report. */
  deviceTimeoutMs: number;
  /** How many times a timed-out (or transiently failed) device is sent the deploy again. */
  retries: number;
  /** First retry delay; doubles per attempt. */
  retryBackoffMs: number;
  /** How long an agent serves the new model on probation before it commits. */
  probationMs: number;
  gates: HealthGates;
  /**
   * Share of inferences the devices sample into their drift sketches while
   * they serve this rollout's model; absent, the bundle's own default
   * (manifest `drift.sampleRate`).
   */
  driftSampleRate?: number;
}

export type RolloutStatus = 'running' | 'paused' | 'completed' | 'aborted';

export interface RolloutSnapshot {
  id: string;
  /** The bundle being rolled out. */
  model: BundleModelRef;
  /** The model each device is expected to go back to is its own previous one; see RolloutDevice. */
  selector: TargetSelector;
  policy: RolloutPolicy;
  status: RolloutStatus;
  /** Index into `policy.waves` of the wave now being deployed. */
  currentWave: number;
  waveStartedAtMs: number;
  /** When the current wave first reached its success share; null before. */
  waveSucceededAtMs: number | null;
  createdAtMs: number;
  updatedAtMs: number;
  /** Why the rollout is paused, aborted or completed, for people. */
  reason: string | null;
}

/**
 * Where one device of a rollout stands:
 *
 *   pending     in the target, no deploy in flight: its wave not started, the
 *               rollout paused before it was sent, or a retry is scheduled
 *               (`nextAttemptAtMs`)
 *   sent        deploy command sent, no report yet
 *   updating    the agent reports progress (downloading .. activating)
 *   probation   the new model serves on probation
 *   succeeded   committed after probation (within the gates)
 *   failed      refused, rolled back by itself, out of retries, or broke the
 *               health gates on probation (then told to stop or go back)
 *   cancelled   told to stop (abort) before it committed
 *   rolled_back told to go back after it had committed (abort), or committed
 *               after it had been told to stop
 */
export type RolloutDeviceStatus =
  | 'pending'
  | 'sent'
  | 'updating'
  | 'probation'
  | 'succeeded'
  | 'failed'
  | 'cancelled'
  | 'rolled_back';

/** Every RolloutDeviceStatus, in the order above. */
export const ROLLOUT_DEVICE_STATUSES: readonly RolloutDeviceStatus[] = [
  'pending',
  'sent',
  'updating',
  'probation',
  'succeeded',
  'failed',
  'cancelled',
  'rolled_back',
];

export interface RolloutDevice {
  deviceId: string;
  /** The wave the device belongs to (index into `policy.waves`). */
  wave: number;
  status: RolloutDeviceStatus;
  /** Deploy commands sent so far. */
  attempts: number;
  lastSentAtMs: number | null;
  /** When a retry is due; null when none is scheduled. */
  nextAttemptAtMs: number | null;
  /** What the device ran when it joined the rollout (its way back). */
  previousModel: BundleModelRef | null;
  /** The last error the device reported, or the engine's own (`DEVICE_TIMEOUT`, `HEALTH_GATE`). */
  error: { code: string; message: string } | null;
  /**
   * When the device reported committing this rollout's bundle; null before.
   * Non-null means it serves the new model, so taking it back needs a signed
   * rollback (not a cancel), and the engine orders that rollback once.
   */
  committedAtMs: number | null;
  updatedAtMs: number;
}
