/**
 * What goes into the rollout engine (events) and what comes out (commands for
 * devices, decisions for the audit log), as plain JSON-safe values. The
 * adapter turns each `RolloutCommand` into a protocol command message and
 * writes each `RolloutDecision` to the audit log; neither is stored as rollout
 * state (that is rollout-types.ts).
 */
import type { BundleModelRef, ErrorReport, ModelRef, UpdateState } from '@fleet/protocol';
import type { SelectableDevice } from './target-selector.ts';
import type { RolloutDevice, RolloutSnapshot } from './rollout-types.ts';

/**
 * One thing that happened. Every event also runs the rollout's timers up to
 * the step's `nowMs` (see rollout-engine.ts), so `tick` is just "time passed".
 */
export type RolloutEvent =
  | { type: 'tick' }
  /**
   * A device's update status from its `progress` message or its `state`
   * message's `update` field. Ignored unless both ids are this rollout's and
   * this rollout's bundle (a state message without a rollout id is not routed here).
   */
  | {
      type: 'device-report';
      deviceId: string;
      rolloutId: string;
      bundleId: string;
      state: UpdateState;
      error: ErrorReport | null;
    }
  /**
   * A device's `health` message over one window: judged against the policy's
   * gates when it is about this rollout's model on probation.
   */
  | {
      type: 'device-health';
      deviceId: string;
      model: ModelRef;
      probation: boolean;
      requests: number;
      errors: number;
      latencyP95Ms: number;
      /** Null exactly when no inference succeeded in the window. */
      meanConfidence: number | null;
    }
  /** A device enrolled (or re-tagged) after the start; it joins if it matches the selector. */
  | { type: 'device-joined'; device: SelectableDevice; previousModel: BundleModelRef | null }
  | { type: 'pause'; actor: string; reason: string }
  | { type: 'resume'; actor: string }
  | { type: 'abort'; actor: string; reason: string };

/**
 * What to send one device.
 *
 * - `deploy`: the rollout's bundle. `deadlineMs` is when download and
 *   verification must be done (the deploy message's `deadline`): the device
 *   timeout less the probation, so probation still fits before the engine's
 *   own timeout. `attempt` counts from 1 (for the message id and logs).
 * - `cancel`: stop working on this rollout's update; the device has not
 *   committed it, so no signature is needed (the agent rolls back locally).
 * - `rollback`: the device has committed this rollout's model and must go back
 *   to `to`, its model before the rollout. Every rollback needs a signed
 *   rollback authorization (ARCHITECTURE "Trust"); the adapter sends one if it
 *   has one. `to` is null when the device had no model before: then there is
 *   nothing to go back to, and the adapter must say so instead of sending.
 */
export type RolloutCommand =
  | { type: 'deploy'; deviceId: string; attempt: number; deadlineMs: number }
  | { type: 'cancel'; deviceId: string; reason: string }
  | {
      type: 'rollback';
      deviceId: string;
      to: BundleModelRef | null;
      reason: string;
      needsSignedAuthorization: true;
    };

export type RolloutDecisionKind =
  | 'started'
  | 'wave-started'
  | 'wave-advanced'
  | 'device-joined'
  | 'device-timed-out'
  | 'device-retried'
  | 'device-failed'
  | 'device-succeeded'
  | 'aborted'
  | 'rollback-ordered'
  | 'paused'
  | 'resumed'
  | 'completed';

/**
 * One decision, explained for people: `reason` holds the figures it was made
 * on (e.g. "wave 1 of 4: 3 of 10 devices started so far failed (30.0%), above
 * the 2.0% limit"). Waves in `reason` count from 1; `wave` is the index.
 */
export interface RolloutDecision {
  kind: RolloutDecisionKind;
  reason: string;
  atMs: number;
  wave?: number;
  deviceId?: string;
  /** The error code behind a device decision (`DEVICE_TIMEOUT`, `HEALTH_GATE`, a device's own). */
  code?: string;
  /** The operator behind pause, resume and abort; absent for the engine's own decisions. */
  actor?: string;
}

/**
 * The result of one step: the rollout as it now stands, the devices that
 * changed or were added (not the unchanged ones), and what to send and record,
 * in order. An event that changes nothing returns the same rollout and three
 * empty lists.
 */
export interface RolloutStep {
  rollout: RolloutSnapshot;
  devices: RolloutDevice[];
  commands: RolloutCommand[];
  decisions: RolloutDecision[];
}
