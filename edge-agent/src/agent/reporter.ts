/**
 * What the agent tells the control plane, each message signed with the
 * device key (protocol `signDeviceMessage`) and published on its own topic:
 *
 *   state      retained, on connect and after every update transition; the
 *              same message with `online: false` is the last will
 *   progress   on `evt`, for the rollout being worked on: the download's
 *              (the first once the blocks are subscribed: "ready for the
 *              broadcast"), and a transition's when the state message does
 *              not carry it (update-effects `report`)
 *   health     on `telemetry`, every health window; `feedback.stored` is the
 *              labelled samples held now (`storedSamples`), sent whenever
 *              there are any, so a federated round can judge `minSamples`
 *   drift      on `telemetry`: one outbox flush (drift-reporting.ts publishes
 *              it); its message id is the flush id, the same at every resend
 *
 * Message ids are random (the receiver de-duplicates on them); `ts` is the
 * injected clock's.
 */
import { randomUUID } from 'node:crypto';
import {
  deviceTopic,
  signDeviceMessage,
  utf8,
  type DeviceMessage,
  type ErrorReport,
  type HealthMessage,
  type Signer,
  type StateMessage,
  type UpdateState,
} from '@fleet/protocol';
import type { DriftFlush } from '../core/drift-flush.ts';
import { reportedUpdateState, type AgentState } from '../core/update-state.ts';

export interface ReporterOptions {
  deviceId: string;
  hardware: string;
  agentVersion: string;
  signer: Signer;
  nowMs: () => number;
  publish: (
    topic: string,
    payload: Uint8Array,
    options: { qos: 0 | 1; retain: boolean },
  ) => Promise<void>;
  /** Labelled samples the device holds now (its label store's count); none: `stored` is never sent. */
  storedSamples?: () => number;
}

/** A health message's body, as `Reporter.publishHealth` takes it. */
export type HealthBody = Omit<HealthMessage, 'type' | 'id' | 'schemaVersion' | 'ts'>;

/**
 * The health body with `feedback.stored` set to `stored`: added to the
 * window's feedback when there is some, or as `{ labelled: 0, correct: 0,
 * stored }` when the store holds samples; unchanged when there is neither
 * (an empty store with nothing labelled in the window).
 */
export function withStoredSamples(health: HealthBody, stored: number): HealthBody {
  if (health.feedback) return { ...health, feedback: { ...health.feedback, stored } };
  if (stored > 0) return { ...health, feedback: { labelled: 0, correct: 0, stored } };
  return health;
}

export interface ProgressReport {
  rolloutId: string;
  bundleId: string;
  state: UpdateState;
  blocksReceived: number;
  blockCount: number;
  error: ErrorReport | null;
}

export interface Reporter {
  /** The signed state message bytes (also the last will, with `online: false`). */
  stateBytes(state: AgentState, online: boolean): Uint8Array;
  /** The retained state; `online: false` on a clean shutdown, where no will is published. */
  publishState(state: AgentState, online?: boolean): Promise<void>;
  publishProgress(progress: ProgressReport): Promise<void>;
  /** Publishes a health report, with `feedback.stored` when `storedSamples` is given (`withStoredSamples`). */
  publishHealth(health: HealthBody): Promise<void>;
  /**
   * The signed `drift` message of an outbox flush, for `telemetry` at QoS 1.
   * Throws (MALFORMED, TOO_LARGE) for a flush the drift message schema refuses.
   */
  driftReport(flush: DriftFlush): Uint8Array;
  /** Asks for missing blocks (a bitmap, base64) on `blocks/req`; QoS 0: the downloader asks again if it is lost. */
  publishBlocksRequest(request: {
    rolloutId: string;
    bundleId: string;
    blockCount: number;
    missing: string;
  }): Promise<void>;
}

/** The update a state message reports: the job under way, else the last one ended. */
export function stateUpdate(state: AgentState): StateMessage['update'] {
  const job = state.job;
  const last = state.last;
  const update: StateMessage['update'] = { state: reportedUpdateState(state) };
  if (job) {
    update.rolloutId = job.rolloutId;
    update.bundleId = job.model.bundleId;
  } else if (last) {
    if (last.rolloutId) update.rolloutId = last.rolloutId;
    update.bundleId = last.bundleId;
    if (last.error) update.error = last.error;
  }
  return update;
}

export function createReporter(options: ReporterOptions): Reporter {
  const header = <T extends DeviceMessage['type']>(type: T) => ({
    type,
    id: randomUUID(),
    schemaVersion: 1 as const,
    ts: new Date(options.nowMs()).toISOString(),
  });
  const sign = (message: DeviceMessage) =>
    utf8(
      JSON.stringify(
        signDeviceMessage({ deviceId: options.deviceId, message, signer: options.signer }),
      ),
    );

  function stateMessage(state: AgentState, online: boolean): StateMessage {
    const update = stateUpdate(state);
    return {
      ...header('state'),
      deviceId: options.deviceId,
      online,
      agentVersion: options.agentVersion,
      hardware: options.hardware,
      model: state.committed?.ref ?? null,
      update,
    };
  }

  return {
    stateBytes: (state, online) => sign(stateMessage(state, online)),
    publishState: (state, online = true) =>
      options.publish(deviceTopic(options.deviceId, 'state'), sign(stateMessage(state, online)), {
        qos: 1,
        retain: true,
      }),
    publishProgress: (p) =>
      options.publish(
        deviceTopic(options.deviceId, 'evt'),
        sign({
          ...header('progress'),
          rolloutId: p.rolloutId,
          bundleId: p.bundleId,
          state: p.state,
          blocksReceived: Math.min(p.blocksReceived, p.blockCount),
          blockCount: p.blockCount,
          ...(p.error ? { error: p.error } : {}),
        }),
        { qos: 1, retain: false },
      ),
    publishHealth: (health) =>
      options.publish(
        deviceTopic(options.deviceId, 'telemetry'),
        sign({
          ...header('health'),
          ...(options.storedSamples ? withStoredSamples(health, options.storedSamples()) : health),
        }),
        {
          qos: 1,
          retain: false,
        },
      ),
    driftReport: (flush) =>
      sign({
        ...header('drift'),
        id: flush.id,
        deviceId: options.deviceId,
        model: flush.model,
        ...(flush.rolloutId !== null ? { rolloutId: flush.rolloutId } : {}),
        seq: flush.seq,
        window: flush.window,
        inferences: flush.inferences,
        sampled: flush.sampled,
        signals: flush.signals,
      }),
    publishBlocksRequest: (request) =>
      options.publish(
        deviceTopic(options.deviceId, 'blocks/req'),
        sign({ ...header('blocks-request'), ...request }),
        { qos: 0, retain: false },
      ),
  };
}
