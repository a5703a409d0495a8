/**
 * The working state of one engine step: the rollout and its devices as the
 * step changes them, and what the step sends and decides. The engine's named
 * steps (device-rules.ts, rollout-progress.ts) take it in turn. It is created
 * per step and never escapes it, and no input object is changed (each change
 * replaces the device or rollout object), so the step as a whole stays pure.
 */
import type { BundleModelRef } from '@fleet/protocol';
import type {
  RolloutCommand,
  RolloutDecision,
  RolloutDecisionKind,
  RolloutStep,
} from './rollout-events.ts';
import type { RolloutDevice, RolloutDeviceStatus, RolloutSnapshot } from './rollout-types.ts';

export interface StepContext {
  rollout: RolloutSnapshot;
  readonly devices: Map<string, RolloutDevice>;
  readonly changed: Set<string>;
  /** Devices replaced so far (`putDevice` calls), so a caller can tell a step changed one. */
  puts: number;
  readonly commands: RolloutCommand[];
  readonly decisions: RolloutDecision[];
  readonly nowMs: number;
  /** Jitter source for retry delays, [0, 1); none means no jitter. */
  readonly random: (() => number) | undefined;
  /**
   * How many devices of each wave are in each status, kept by `putDevice`:
   * the ratio rules read these instead of going over every device, so an
   * event that changes one device costs O(waves), not O(devices).
   */
  readonly tally: Map<number, Map<RolloutDeviceStatus, number>>;
  /**
   * Lower bounds that let the two scans of a step (timeouts, deploys) skip
   * when they cannot find anything. Each may be lower than the truth (a
   * device that left the state keeps the bound low until the next scan
   * recomputes it), never higher, so a skipped scan is one that would have
   * changed nothing.
   *   inFlightSentFloorMs  no device in flight was sent before this
   *   pendingDueFloorMs    no pending device of a started wave is due
   *                        before this (-Infinity: one may be due now)
   */
  inFlightSentFloorMs: number;
  pendingDueFloorMs: number;
}

export function createContext(
  rollout: RolloutSnapshot,
  devices: readonly RolloutDevice[],
  nowMs: number,
  random?: () => number,
): StepContext {
  const ctx: StepContext = {
    rollout,
    devices: new Map(),
    changed: new Set(),
    puts: 0,
    commands: [],
    decisions: [],
    nowMs,
    random,
    tally: new Map(),
    inFlightSentFloorMs: Infinity,
    pendingDueFloorMs: Infinity,
  };
  for (const device of devices) {
    ctx.devices.set(device.deviceId, device);
    count(ctx, device, 1);
    lowerFloors(ctx, device);
  }
  return ctx;
}

export function stepResult(ctx: StepContext): RolloutStep {
  return {
    rollout: ctx.rollout,
    devices: [...ctx.changed].map((id) => ctx.devices.get(id)!),
    commands: ctx.commands,
    decisions: ctx.decisions,
  };
}

export const FINAL_STATUSES: ReadonlySet<RolloutDeviceStatus> = new Set([
  'succeeded',
  'failed',
  'cancelled',
  'rolled_back',
]);

export function isFinal(device: RolloutDevice): boolean {
  return FINAL_STATUSES.has(device.status);
}

/** A deploy is out and no final report is in: the statuses a device timeout applies to. */
export const IN_FLIGHT_STATUSES: ReadonlySet<RolloutDeviceStatus> = new Set([
  'sent',
  'updating',
  'probation',
]);

export function isInFlight(device: RolloutDevice): boolean {
  return IN_FLIGHT_STATUSES.has(device.status) && device.lastSentAtMs !== null;
}

/** Replaces one device (stamped with the step's time) and remembers it changed. */
export function putDevice(ctx: StepContext, device: RolloutDevice): RolloutDevice {
  const next = { ...device, updatedAtMs: ctx.nowMs };
  const previous = ctx.devices.get(device.deviceId);
  if (previous) count(ctx, previous, -1);
  count(ctx, next, 1);
  lowerFloors(ctx, next);
  ctx.devices.set(device.deviceId, next);
  ctx.changed.add(device.deviceId);
  ctx.puts += 1;
  return next;
}

function count(ctx: StepContext, device: RolloutDevice, delta: 1 | -1): void {
  let wave = ctx.tally.get(device.wave);
  if (!wave) ctx.tally.set(device.wave, (wave = new Map<RolloutDeviceStatus, number>()));
  wave.set(device.status, (wave.get(device.status) ?? 0) + delta);
}

function lowerFloors(ctx: StepContext, device: RolloutDevice): void {
  if (isInFlight(device)) {
    ctx.inFlightSentFloorMs = Math.min(ctx.inFlightSentFloorMs, device.lastSentAtMs!);
  } else if (device.status === 'pending' && device.wave <= ctx.rollout.currentWave) {
    ctx.pendingDueFloorMs = Math.min(ctx.pendingDueFloorMs, device.nextAttemptAtMs ?? -Infinity);
  }
}

/**
 * Devices of waves up to `maxWave` (every wave when omitted) with one of the
 * statuses (any when omitted), from the tally.
 */
export function countDevices(
  ctx: StepContext,
  filter: { maxWave?: number; statuses?: ReadonlySet<RolloutDeviceStatus> } = {},
): number {
  let total = 0;
  for (const [wave, byStatus] of ctx.tally) {
    if (filter.maxWave !== undefined && wave > filter.maxWave) continue;
    for (const [status, n] of byStatus) {
      if (!filter.statuses || filter.statuses.has(status)) total += n;
    }
  }
  return total;
}

/** Devices of the waves started so far, with one of the statuses (any when omitted). */
export function countStarted(ctx: StepContext, ...statuses: RolloutDeviceStatus[]): number {
  return countDevices(ctx, {
    maxWave: ctx.rollout.currentWave,
    ...(statuses.length > 0 ? { statuses: new Set(statuses) } : {}),
  });
}

export function patchRollout(ctx: StepContext, patch: Partial<RolloutSnapshot>): void {
  ctx.rollout = { ...ctx.rollout, ...patch, updatedAtMs: ctx.nowMs };
}

export function decide(
  ctx: StepContext,
  kind: RolloutDecisionKind,
  reason: string,
  extra: Omit<RolloutDecision, 'kind' | 'reason' | 'atMs'> = {},
): void {
  ctx.decisions.push({ kind, reason, atMs: ctx.nowMs, ...extra });
}

export function waveLabel(ctx: StepContext, wave: number): string {
  return `wave ${wave + 1} of ${ctx.rollout.policy.waves.length}`;
}

export function modelLabel(model: BundleModelRef): string {
  return `${model.name}@${model.version} (release ${model.release})`;
}

export function percent(part: number, whole: number): string {
  return whole === 0 ? '0.0%' : `${((part / whole) * 100).toFixed(1)}%`;
}

export function ratioLabel(ratio: number): string {
  return `${(ratio * 100).toFixed(1)}%`;
}

/** `90000` -> `1m30s`; the form `parseDuration` reads. */
export function durationLabel(ms: number): string {
  const units: [string, number][] = [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
    ['ms', 1],
  ];
  let rest = Math.max(0, Math.round(ms));
  let text = '';
  for (const [unit, size] of units) {
    const amount = Math.floor(rest / size);
    if (amount > 0) text += `${amount}${unit}`;
    rest -= amount * size;
  }
  return text || '0s';
}
