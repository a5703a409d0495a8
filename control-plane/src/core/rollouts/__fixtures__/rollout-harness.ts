/**
 * A test harness for the rollout engine: starts a rollout over generated
 * devices, then feeds events and keeps the state the way the database adapter
 * would (the rollout replaced, the returned devices merged in).
 */
import assert from 'node:assert/strict';
import type { BundleModelRef, ErrorReport, UpdateState } from '@fleet/protocol';
import { startRollout, stepRollout } from '../rollout-engine.ts';
import type { RolloutEvent, RolloutStep } from '../rollout-events.ts';
import { buildPolicy, type PolicyInput } from '../rollout-spec.ts';
import type { RolloutDevice, RolloutSnapshot, TargetSelector } from '../rollout-types.ts';

export const ROLLOUT_ID = 'r-canary-0001';
export const MODEL: BundleModelRef = {
  name: 'mnist-2nn',
  version: '1.2.0',
  release: 5,
  bundleId: 'a'.repeat(64),
};
export const PREVIOUS: BundleModelRef = {
  name: 'mnist-2nn',
  version: '1.1.0',
  release: 4,
  bundleId: 'b'.repeat(64),
};
export const T0 = Date.parse('2026-11-26T12:00:00Z');
export const SECOND = 1_000;
export const MINUTE = 60_000;

export function deviceIds(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `dev-${String(i).padStart(3, '0')}`);
}

export interface Harness {
  rollout: RolloutSnapshot;
  readonly devices: Map<string, RolloutDevice>;
  nowMs: number;
  /** Steps at `atMs` (default: the harness clock) and keeps the result. */
  step(event: RolloutEvent, options?: { atMs?: number; random?: () => number }): RolloutStep;
  tick(atMs: number): RolloutStep;
  report(id: string, state: UpdateState, error?: ErrorReport | null): RolloutStep;
  device(id: string): RolloutDevice;
  inWave(wave: number): string[];
  /** Reports committed for each id (a device's whole happy path). */
  commitAll(ids: readonly string[]): void;
}

export interface HarnessOptions {
  devices: number | string[];
  policy?: PolicyInput;
  selector?: TargetSelector;
  previousModel?: BundleModelRef | null;
}

export function startHarness(options: HarnessOptions): { h: Harness; start: RolloutStep } {
  const ids = typeof options.devices === 'number' ? deviceIds(options.devices) : options.devices;
  const previousModel = options.previousModel === undefined ? PREVIOUS : options.previousModel;
  const start = startRollout({
    id: ROLLOUT_ID,
    model: MODEL,
    selector: options.selector ?? { all: true },
    policy: buildPolicy(options.policy ?? {}),
    devices: ids.map((deviceId) => ({ deviceId, previousModel })),
    nowMs: T0,
  });
  const h: Harness = {
    rollout: start.rollout,
    devices: new Map(start.devices.map((d) => [d.deviceId, d])),
    nowMs: T0,
    step(event, stepOptions = {}) {
      const nowMs = stepOptions.atMs ?? h.nowMs;
      h.nowMs = nowMs;
      const result = stepRollout({
        rollout: h.rollout,
        devices: [...h.devices.values()],
        event,
        nowMs,
        ...(stepOptions.random ? { random: stepOptions.random } : {}),
      });
      h.rollout = result.rollout;
      for (const device of result.devices) h.devices.set(device.deviceId, device);
      return result;
    },
    tick: (atMs) => h.step({ type: 'tick' }, { atMs }),
    report: (id, state, error = null) =>
      h.step({
        type: 'device-report',
        deviceId: id,
        rolloutId: ROLLOUT_ID,
        bundleId: MODEL.bundleId,
        state,
        error,
      }),
    device(id) {
      const device = h.devices.get(id);
      assert.ok(device, `no device ${id}`);
      return device;
    },
    inWave: (wave) => [...h.devices.values()].filter((d) => d.wave === wave).map((d) => d.deviceId),
    commitAll(ids) {
      for (const id of ids) h.report(id, 'committed');
    },
  };
  return { h, start };
}

/** Asserts a step changed, sent and decided nothing. */
export function assertQuiet(step: RolloutStep, before: RolloutSnapshot): void {
  assert.deepEqual(step.devices, []);
  assert.deepEqual(step.commands, []);
  assert.deepEqual(step.decisions, []);
  assert.deepEqual(step.rollout, before);
}

export function kinds(step: RolloutStep): string[] {
  return step.decisions.map((d) => d.kind);
}

export function deployedIds(step: RolloutStep): string[] {
  return step.commands.filter((c) => c.type === 'deploy').map((c) => c.deviceId);
}
