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
}

export function createContext(
  rollout: RolloutSnapshot,
  devices: readonly RolloutDevice[],
  nowMs: number,
  random?: () => number,
): StepContext {
  return {
    rollout,
    devices: new Map(devices.map((device) => [device.deviceId, device])),
    changed: new Set(),
    puts: 0,
    commands: [],
    decisions: [],
    nowMs,
    random,
  };
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

/** Replaces one device (stamped with the step's time) and remembers it changed. */
export function putDevice(ctx: StepContext, device: RolloutDevice): RolloutDevice {
  const next = { ...device, updatedAtMs: ctx.nowMs };
  ctx.devices.set(device.deviceId, next);
  ctx.changed.add(device.deviceId);
  ctx.puts += 1;
  return next;
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

/** The devices of the waves started so far (all of them once the last wave started). */
export function startedDevices(ctx: StepContext): RolloutDevice[] {
  return [...ctx.devices.values()].filter((device) => device.wave <= ctx.rollout.currentWave);
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
