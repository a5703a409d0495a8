/**
 * A federated round as a pure state machine (Flower's configure -> fit ->
 * aggregate -> evaluate, shaped like the rollout engine): `stepRound(state,
 * event, nowMs)` returns the new state and the actions to perform, in order.
 * No I/O, clock or randomness of its own; the input state is never mutated.
 *
 *   configuring --start--> collecting            (or failed: too few eligible)
 *   collecting  --update-received / deadline-tick--> aggregating  (or failed: too few accepted)
 *     collection closes when every selected device has answered (accepted,
 *     failed or rejected) or at the deadline; the rest are stragglers.
 *   aggregating --aggregated--> evaluating        (or failed: the strategy refused)
 *   evaluating  --evaluated--> promoted | awaiting-approval | rejected (promotion.ts)
 *   awaiting-approval --approved--> promoted
 *   any non-final --cancel--> cancelled
 *
 * Updates arriving outside collection are counted (late, or not-selected
 * before the start) and change nothing else; `deadline-tick` outside
 * collection changes nothing. Any other event in the wrong status throws
 * CONFLICT and changes nothing.
 */
import { controlPlaneError } from '../errors.ts';
import { decidePromotion, type RiskTier } from './promotion.ts';
import type { RoundConfig } from './round-config.ts';
import { admitOutsideCollection, admitUpdate, answerFor } from './round-collect.ts';
import { selectDevices, type CandidateDevice } from './round-selection.ts';
import {
  FINAL_ROUND_STATUSES,
  UPDATE_REJECTION_REASONS,
  type RoundAction,
  type RoundAuditKind,
  type RoundEvent,
  type RoundSnapshot,
  type RoundStatus,
  type RoundStep,
  type UpdateReceived,
} from './round-types.ts';

export interface CreateRoundInput {
  roundId: string;
  baseBundleId: string;
  /** Validated (round-config.ts `buildRoundConfig`). */
  config: RoundConfig;
  promotion: { riskTier: RiskTier; autoPromote: boolean };
  /** Seeds selection and training; defaults to the round id. */
  seed?: string;
  nowMs: number;
}

/** A new round, configuring, waiting for `start`. */
export function createRound(input: CreateRoundInput): RoundSnapshot {
  const rejections = Object.fromEntries(UPDATE_REJECTION_REASONS.map((r) => [r, 0]));
  return {
    roundId: input.roundId,
    baseBundleId: input.baseBundleId,
    config: structuredClone(input.config),
    promotion: { ...input.promotion },
    seed: input.seed ?? input.roundId,
    status: 'configuring',
    createdAtMs: input.nowMs,
    updatedAtMs: input.nowMs,
    deadlineAtMs: null,
    eligibleCount: 0,
    selected: [],
    answers: [],
    seenUpdateIds: [],
    rejections: rejections as RoundSnapshot['rejections'],
    stragglers: [],
    candidateId: null,
    evaluation: null,
    decision: null,
    reason: null,
  };
}

interface Ctx {
  s: RoundSnapshot;
  actions: RoundAction[];
  nowMs: number;
}

/**
 * One step. Throws CONFLICT (changing nothing) for an event the status does
 * not take, INVALID_REQUEST for bad evaluation figures.
 *
 * @example
 *   let { state, actions } = stepRound(createRound({ ... }), { type: 'start', devices }, now);
 *   ({ state, actions } = stepRound(state, { type: 'deadline-tick' }, now + 600_000));
 */
export function stepRound(state: RoundSnapshot, event: RoundEvent, nowMs: number): RoundStep {
  const ctx: Ctx = { s: structuredClone(state), actions: [], nowMs };
  switch (event.type) {
    case 'start':
      start(ctx, event.devices);
      break;
    case 'update-received':
      receive(ctx, event);
      break;
    case 'deadline-tick':
      break;
    case 'aggregated':
      aggregated(ctx, event);
      break;
    case 'evaluated':
      evaluated(ctx, event.candidateAccuracy, event.championAccuracy);
      break;
    case 'approved':
      expect(ctx.s, 'awaiting-approval', event.type);
      audit(ctx, 'approved', `approved by ${event.actor}`);
      promote(ctx, `approved by ${event.actor}`);
      break;
    case 'cancel':
      if (FINAL_ROUND_STATUSES.includes(ctx.s.status)) {
        throw controlPlaneError(
          'CONFLICT',
          `round ${ctx.s.roundId} is ${ctx.s.status}; it cannot be cancelled`,
        );
      }
      finish(ctx, 'cancelled', 'cancelled', `cancelled by ${event.actor}: ${event.reason}`);
      break;
  }
  if (ctx.s.status === 'collecting') closeWhenDone(ctx);
  if (ctx.actions.length > 0) ctx.s.updatedAtMs = nowMs;
  return { state: ctx.s, actions: ctx.actions };
}

function expect(s: RoundSnapshot, status: RoundStatus, event: string): void {
  if (s.status !== status) {
    throw controlPlaneError(
      'CONFLICT',
      `round ${s.roundId} is ${s.status}; '${event}' needs ${status}`,
    );
  }
}

function audit(ctx: Ctx, kind: RoundAuditKind, reason: string): void {
  ctx.actions.push({ type: 'audit', roundId: ctx.s.roundId, kind, reason });
}

function finish(ctx: Ctx, status: RoundStatus, kind: RoundAuditKind, reason: string): void {
  ctx.s.status = status;
  ctx.s.reason = reason;
  audit(ctx, kind, reason);
}

/** FNV-1a of the round seed: the devices' training seed (uint32). */
function trainSeed(seed: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < seed.length; i++)
    hash = Math.imul(hash ^ seed.charCodeAt(i), 0x01000193) >>> 0;
  return hash;
}

function start(ctx: Ctx, devices: readonly CandidateDevice[]): void {
  const s = ctx.s;
  expect(s, 'configuring', 'start');
  const c = s.config;
  const result = selectDevices(devices, { ...c, seed: s.seed });
  s.eligibleCount = result.eligible.length;
  if (!result.ok) return finish(ctx, 'failed', 'round-failed', `not started: ${result.reason}`);
  s.selected = result.selected;
  s.status = 'collecting';
  s.deadlineAtMs = ctx.nowMs + c.deadlineMs;
  audit(
    ctx,
    'round-started',
    `selected ${s.selected.length} of ${s.eligibleCount} eligible device(s) (fraction ${c.fraction}, ` +
      `min ${c.minClients}); ${c.strategy.kind}, E=${c.epochs}, B=${c.batchSize}, lr ${c.learningRate}, ` +
      `mu ${c.proxMu}, clip ${c.clipNorm}; deadline in ${c.deadlineMs} ms`,
  );
  ctx.actions.push({
    type: 'send-train',
    roundId: s.roundId,
    baseBundleId: s.baseBundleId,
    deviceIds: [...s.selected],
    config: {
      epochs: c.epochs,
      batchSize: c.batchSize,
      learningRate: c.learningRate,
      proxMu: c.proxMu,
      clipNorm: c.clipNorm,
      minSamples: c.minSamples,
      maxSamples: c.maxSamples,
      encoding: c.encoding,
      seed: trainSeed(s.seed),
    },
    deadlineMs: s.deadlineAtMs,
  });
}

function receive(ctx: Ctx, u: UpdateReceived): void {
  const s = ctx.s;
  const admission =
    s.status === 'collecting' ? admitUpdate(s, u, ctx.nowMs) : admitOutsideCollection(s, u);
  if (u.roundId === s.roundId && !s.seenUpdateIds.includes(u.updateId))
    s.seenUpdateIds.push(u.updateId);
  const answer = s.status === 'collecting' ? answerFor(u, admission, ctx.nowMs) : null;
  if (answer !== null) s.answers.push(answer);
  if (admission.verdict === 'rejected') {
    s.rejections[admission.reason]++;
    audit(
      ctx,
      'update-rejected',
      `update ${u.updateId} from ${u.deviceId}: ${admission.reason} (${admission.detail})`,
    );
  } else if (admission.verdict === 'failed') {
    audit(ctx, 'device-failed', `${u.deviceId} failed to train: ${admission.reason}`);
  }
}

function closeWhenDone(ctx: Ctx): void {
  const s = ctx.s;
  const answered = new Set(s.answers.map((a) => a.deviceId));
  const allAnswered = s.selected.every((id) => answered.has(id));
  const pastDeadline = s.deadlineAtMs !== null && ctx.nowMs >= s.deadlineAtMs;
  if (!allAnswered && !pastDeadline) return;
  s.stragglers = s.selected.filter((id) => !answered.has(id));
  const accepted = s.answers.filter((a) => a.outcome === 'accepted');
  const failed = s.answers.filter((a) => a.outcome === 'failed').length;
  const rejected = s.answers.length - accepted.length - failed;
  const counts =
    `${accepted.length} accepted of ${s.selected.length} selected (${failed} failed, ` +
    `${rejected} rejected, ${s.stragglers.length} straggler(s)` +
    (s.stragglers.length > 0 ? `: ${s.stragglers.join(', ')}` : '') +
    `), minimum ${s.config.minClients}`;
  const why = allAnswered ? 'all selected devices answered' : 'deadline passed';
  if (accepted.length < s.config.minClients) {
    return finish(ctx, 'failed', 'round-failed', `${why}: ${counts}`);
  }
  s.status = 'aggregating';
  audit(ctx, 'collection-closed', `${why}: ${counts}`);
  ctx.actions.push({
    type: 'aggregate',
    roundId: s.roundId,
    strategy: { ...s.config.strategy },
    updates: accepted.map((a) => ({
      deviceId: a.deviceId,
      updateId: a.updateId,
      sampleCount: a.sampleCount,
    })),
  });
}

function aggregated(ctx: Ctx, e: RoundEvent & { type: 'aggregated' }): void {
  const s = ctx.s;
  expect(s, 'aggregating', 'aggregated');
  if (e.error !== undefined && e.error !== null) {
    return finish(ctx, 'failed', 'round-failed', `aggregation refused: ${e.error}`);
  }
  s.candidateId = e.candidateId;
  s.status = 'evaluating';
  audit(
    ctx,
    'aggregated',
    `candidate ${e.candidateId}${e.notes?.length ? `: ${e.notes.join('; ')}` : ''}`,
  );
  ctx.actions.push({ type: 'evaluate', roundId: s.roundId, candidateId: e.candidateId });
}

function evaluated(ctx: Ctx, candidateAccuracy: number, championAccuracy: number): void {
  const s = ctx.s;
  expect(s, 'evaluating', 'evaluated');
  const { decision, reason } = decidePromotion({
    candidateAccuracy,
    championAccuracy,
    margin: s.config.evaluationMargin,
    ...s.promotion,
  });
  s.evaluation = { candidateAccuracy, championAccuracy };
  s.decision = decision;
  audit(ctx, 'evaluated', reason);
  if (decision === 'reject') return finish(ctx, 'rejected', 'rejected', reason);
  buildCandidate(ctx);
  if (decision === 'promote') return promote(ctx, reason);
  finish(ctx, 'awaiting-approval', 'awaiting-approval', reason);
}

function buildCandidate(ctx: Ctx): void {
  const s = ctx.s;
  ctx.actions.push({
    type: 'build-candidate',
    roundId: s.roundId,
    candidateId: s.candidateId!,
    lineage: {
      roundId: s.roundId,
      baseBundleId: s.baseBundleId,
      strategy: { ...s.config.strategy },
      config: structuredClone(s.config),
      participants: s.answers
        .filter((a) => a.outcome === 'accepted')
        .map((a) => ({ deviceId: a.deviceId, sampleCount: a.sampleCount })),
      evaluation: { ...s.evaluation! },
    },
  });
}

function promote(ctx: Ctx, reason: string): void {
  finish(ctx, 'promoted', 'promoted', reason);
  ctx.actions.push({
    type: 'start-rollout',
    roundId: ctx.s.roundId,
    candidateId: ctx.s.candidateId!,
  });
}
