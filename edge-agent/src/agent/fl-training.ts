/**
 * The device side of a federated round (issue 7, item 2; ARCHITECTURE
 * "Federated learning"), as named steps:
 *
 *   admit          duplicate (ignored) or busy, before any I/O (core/fl-participation.ts)
 *   base           deadline, and the base model is the committed one that serves
 *   read-weights   the committed slot's manifest verified again against the pinned
 *                  root, the `training` field, the weights part checked against
 *                  its signed length and SHA-256, decoded (FTNS, capped at the
 *                  architecture's size) and held to the architecture (THREATS 40)
 *   read-samples   up to `maxSamples` labelled samples of the input width, chosen
 *                  with the round's seed; at least `minSamples`
 *   train          the injected Trainer (the shared worker pool by default, so
 *                  inference keeps its thread), given up at the deadline
 *   clip, encode   delta clipped to `clipNorm` (global L2), encoded per the round
 *                  (int8 with a scale per tensor, or float32), SHA-256
 *   send           the signed `fl-update` header, then its `fl-update-part`s of at
 *                  most 64 KiB in order, each signed with the device key, QoS 1
 *                  on `telemetry` (ordered on one topic, MQTT 3.1.1 4.6)
 *
 * Every failure but a duplicate is sent as a `failed` update with a reason
 * (`code: detail`) and the metrics known so far; nothing is thrown into the
 * session. Events report progress: `fl-trained`, `fl-update-sent`, `fl-declined`.
 */
import { randomUUID } from 'node:crypto';
import {
  clipToL2,
  deviceTopic,
  encodeTensorSet,
  isFleetError,
  MAX_FL_UPDATE_BYTES,
  sha256Hex,
  signDeviceMessage,
  utf8,
  type DeviceMessage,
  type FlMetrics,
  type FlTrainConfig,
  type FlTrainMessage,
  type NamedTensor,
  type Signer,
} from '@fleet/protocol';
import {
  admitFlRound,
  checkFlBase,
  checkFlRound,
  emptyFlLedger,
  finishFlRound,
  flFailureReason,
  type FlRefusal,
  type FlRefusalCode,
} from '../core/fl-participation.ts';
import type { ReadOptions, TrainingSet } from '../core/labelled-samples.ts';
import type { SlotStore } from '../core/storage.ts';
import type { Trainer, TrainResult } from '../core/training/types.ts';
import type { AgentState } from '../core/update-state.ts';
import { readTrainingBase, type ManifestCheck } from './fl-training-base.ts';
import { failedUpdateMessage, flMetricsOf, okUpdateMessages } from './fl-update-messages.ts';

/**
 * Simulation only (the simulator's Byzantine devices): given the raw delta
 * (trained minus start, before clipping) and the round's config, returns the
 * exact update bytes to send instead of the honest encoding, or null to send
 * the honest one. The bytes are sent as given, signed, with their size and
 * SHA-256 in the header. A real agent never sets this.
 */
export type FlUpdateOverride = (delta: NamedTensor[], config: FlTrainConfig) => Uint8Array | null;

export type FlEvent =
  | {
      type: 'fl-trained';
      roundId: string;
      sampleCount: number;
      metrics: FlMetrics;
      normBeforeClip: number;
      clipped: boolean;
    }
  | {
      type: 'fl-update-sent';
      roundId: string;
      updateId: string;
      encoding: FlTrainConfig['encoding'];
      sizeBytes: number;
      partCount: number;
      overridden: boolean;
    }
  /** `reported`: a failed update was sent (false for a duplicate, or when sending failed). */
  | {
      type: 'fl-declined';
      roundId: string;
      code: FlRefusalCode;
      message: string;
      reported: boolean;
    };

export interface FlTrainingOptions extends ManifestCheck {
  deviceId: string;
  signer: Signer;
  nowMs: () => number;
  /** The persisted update state (committed model, job). */
  state: () => AgentState;
  slots: SlotStore;
  samples: { read(options: ReadOptions): Promise<TrainingSet> };
  /** Asked for on the first round; the shared pool by default (agent/fleet-agent.ts). */
  trainer: () => Trainer;
  publish: (
    topic: string,
    payload: Uint8Array,
    options: { qos: 1; retain: false },
  ) => Promise<void>;
  /** Update and message ids; random UUIDs by default. */
  newId?: () => string;
  flUpdateOverride?: FlUpdateOverride;
  onEvent?: (event: FlEvent) => void;
  /** Publish failures (the round is over either way). */
  onError?: (message: string) => void;
}

export interface FlTraining {
  /** Takes an `fl-train` command: admitted or refused at once; training and sending go on. */
  handle(command: FlTrainMessage): void;
  /** The round training now, or null. */
  active(): string | null;
  /** Resolves when no round is training and nothing is still being sent. */
  idle(): Promise<void>;
  /** Stops: later commands are ignored, a round in progress sends nothing more. */
  close(): void;
}

type Outcome =
  | { ok: true; result: TrainResult; samples: TrainingSet }
  | { ok: false; refusal: FlRefusal; sampleCount: number; metrics: FlMetrics | null };

export function createFlTraining(options: FlTrainingOptions): FlTraining {
  const { deviceId, nowMs } = options;
  const newId = options.newId ?? randomUUID;
  const telemetry = deviceTopic(deviceId, 'telemetry');
  const emit = (event: FlEvent) => options.onEvent?.(event);
  let ledger = emptyFlLedger();
  /** Rounds and refusals still sending. */
  const pending = new Set<Promise<void>>();
  const track = (work: Promise<void>) => {
    const settled = work
      .catch((error: unknown) => options.onError?.(`fl round: ${String(error)}`))
      .finally(() => pending.delete(settled));
    pending.add(settled);
  };
  let closed = false;

  const header = <T extends DeviceMessage['type']>(type: T, id = newId()) => ({
    type,
    id,
    schemaVersion: 1 as const,
    ts: new Date(nowMs()).toISOString(),
  });
  const send = (message: DeviceMessage) => {
    if (closed) return Promise.reject(new Error('the agent is closed'));
    const envelope = signDeviceMessage({ deviceId, message, signer: options.signer });
    return options.publish(telemetry, utf8(JSON.stringify(envelope)), { qos: 1, retain: false });
  };

  async function decline(command: FlTrainMessage, outcome: Extract<Outcome, { ok: false }>) {
    const { refusal } = outcome;
    let reported = false;
    try {
      const reason = flFailureReason(refusal);
      const { sampleCount, metrics } = outcome;
      await send(failedUpdateMessage({ deviceId, command, reason, sampleCount, metrics }, header));
      reported = true;
    } catch (error) {
      options.onError?.(`fl-update ${command.roundId}: ${String(error)}`);
    }
    emit({ type: 'fl-declined', roundId: command.roundId, ...refusal, reported });
  }

  /** read-weights, read-samples, train: the outcome, never a throw. */
  async function train(command: FlTrainMessage): Promise<Outcome> {
    const fail = (refusal: FlRefusal, sampleCount = 0, metrics: FlMetrics | null = null) =>
      ({ ok: false, refusal, sampleCount, metrics }) as const;
    const base = checkFlBase({ command, nowMs: nowMs(), state: options.state() });
    if (base) return fail(base);
    const read = await readTrainingBase(options, options.state().committed!, command.model);
    if (!read.ok) return fail(read.refusal);
    const training = read.training;
    const samples = training
      ? await options.samples.read({
          maxSamples: command.config.maxSamples,
          seed: command.config.seed,
          featureCount: training.architecture.inputSize,
        })
      : null;
    const sampleCount = samples?.count ?? 0;
    const refused = checkFlRound({
      command,
      nowMs: nowMs(),
      state: options.state(),
      training,
      sampleCount,
    });
    if (refused) return fail(refused, sampleCount);
    if (!training || !samples) return fail({ code: 'no-training', message: 'no training field' });
    const weights = read.weights;
    const { config } = command;
    const deadline = deadlineTimer(Date.parse(command.deadline) - nowMs());
    try {
      const result = await Promise.race([
        options.trainer().train({
          architecture: training.architecture,
          weights,
          samples,
          epochs: config.epochs,
          batchSize: config.batchSize,
          learningRate: config.learningRate,
          proxMu: config.proxMu,
          seed: config.seed,
        }),
        deadline.promise,
      ]);
      if (result === 'deadline') {
        return fail({ code: 'deadline', message: 'training ran past the deadline' }, samples.count);
      }
      return { ok: true, result, samples };
    } catch (error) {
      const code = isFleetError(error, 'TRAIN_DIVERGED') ? 'diverged' : 'train-failed';
      const message = error instanceof Error ? error.message : String(error);
      return fail({ code, message }, samples.count);
    } finally {
      deadline.clear();
    }
  }

  /** clip, encode, send; a late or unencodable update is declined instead. */
  async function submit(command: FlTrainMessage, result: TrainResult): Promise<void> {
    const { config } = command;
    const metrics = flMetricsOf(result);
    const sampleCount = result.sampleCount;
    let bytes: Uint8Array;
    let clip: ReturnType<typeof clipToL2>;
    let overridden: boolean;
    try {
      clip = clipToL2(result.delta, config.clipNorm);
      const override = options.flUpdateOverride?.(result.delta, config) ?? null;
      overridden = override !== null;
      bytes = override ?? encodeTensorSet(clip.tensors, { encoding: config.encoding });
      if (bytes.length < 1 || bytes.length > MAX_FL_UPDATE_BYTES) {
        throw new Error(
          `an update of ${bytes.length} bytes; 1 to ${MAX_FL_UPDATE_BYTES} can be sent`,
        );
      }
    } catch (error) {
      const code = isFleetError(error, 'NON_FINITE') ? 'diverged' : 'encode-failed';
      const message = error instanceof Error ? error.message : String(error);
      return decline(command, { ok: false, refusal: { code, message }, sampleCount, metrics });
    }
    emit({
      type: 'fl-trained',
      roundId: command.roundId,
      sampleCount,
      metrics,
      normBeforeClip: clip.normBeforeClip,
      clipped: clip.clipped,
    });
    if (!(nowMs() < Date.parse(command.deadline))) {
      const refusal: FlRefusal = { code: 'deadline', message: 'trained after the deadline' };
      return decline(command, { ok: false, refusal, sampleCount, metrics });
    }
    const updateId = newId();
    const sha256 = await sha256Hex(bytes);
    const { normBeforeClip, clipped } = clip;
    const messages = okUpdateMessages(
      { deviceId, command, updateId, bytes, sha256, sampleCount, metrics, normBeforeClip, clipped },
      header,
    );
    const partCount = messages.parts.length;
    try {
      await send(messages.header);
      for (const part of messages.parts) await send(part);
    } catch (error) {
      options.onError?.(`fl-update ${command.roundId}: ${String(error)}`);
      return;
    }
    emit({
      type: 'fl-update-sent',
      roundId: command.roundId,
      updateId,
      encoding: config.encoding,
      sizeBytes: bytes.length,
      partCount,
      overridden,
    });
  }

  async function runRound(command: FlTrainMessage): Promise<void> {
    try {
      const outcome = await train(command).catch((error: unknown): Outcome => ({
        ok: false,
        refusal: { code: 'train-failed', message: String(error) },
        sampleCount: 0,
        metrics: null,
      }));
      if (closed) return;
      if (outcome.ok) await submit(command, outcome.result);
      else await decline(command, outcome);
    } finally {
      ledger = finishFlRound(ledger, command.roundId);
    }
  }

  return {
    handle(command) {
      if (closed) return;
      const admission = admitFlRound(ledger, command);
      if (admission.kind === 'ignore') {
        emit({
          type: 'fl-declined',
          roundId: command.roundId,
          ...admission.refusal,
          reported: false,
        });
        return;
      }
      ledger = admission.ledger;
      if (admission.kind === 'refuse') {
        const refusal = admission.refusal;
        track(decline(command, { ok: false, refusal, sampleCount: 0, metrics: null }));
        return;
      }
      track(runRound(command));
    },
    active: () => ledger.active,
    idle: async () => {
      while (pending.size > 0) await Promise.all(pending);
    },
    close() {
      closed = true;
    },
  };
}

/** Resolves 'deadline' after `delayMs` (at once when not positive); unref'd. */
function deadlineTimer(delayMs: number): { promise: Promise<'deadline'>; clear(): void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<'deadline'>((resolve) => {
    timer = setTimeout(() => resolve('deadline'), Math.max(0, Math.min(delayMs, 2 ** 31 - 1)));
    timer.unref();
  });
  return { promise, clear: () => clearTimeout(timer) };
}
