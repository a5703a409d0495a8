/**
 * The device messages of a round's answer, before signing (protocol
 * fl-update.ts): an ok update as its `fl-update` header and the
 * `fl-update-part`s of its bytes (MAX_FL_PART_BYTES each, the last one
 * shorter, the header's `id` as every part's `updateId`), or a failed header
 * with its reason. fl-training.ts signs and publishes them in this order.
 */
import {
  flPartCount,
  MAX_FL_PART_BYTES,
  toBase64,
  type FlMetrics,
  type FlTrainMessage,
  type FlUpdateMessage,
  type FlUpdatePartMessage,
} from '@fleet/protocol';
import type { TrainResult } from '../core/training/types.ts';

/** A message's `type`, `id`, `schemaVersion` and `ts`. */
export type MessageHeader = <T extends 'fl-update' | 'fl-update-part'>(
  type: T,
  id?: string,
) => { type: T; id: string; schemaVersion: 1; ts: string };

export const NO_FL_METRICS: FlMetrics = Object.freeze({
  lossBefore: null,
  lossAfter: null,
  accuracyBefore: null,
  accuracyAfter: null,
  trainMs: null,
});

/** A training run's metrics as the wire takes them (a value it cannot carry is null). */
export function flMetricsOf(result: TrainResult): FlMetrics {
  const nonNegative = (v: number) => (Number.isFinite(v) && v >= 0 ? v : null);
  const fraction = (v: number) => (v >= 0 && v <= 1 ? v : null);
  return {
    lossBefore: nonNegative(result.lossBefore),
    lossAfter: nonNegative(result.lossAfter),
    accuracyBefore: fraction(result.accuracyBefore),
    accuracyAfter: fraction(result.accuracyAfter),
    trainMs: nonNegative(result.trainMs),
  };
}

export interface OkUpdate {
  deviceId: string;
  command: FlTrainMessage;
  updateId: string;
  bytes: Uint8Array;
  sha256: string;
  sampleCount: number;
  metrics: FlMetrics;
  normBeforeClip: number;
  clipped: boolean;
}

/** The header and parts of an ok update. */
export function okUpdateMessages(
  update: OkUpdate,
  header: MessageHeader,
): { header: FlUpdateMessage; parts: FlUpdatePartMessage[] } {
  const { deviceId, command, updateId, bytes } = update;
  const partCount = flPartCount(bytes.length);
  const parts: FlUpdatePartMessage[] = [];
  for (let index = 0; index < partCount; index++) {
    const start = index * MAX_FL_PART_BYTES;
    parts.push({
      ...header('fl-update-part'),
      deviceId,
      roundId: command.roundId,
      updateId,
      index,
      count: partCount,
      data: toBase64(bytes.subarray(start, start + MAX_FL_PART_BYTES)),
    });
  }
  return {
    header: {
      ...header('fl-update', updateId),
      deviceId,
      roundId: command.roundId,
      model: command.model,
      status: 'ok',
      sampleCount: update.sampleCount,
      metrics: update.metrics,
      update: {
        encoding: command.config.encoding,
        sizeBytes: bytes.length,
        sha256: update.sha256,
        partCount,
        normBeforeClip: update.normBeforeClip,
        clipped: update.clipped,
      },
    },
    parts,
  };
}

/** A failed header: the reason, the samples and metrics known, no update. */
export function failedUpdateMessage(
  failure: {
    deviceId: string;
    command: FlTrainMessage;
    reason: string;
    sampleCount: number;
    metrics: FlMetrics | null;
  },
  header: MessageHeader,
): FlUpdateMessage {
  return {
    ...header('fl-update'),
    deviceId: failure.deviceId,
    roundId: failure.command.roundId,
    model: failure.command.model,
    status: 'failed',
    reason: failure.reason,
    sampleCount: failure.sampleCount,
    metrics: failure.metrics ?? NO_FL_METRICS,
  };
}
