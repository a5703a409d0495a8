/**
 * A federated round's stored state, the events that move it and the actions
 * it asks the adapter to carry out, all plain JSON-safe values (the adapter
 * stores the snapshot as it is and performs the actions in order).
 */
import type { PromotionDecision, RiskTier } from './promotion.ts';
import type { RoundConfig } from './round-config.ts';
import type { CandidateDevice } from './round-selection.ts';
import type { StrategyConfig } from './types.ts';

export type RoundStatus =
  | 'configuring'
  | 'collecting'
  | 'aggregating'
  | 'evaluating'
  | 'promoted'
  | 'awaiting-approval'
  | 'rejected'
  | 'failed'
  | 'cancelled';

/** Statuses no event leaves. */
export const FINAL_ROUND_STATUSES: readonly RoundStatus[] = [
  'promoted',
  'rejected',
  'failed',
  'cancelled',
];

/**
 * Why an update was refused, counted per round. `unsigned` and
 * `bad-signature` are refused by the adapter before an event exists.
 */
export const UPDATE_REJECTION_REASONS = [
  'wrong-round',
  'wrong-base',
  'not-selected',
  'replayed',
  'duplicate',
  'late',
  'non-finite',
  'over-clip',
  'malformed',
] as const;
export type UpdateRejectionReason = (typeof UPDATE_REJECTION_REASONS)[number];

/** A selected device's one answer. */
export interface DeviceAnswer {
  deviceId: string;
  updateId: string;
  outcome: 'accepted' | 'failed' | 'rejected';
  /** Samples claimed (accepted: its FedAvg weight). */
  sampleCount: number;
  /** The failure the device reported, or the rejection reason. */
  reason: string | null;
  atMs: number;
}

export interface RoundSnapshot {
  roundId: string;
  /** The model devices train from (bundleModelRef's bundle id). */
  baseBundleId: string;
  config: RoundConfig;
  promotion: { riskTier: RiskTier; autoPromote: boolean };
  /** Seeds selection and the devices' training. */
  seed: string;
  status: RoundStatus;
  createdAtMs: number;
  updatedAtMs: number;
  /** Set when collection starts. */
  deadlineAtMs: number | null;
  eligibleCount: number;
  selected: string[];
  answers: DeviceAnswer[];
  /** Every update id seen for this round (replay detection). */
  seenUpdateIds: string[];
  rejections: Record<UpdateRejectionReason, number>;
  /** Selected devices with no answer when collection closed. */
  stragglers: string[];
  candidateId: string | null;
  evaluation: { candidateAccuracy: number; championAccuracy: number } | null;
  decision: PromotionDecision | null;
  /** Why the round ended as it did (final statuses), or null. */
  reason: string | null;
}

/** Facts about one `fl-update` (header verified, parts assembled and decoded by the adapter). */
export interface UpdateReceived {
  type: 'update-received';
  updateId: string;
  deviceId: string;
  roundId: string;
  baseBundleId: string;
  status: 'ok' | 'failed';
  /** The device's reason for a failed status. */
  failureReason?: string | null;
  sampleCount: number;
  /**
   * For an ok update: what decoding found. Null when the bytes could not be
   * assembled or decoded (hash, size, format): then it is malformed.
   */
  decoded: { norm: number; finite: boolean; quantizationErrorBound: number } | null;
  /** Why it could not be decoded, when `decoded` is null. */
  malformedReason?: string | null;
}

export type RoundEvent =
  | { type: 'start'; devices: readonly CandidateDevice[] }
  | UpdateReceived
  | { type: 'deadline-tick' }
  /** The aggregate is computed; `error` when the strategy refused the updates. */
  | { type: 'aggregated'; candidateId: string; notes?: string[]; error?: string | null }
  | { type: 'evaluated'; candidateAccuracy: number; championAccuracy: number }
  | { type: 'approved'; actor: string }
  | { type: 'cancel'; actor: string; reason: string };

/** The `fl-train` command's config (protocol message `config`). */
export interface TrainConfig {
  epochs: number;
  batchSize: number;
  learningRate: number;
  proxMu: number;
  clipNorm: number;
  minSamples: number;
  maxSamples: number;
  encoding: 'int8' | 'float32';
  seed: number;
}

export type RoundAuditKind =
  | 'round-started'
  | 'update-rejected'
  | 'device-failed'
  | 'collection-closed'
  | 'aggregated'
  | 'evaluated'
  | 'round-failed'
  | 'promoted'
  | 'awaiting-approval'
  | 'approved'
  | 'rejected'
  | 'cancelled';

export type RoundAction =
  | {
      type: 'send-train';
      roundId: string;
      baseBundleId: string;
      deviceIds: string[];
      config: TrainConfig;
      deadlineMs: number;
    }
  | {
      type: 'aggregate';
      roundId: string;
      strategy: StrategyConfig;
      updates: { deviceId: string; updateId: string; sampleCount: number }[];
    }
  | { type: 'evaluate'; roundId: string; candidateId: string }
  | {
      type: 'build-candidate';
      roundId: string;
      candidateId: string;
      /** Lineage recorded with the new model version. */
      lineage: {
        roundId: string;
        baseBundleId: string;
        strategy: StrategyConfig;
        config: RoundConfig;
        participants: { deviceId: string; sampleCount: number }[];
        evaluation: { candidateAccuracy: number; championAccuracy: number };
      };
    }
  | { type: 'start-rollout'; roundId: string; candidateId: string }
  | { type: 'audit'; roundId: string; kind: RoundAuditKind; reason: string };

export interface RoundStep {
  state: RoundSnapshot;
  actions: RoundAction[];
}
