/**
 * The assembled agent's public shape (fleet-agent.ts builds it): the options
 * it takes, the events it emits and the methods it offers. Kept apart so the
 * assembly reads on its own.
 */

import type { Signer, TrustedRoot } from '@fleet/protocol';
import type { AgentSession, AgentSessionOptions } from '../adapters/mqtt/agent-session.ts';
import type {
  Feedback,
  FeedbackBatchResult,
  FeedbackItem,
  FeedbackStats,
} from '../core/feedback.ts';
import type {
  LabelledSampleStore,
  LabelRetention,
  ReadOptions,
  TrainingSet,
} from '../core/labelled-samples.ts';
import type { RecentInferenceBounds } from '../core/recent-inferences.ts';
import type { DriftOutboxBounds } from '../core/drift-outbox.ts';
import type { ModelHost } from '../core/model-host.ts';
import type { DownloadStore, DriftOutboxStore, SlotStore, StateStore } from '../core/storage.ts';
import type { AgentState } from '../core/update-state.ts';
import type { BlockDownloader, Timers } from './block-downloader.ts';
import type { DriftEvent, DriftReporting, DriftStats } from './drift-reporting.ts';
import type { FlEvent, FlTraining, FlUpdateOverride } from './fl-training.ts';
import type { Trainer } from '../core/training/types.ts';

export interface FleetAgentOptions {
  deviceId: string;
  hardware: string;
  signer: Signer;
  agentVersion?: string;
  mqttUrl: string;
  trustRoot: () => TrustedRoot;
  stores: {
    state: StateStore;
    downloads: DownloadStore;
    slots: SlotStore;
    /**
     * The drift outbox's store. Without one, an in-memory store kept per
     * `stores` object, so an agent restarted on the same stores (the
     * simulator's) finds its unsent flushes and its seq.
     */
    driftOutbox?: DriftOutboxStore;
    /**
     * Labelled samples (feedback). Without one, an in-memory store kept per
     * `stores` object, like the drift outbox's.
     */
    labels?: LabelledSampleStore;
  };
  host: ModelHost;
  nowMs?: () => number;
  timers?: Timers;
  /** Backoff jitter, drift sampling and sketch compactions; Math.random by default. */
  random?: () => number;
  /** How often the update machine gets a `tick` (deadlines, probation end). */
  tickIntervalMs?: number;
  /** How often a health report is sent while a model serves; 0 disables. */
  healthIntervalMs?: number;
  session?: Partial<
    Pick<
      AgentSessionOptions,
      'minBackoffMs' | 'maxBackoffMs' | 'connectTimeoutMs' | 'keepaliveSeconds'
    >
  >;
  downloader?: { firstRepairDelayMs?: number; broadcastWaitMs?: number; maxRepairDelayMs?: number };
  drift?: {
    outboxBounds?: Partial<DriftOutboxBounds>;
    maxInFlight?: number;
    /** Flush ids; random UUIDs by default. */
    newId?: () => string;
  };
  feedback?: {
    /** Rows remembered for delayed labels; default AGENT_RECENT_INFERENCE_BOUNDS (256 rows, 1 h). */
    recent?: Partial<RecentInferenceBounds>;
    /** Retention of the in-memory label store made when `stores.labels` is absent. */
    retention?: Partial<LabelRetention>;
  };
  /**
   * Trains federated rounds; the process's shared worker pool by default (so
   * training never holds up inference). The simulator injects one for many agents.
   */
  trainer?: Trainer;
  /**
   * SIMULATION ONLY (the simulator's Byzantine devices): the exact update
   * bytes to send for a round instead of the honest clipped encoding, given
   * the raw delta; null sends the honest one. See fl-training.ts.
   */
  flUpdateOverride?: FlUpdateOverride;
  /** The MQTT session's maker (tests inject a fake); createAgentSession by default. */
  createSession?: (options: AgentSessionOptions) => AgentSession;
  onEvent?: (event: AgentEvent) => void;
}

export type AgentEvent =
  | { type: 'command-refused'; code: string; message: string }
  | { type: 'action-error'; action: string; message: string }
  | { type: 'connected' }
  | { type: 'disconnected' }
  | { type: 'labels-corrupt'; code: 'AGENT_STATE_CORRUPT'; message: string }
  | { type: 'labels-error'; message: string }
  | DriftEvent
  | FlEvent;

export interface FleetAgent {
  readonly deviceId: string;
  /** Boots the update machine (the committed model serves), then connects. */
  start(options?: { connectTimeoutMs?: number }): Promise<void>;
  state(): AgentState;
  session(): AgentSession;
  downloader(): BlockDownloader;
  drift(): DriftReporting;
  /** Drift flushes written, sent, resent, dropped, pending; the monitor's counts. */
  driftStats(): DriftStats;
  /** Labels an earlier inference row (its id from `infer`'s `ids`); see core/feedback.ts. */
  feedback(id: string, label: number): Promise<void>;
  feedbackMany(items: readonly FeedbackItem[]): Promise<FeedbackBatchResult>;
  feedbackStats(): FeedbackStats;
  /** The feedback service itself (the local HTTP API mounts it). */
  feedbackService(): Feedback;
  /** The labelled samples, for the trainer: `read({ maxSamples, seed })`. */
  labelledSamples: {
    read(options?: ReadOptions): Promise<TrainingSet>;
    count(): number;
  };
  /** Federated rounds: the one training now (`active()`), `idle()`. */
  flTraining(): FlTraining;
  /** Waits until no update input is being processed. */
  settle(): Promise<void>;
  /** Stops everything as a power cut would: no clean disconnect, the broker publishes the last will. */
  crash(): void;
  close(): Promise<void>;
}
