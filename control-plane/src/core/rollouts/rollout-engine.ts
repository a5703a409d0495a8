/**
 * The rollout engine: a pure step function from (rollout, its devices, one
 * event, the time) to (the new rollout, the devices that changed, commands to
 * send, decisions to record). No I/O and no clock or randomness of its own:
 * the adapter loads the rollout, calls `stepRollout`, stores the result,
 * sends the commands and writes the decisions to the audit log, in one
 * transaction per rollout (row lock), so replicas never step a rollout twice
 * at once.
 *
 * One step, in order (each rule is documented where it lives):
 *   1. the event          device-rules.ts (report, health), here (join, pause,
 *                         resume, abort)
 *   2. timeouts           device-rules.ts `expireTimeouts`    running or paused
 *   3. failure limit      rollout-progress.ts                  running or paused
 *   4. share and advance  rollout-progress.ts, repeated while waves advance (running)
 *   5. deploys            device-rules.ts `dispatchDeploys`   running only
 * Every event runs 2-5, so `tick` is only "time passed"; the same event
 * applied twice at the same time changes nothing the second time.
 *
 * Status rules:
 *   running    everything applies.
 *   paused     no deploys and no retries are sent and no wave advances; devices
 *              in flight keep reporting, their timeouts run, and the failure
 *              limit still aborts. Devices joining wait for the resume.
 *   completed  only device reports, health and joins are taken (a joiner is
 *              deployed at once, once; the rollout no longer times it out);
 *              ticks change nothing; pause, resume and abort are CONFLICT.
 *   aborted    final: reports are still recorded (a late commit is ordered
 *              back), joins are ignored, pause, resume and abort are CONFLICT.
 * Pausing a paused rollout or resuming a running one changes nothing.
 */
import { rolloutIdSchema, type BundleModelRef } from '@fleet/protocol';
import { controlPlaneError } from '../errors.ts';
import {
  applyHealth,
  applyReport,
  dispatchDeploys,
  expireTimeouts,
  sendDeploy,
} from './device-rules.ts';
import type { RolloutEvent, RolloutStep } from './rollout-events.ts';
import {
  abortRollout,
  advanceOrComplete,
  enforceFailureLimit,
  startWave,
  trackWaveShare,
} from './rollout-progress.ts';
import { checkPolicy } from './rollout-spec.ts';
import type {
  RolloutDevice,
  RolloutPolicy,
  RolloutSnapshot,
  TargetSelector,
} from './rollout-types.ts';
import {
  createContext,
  decide,
  durationLabel,
  modelLabel,
  patchRollout,
  putDevice,
  ratioLabel,
  stepResult,
  waveLabel,
  type StepContext,
} from './step-context.ts';
import { buildSelector, formatSelector, matchesSelector } from './target-selector.ts';
import { assignWaves, joiningWave, waveSizes } from './wave-plan.ts';

export interface StartRolloutInput {
  id: string;
  model: BundleModelRef;
  selector: TargetSelector;
  policy: RolloutPolicy;
  /** The devices matching the selector now, each with the model it serves (its way back). */
  devices: readonly { deviceId: string; previousModel: BundleModelRef | null }[];
  nowMs: number;
}

/**
 * A new rollout, running, its devices assigned to waves (wave-plan.ts) and the
 * first wave deployed. Every device is in the result's `devices`. Throws
 * INVALID_REQUEST for a bad id, policy or selector, or no device to target
 * (a repeated device id counts once, with its first previous model).
 */
export function startRollout(input: StartRolloutInput): RolloutStep {
  if (!rolloutIdSchema.safeParse(input.id).success) {
    throw controlPlaneError('INVALID_REQUEST', `id: '${input.id}' is not a rollout id`);
  }
  const policy = checkPolicy(input.policy);
  const selector = buildSelector(input.selector);
  const previous = new Map<string, BundleModelRef | null>();
  for (const d of input.devices)
    if (!previous.has(d.deviceId)) previous.set(d.deviceId, d.previousModel);
  if (previous.size === 0) {
    throw controlPlaneError(
      'INVALID_REQUEST',
      `target: ${formatSelector(selector)} matches no device`,
    );
  }
  const rollout: RolloutSnapshot = {
    id: input.id,
    model: input.model,
    selector,
    policy,
    status: 'running',
    currentWave: 0,
    waveStartedAtMs: input.nowMs,
    waveSucceededAtMs: null,
    createdAtMs: input.nowMs,
    updatedAtMs: input.nowMs,
    reason: null,
  };
  const ctx = createContext(rollout, [], input.nowMs);
  for (const [deviceId, wave] of assignWaves(previous.keys(), policy.waves, input.id)) {
    putDevice(ctx, newDevice(deviceId, wave, previous.get(deviceId) ?? null, input.nowMs));
  }
  decide(ctx, 'started', startReason(rollout, previous.size));
  startWave(ctx, 0);
  settle(ctx);
  return stepResult(ctx);
}

function startReason(rollout: RolloutSnapshot, count: number): string {
  const p = rollout.policy;
  const sizes = waveSizes(p.waves, count).join(', ');
  return (
    `rollout ${rollout.id} of ${modelLabel(rollout.model)} to ${count} device(s) matching ` +
    `${formatSelector(rollout.selector)}: cumulative waves ${sizes}; a wave advances at ` +
    `${ratioLabel(p.successRatio)} succeeded after ${durationLabel(p.bakeMs)} of bake; aborts above ` +
    `${ratioLabel(p.maxFailureRatio)} failed; device timeout ${durationLabel(p.deviceTimeoutMs)}, ` +
    `${p.retries} retries from ${durationLabel(p.retryBackoffMs)}`
  );
}

function newDevice(
  deviceId: string,
  wave: number,
  previousModel: BundleModelRef | null,
  nowMs: number,
): RolloutDevice {
  return {
    deviceId,
    wave,
    status: 'pending',
    attempts: 0,
    lastSentAtMs: null,
    nextAttemptAtMs: null,
    previousModel,
    error: null,
    committedAtMs: null,
    updatedAtMs: nowMs,
  };
}

export interface StepRolloutInput {
  rollout: RolloutSnapshot;
  /** All the rollout's devices (the rules count over them). */
  devices: readonly RolloutDevice[];
  event: RolloutEvent;
  nowMs: number;
  /** Jitter for retry delays, values in [0, 1); without it delays are exact. */
  random?: () => number;
}

/**
 * One step. Returns the rollout, only the devices that changed or joined,
 * and the commands and decisions, in order. Throws CONFLICT (changing
 * nothing) for pause, resume or abort of a completed or aborted rollout.
 *
 * @example
 *   const step = stepRollout({ rollout, devices, nowMs: Date.now(),
 *     event: { type: 'device-report', deviceId: 'dev-1', rolloutId: rollout.id,
 *              bundleId: rollout.model.bundleId, state: 'committed', error: null } });
 */
export function stepRollout(input: StepRolloutInput): RolloutStep {
  const ctx = createContext(input.rollout, input.devices, input.nowMs, input.random);
  applyEvent(ctx, input.event);
  settle(ctx);
  return stepResult(ctx);
}

export interface StepRolloutEventsInput extends Omit<StepRolloutInput, 'event'> {
  /** Applied in order, all at `nowMs`. */
  events: readonly RolloutEvent[];
}

/**
 * `stepRollout` over `events` in order, at one time, as one step: the same
 * result as calling it once per event, feeding each its predecessor's
 * rollout and devices, and concatenating the commands and decisions (the
 * property tests hold them equal); throws as the first throwing event would.
 *
 * Why: each `stepRollout` builds a map of all the rollout's devices and
 * settles over all of them (steps 2-5), so a batch of E events cost E x N.
 * Here the devices are mapped once, and steps 2-5 run only after an event
 * that changed something: after one that changed nothing, at the same time,
 * they would find what the previous run of them left, and change nothing
 * (every step is idempotent). A progress report that changes no status, the
 * most common event of a rollout, costs one map lookup.
 */
export function stepRolloutEvents(input: StepRolloutEventsInput): RolloutStep {
  const ctx = createContext(input.rollout, input.devices, input.nowMs, input.random);
  let settled = false;
  for (const event of input.events) {
    const before = {
      rollout: ctx.rollout,
      puts: ctx.puts,
      commands: ctx.commands.length,
      decisions: ctx.decisions.length,
    };
    applyEvent(ctx, event);
    const changed =
      ctx.rollout !== before.rollout ||
      ctx.puts !== before.puts ||
      ctx.commands.length !== before.commands ||
      ctx.decisions.length !== before.decisions;
    if (changed || !settled) {
      settle(ctx);
      settled = true;
    }
  }
  return stepResult(ctx);
}

function applyEvent(ctx: StepContext, event: RolloutEvent): void {
  switch (event.type) {
    case 'tick':
      return;
    case 'device-report':
      return applyReport(ctx, event);
    case 'device-health':
      return applyHealth(ctx, event);
    case 'device-joined':
      return join(ctx, event);
    case 'pause':
      return pause(ctx, event.actor, event.reason);
    case 'resume':
      return resume(ctx, event.actor);
    case 'abort':
      refuseWhenFinished(ctx.rollout, 'aborted');
      return abortRollout(ctx, `aborted by ${event.actor}: ${event.reason}`, event.actor);
  }
}

/** Steps 2-5 of the header, for a running or paused rollout. */
function settle(ctx: StepContext): void {
  if (ctx.rollout.status !== 'running' && ctx.rollout.status !== 'paused') return;
  expireTimeouts(ctx);
  if (enforceFailureLimit(ctx) === 'aborted') return;
  // Bounded: each pass either stops or starts a later wave.
  for (let pass = 0; pass <= ctx.rollout.policy.waves.length; pass++) {
    trackWaveShare(ctx);
    if (!advanceOrComplete(ctx)) break;
  }
  if (ctx.rollout.status === 'running') dispatchDeploys(ctx);
}

function refuseWhenFinished(rollout: RolloutSnapshot, verb: string): void {
  if (rollout.status !== 'completed' && rollout.status !== 'aborted') return;
  const why = rollout.reason ? ` (${rollout.reason})` : '';
  throw controlPlaneError(
    'CONFLICT',
    `rollout ${rollout.id} is ${rollout.status}${why}; it cannot be ${verb}`,
  );
}

function pause(ctx: StepContext, actor: string, reason: string): void {
  refuseWhenFinished(ctx.rollout, 'paused');
  if (ctx.rollout.status === 'paused') return;
  const why = `paused by ${actor}: ${reason}`;
  patchRollout(ctx, { status: 'paused', reason: why });
  decide(ctx, 'paused', `${why}; no new deploys or retries until resumed`, {
    actor,
    wave: ctx.rollout.currentWave,
  });
}

function resume(ctx: StepContext, actor: string): void {
  refuseWhenFinished(ctx.rollout, 'resumed');
  if (ctx.rollout.status === 'running') return;
  patchRollout(ctx, { status: 'running', reason: null });
  const reason = `resumed by ${actor} at ${waveLabel(ctx, ctx.rollout.currentWave)}`;
  decide(ctx, 'resumed', reason, { actor, wave: ctx.rollout.currentWave });
}

function join(ctx: StepContext, event: Extract<RolloutEvent, { type: 'device-joined' }>): void {
  const wave = joiningWave(ctx.rollout);
  const { id } = event.device;
  if (
    wave === null ||
    ctx.devices.has(id) ||
    !matchesSelector(event.device, ctx.rollout.selector)
  ) {
    return;
  }
  const added = putDevice(ctx, newDevice(id, wave, event.previousModel, ctx.nowMs));
  const when = {
    running: 'deployed now',
    paused: 'deployed when the rollout resumes',
    completed: 'the rollout is complete, so it is deployed at once',
    aborted: '',
  }[ctx.rollout.status];
  const reason = `${id} matches the target ${formatSelector(ctx.rollout.selector)} after the start; joins ${waveLabel(ctx, wave)}, ${when}`;
  decide(ctx, 'device-joined', reason, { deviceId: id, wave });
  if (ctx.rollout.status === 'completed') sendDeploy(ctx, added);
}
