/**
 * Collection: admitting one update into a round, as ordered steps, each
 * naming the rule it enforces (THREATS 39: bound to round and base model,
 * NaN/Inf refused; THREATS 37: clip re-checked after decoding). The first
 * rule that fails decides the reason; a refused update changes nothing but
 * the counters, the replay list and (for a selected device's own bad update)
 * its one answer.
 */
import { withinClipBound } from './clip-check.ts';
import type {
  DeviceAnswer,
  RoundSnapshot,
  UpdateReceived,
  UpdateRejectionReason,
} from './round-types.ts';

export type Admission =
  | { verdict: 'accepted' }
  | { verdict: 'failed'; reason: string }
  | {
      verdict: 'rejected';
      reason: UpdateRejectionReason;
      detail: string;
      /** The device's one answer is used up (it was selected and answered badly). */
      countsAsAnswer: boolean;
    };

/** An update arriving while the round is not collecting: late after, not selected before. */
export function admitOutsideCollection(round: RoundSnapshot, u: UpdateReceived): Admission {
  if (u.roundId !== round.roundId) return reject('wrong-round', `for round ${u.roundId}`, false);
  if (round.status === 'configuring')
    return reject('not-selected', 'no device is selected yet', false);
  return reject('late', `collection closed; round is ${round.status}`, false);
}

/** The ordered checks of one update while collecting at `nowMs`. */
export function admitUpdate(round: RoundSnapshot, u: UpdateReceived, nowMs: number): Admission {
  // Bound to this round: an update for another round is never counted here.
  if (u.roundId !== round.roundId) return reject('wrong-round', `for round ${u.roundId}`, false);
  // An update id is used once: a re-sent copy is a replay, whoever sends it.
  if (round.seenUpdateIds.includes(u.updateId)) {
    return reject('replayed', `update ${u.updateId} was seen before`, false);
  }
  if (!round.selected.includes(u.deviceId)) {
    return reject('not-selected', `${u.deviceId} was not selected`, false);
  }
  // One answer per selected device (accepted, failed or rejected).
  if (round.answers.some((a) => a.deviceId === u.deviceId)) {
    return reject('duplicate', `${u.deviceId} has answered already`, false);
  }
  if (round.deadlineAtMs !== null && nowMs >= round.deadlineAtMs) {
    return reject('late', `${nowMs - round.deadlineAtMs} ms after the deadline`, false);
  }
  // Bound to the base model: a delta from other weights means nothing against ours.
  if (u.baseBundleId !== round.baseBundleId) {
    return reject('wrong-base', `trained from ${u.baseBundleId}`, true);
  }
  if (u.status === 'failed')
    return { verdict: 'failed', reason: u.failureReason ?? 'no reason given' };
  return checkContent(round, u);
}

function checkContent(round: RoundSnapshot, u: UpdateReceived): Admission {
  const { maxSamples } = round.config;
  // A claimed sample count is the update's FedAvg weight: it must be a real count within the cap.
  if (!Number.isInteger(u.sampleCount) || u.sampleCount < 1 || u.sampleCount > maxSamples) {
    return reject('malformed', `sampleCount ${u.sampleCount} is not in [1, ${maxSamples}]`, true);
  }
  if (u.decoded === null) {
    return reject('malformed', u.malformedReason ?? 'could not be decoded', true);
  }
  if (!u.decoded.finite || !Number.isFinite(u.decoded.norm)) {
    return reject('non-finite', 'holds NaN or Inf', true);
  }
  const { norm, quantizationErrorBound } = u.decoded;
  if (!withinClipBound(norm, round.config.clipNorm, quantizationErrorBound)) {
    return reject(
      'over-clip',
      `norm ${norm} over clipNorm ${round.config.clipNorm} (+ rounding ${quantizationErrorBound})`,
      true,
    );
  }
  return { verdict: 'accepted' };
}

function reject(reason: UpdateRejectionReason, detail: string, countsAsAnswer: boolean): Admission {
  return { verdict: 'rejected', reason, detail, countsAsAnswer };
}

/** The answer recorded for a selected device, or null when the admission uses none. */
export function answerFor(
  u: UpdateReceived,
  admission: Admission,
  nowMs: number,
): DeviceAnswer | null {
  const base = {
    deviceId: u.deviceId,
    updateId: u.updateId,
    sampleCount: u.sampleCount,
    atMs: nowMs,
  };
  switch (admission.verdict) {
    case 'accepted':
      return { ...base, outcome: 'accepted', reason: null };
    case 'failed':
      return { ...base, outcome: 'failed', reason: admission.reason };
    case 'rejected':
      return admission.countsAsAnswer
        ? { ...base, outcome: 'rejected', reason: admission.reason }
        : null;
  }
}
