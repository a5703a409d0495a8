/**
 * The rollout engine's rules for the rollout as a whole, as named steps over a
 * StepContext.
 *
 *   failure limit  failed / devices of the started waves > maxFailureRatio
 *                  aborts the rollout (THREATS 35: a canary wave stops itself).
 *                  Checked before any advance, so no wave is ever left behind
 *                  with its failures above the limit. Checked while paused too:
 *                  devices in flight keep reporting, and a pause must not hide
 *                  a failing canary.
 *   abort          status `aborted` (final): every device not yet final is
 *                  cancelled (a cancel is sent to those ever sent a deploy), and
 *                  every device that succeeded is ordered back (rollback).
 *   success share  succeeded / devices of the started waves >= successRatio,
 *                  counted in whole devices (ceil). `waveSucceededAtMs` is when
 *                  the current wave reached it; it is cleared if the share drops
 *                  again (a health failure, a late joiner), so the bake restarts:
 *                  an interrupted bake has not baked. It is tracked while paused.
 *   advance        running, share reached and `bakeMs` passed since: the next
 *                  wave starts and its devices are deployed in the same step.
 *   complete       running, last wave's share reached and baked, and every
 *                  device final (nobody in flight or waiting for a retry, which
 *                  each end within the retry budget): status `completed`.
 */
import {
  decide,
  durationLabel,
  isFinal,
  modelLabel,
  patchRollout,
  percent,
  putDevice,
  ratioLabel,
  countDevices,
  countStarted,
  FINAL_STATUSES,
  waveLabel,
  type StepContext,
} from './step-context.ts';
import { orderBack } from './device-rules.ts';

// Ratios compare in whole devices; the slack keeps 0.07 * 100 = 7.000000000000001 at 7
// devices needed, and 0.29 * 100 = 28.999999999999996 at 29 devices allowed to fail.
const SLACK = 1e-9;

/** Aborts the rollout when the failed share of the started devices is above the limit. */
export function enforceFailureLimit(ctx: StepContext): 'aborted' | 'within-limit' {
  const { policy, currentWave } = ctx.rollout;
  const started = countStarted(ctx);
  const failed = countStarted(ctx, 'failed');
  if (failed <= policy.maxFailureRatio * started + SLACK) return 'within-limit';
  const waves = currentWave === 0 ? 'wave 1' : `waves 1-${currentWave + 1}`;
  const reason = `${waveLabel(ctx, currentWave)}: ${failed} of ${started} devices started so far (${waves}) failed (${percent(failed, started)}), above the ${ratioLabel(policy.maxFailureRatio)} limit`;
  abortRollout(ctx, reason, undefined);
  return 'aborted';
}

/** Ends the rollout for good: cancels what is not final, orders back what succeeded. */
export function abortRollout(ctx: StepContext, reason: string, actor: string | undefined): void {
  patchRollout(ctx, { status: 'aborted', reason });
  const devices = [...ctx.devices.values()];
  const toCancel = devices.filter((device) => !isFinal(device));
  const toRollBack = devices.filter((device) => device.status === 'succeeded');
  const summary = `${reason}; cancelling ${toCancel.length} device(s), rolling back ${toRollBack.length}`;
  decide(ctx, 'aborted', summary, {
    wave: ctx.rollout.currentWave,
    ...(actor === undefined ? {} : { actor }),
  });
  const cancelReason = `rollout ${ctx.rollout.id} aborted: ${reason}`.slice(0, 500);
  for (const device of toCancel) {
    putDevice(ctx, { ...device, status: 'cancelled', nextAttemptAtMs: null });
    if (device.attempts > 0) {
      ctx.commands.push({ type: 'cancel', deviceId: device.deviceId, reason: cancelReason });
    }
  }
  for (const device of toRollBack) {
    const next = putDevice(ctx, { ...device, status: 'rolled_back' });
    orderBack(ctx, next, `the rollout was aborted`);
  }
}

interface WaveShare {
  succeeded: number;
  total: number;
  needed: number;
  reached: boolean;
}

function waveShare(ctx: StepContext): WaveShare {
  const total = countStarted(ctx);
  const succeeded = countStarted(ctx, 'succeeded');
  const needed = Math.ceil(ctx.rollout.policy.successRatio * total - SLACK);
  return { succeeded, total, needed, reached: total > 0 && succeeded >= needed };
}

/** Sets or clears when the current wave reached its success share. */
export function trackWaveShare(ctx: StepContext): void {
  const { reached } = waveShare(ctx);
  const since = ctx.rollout.waveSucceededAtMs;
  if (reached && since === null) patchRollout(ctx, { waveSucceededAtMs: ctx.nowMs });
  if (!reached && since !== null) patchRollout(ctx, { waveSucceededAtMs: null });
}

/**
 * Starts the next wave, or completes the rollout after the last one, when the
 * current wave has reached its share and baked. True when a wave started (the
 * caller tracks the new wave's share and may advance again).
 */
export function advanceOrComplete(ctx: StepContext): boolean {
  const { policy, currentWave, waveSucceededAtMs } = ctx.rollout;
  if (ctx.rollout.status !== 'running' || waveSucceededAtMs === null) return false;
  if (ctx.nowMs - waveSucceededAtMs < policy.bakeMs) return false;
  const share = waveShare(ctx);
  const figures = `${share.succeeded} of ${share.total} devices succeeded (${percent(share.succeeded, share.total)}, ${ratioLabel(policy.successRatio)} needed), baked ${durationLabel(ctx.nowMs - waveSucceededAtMs)}`;
  if (currentWave === policy.waves.length - 1) {
    completeIfAllFinal(ctx, figures);
    return false;
  }
  decide(ctx, 'wave-advanced', `${waveLabel(ctx, currentWave)}: ${figures}; advancing`, {
    wave: currentWave,
  });
  startWave(ctx, currentWave + 1);
  return true;
}

export function startWave(ctx: StepContext, wave: number): void {
  patchRollout(ctx, { currentWave: wave, waveStartedAtMs: ctx.nowMs, waveSucceededAtMs: null });
  // The new wave's pending devices are due now.
  ctx.pendingDueFloorMs = -Infinity;
  const total = countDevices(ctx, { maxWave: wave });
  const joining = total - countDevices(ctx, { maxWave: wave - 1 });
  const reason = `${waveLabel(ctx, wave)} started: deploying to ${joining} more device(s), ${total} of ${ctx.devices.size} in all`;
  decide(ctx, 'wave-started', reason, { wave });
}

function completeIfAllFinal(ctx: StepContext, figures: string): void {
  if (countDevices(ctx, { statuses: FINAL_STATUSES }) !== ctx.devices.size) return;
  const failed = countDevices(ctx, { statuses: new Set(['failed']) });
  const reason = `all ${ctx.rollout.policy.waves.length} waves done: ${figures}; ${failed} failed; ${modelLabel(ctx.rollout.model)} rolled out`;
  patchRollout(ctx, { status: 'completed', reason });
  decide(ctx, 'completed', reason, { wave: ctx.rollout.currentWave });
}
