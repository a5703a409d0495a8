/**
 * The step context's bookkeeping against a recount over every device: after
 * any sequence of device replacements the per-wave tally equals counting the
 * devices, and the two scan floors are never above the truth (a floor above
 * it would make a scan skip a device it should have acted on).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MODEL, ROLLOUT_ID, T0 } from './__fixtures__/rollout-harness.ts';
import { buildPolicy } from './rollout-spec.ts';
import {
  ROLLOUT_DEVICE_STATUSES,
  type RolloutDevice,
  type RolloutDeviceStatus,
  type RolloutSnapshot,
} from './rollout-types.ts';
import {
  countDevices,
  countStarted,
  createContext,
  FINAL_STATUSES,
  isInFlight,
  putDevice,
  type StepContext,
} from './step-context.ts';

const STATUSES = ROLLOUT_DEVICE_STATUSES;

const deviceArb = (ids: number) =>
  fc.record({
    id: fc.integer({ min: 0, max: ids - 1 }),
    wave: fc.integer({ min: 0, max: 3 }),
    status: fc.constantFrom(...STATUSES),
    lastSentAtMs: fc.option(fc.integer({ min: T0, max: T0 + 60_000 })),
    nextAttemptAtMs: fc.option(fc.integer({ min: T0, max: T0 + 60_000 })),
  });

function device(draw: {
  id: number;
  wave: number;
  status: RolloutDeviceStatus;
  lastSentAtMs: number | null;
  nextAttemptAtMs: number | null;
}): RolloutDevice {
  return {
    deviceId: `dev-${draw.id}`,
    wave: draw.wave,
    status: draw.status,
    attempts: 1,
    lastSentAtMs: draw.lastSentAtMs,
    nextAttemptAtMs: draw.nextAttemptAtMs,
    previousModel: null,
    error: null,
    committedAtMs: null,
    updatedAtMs: T0,
  };
}

function rollout(currentWave: number): RolloutSnapshot {
  return {
    id: ROLLOUT_ID,
    model: MODEL,
    selector: { all: true },
    policy: buildPolicy({ waves: '10%,30%,60%,100%' }),
    status: 'running',
    currentWave,
    waveStartedAtMs: T0,
    waveSucceededAtMs: null,
    createdAtMs: T0,
    updatedAtMs: T0,
    reason: null,
  };
}

function checkAgainstRecount(ctx: StepContext): void {
  const all = [...ctx.devices.values()];
  const started = all.filter((d) => d.wave <= ctx.rollout.currentWave);
  assert.equal(countStarted(ctx), started.length);
  for (const status of STATUSES) {
    assert.equal(countStarted(ctx, status), started.filter((d) => d.status === status).length);
  }
  assert.equal(
    countDevices(ctx, { statuses: FINAL_STATUSES }),
    all.filter((d) => FINAL_STATUSES.has(d.status)).length,
  );
  const inFlight = all.filter(isInFlight).map((d) => d.lastSentAtMs!);
  assert.ok(ctx.inFlightSentFloorMs <= Math.min(Infinity, ...inFlight));
  const due = started
    .filter((d) => d.status === 'pending')
    .map((d) => d.nextAttemptAtMs ?? -Infinity);
  assert.ok(ctx.pendingDueFloorMs <= Math.min(Infinity, ...due));
}

describe('step context bookkeeping', () => {
  it('tally and scan floors match a recount after any replacements', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 3 }),
        fc.array(deviceArb(20), { maxLength: 20 }),
        fc.array(deviceArb(25), { maxLength: 40 }),
        (currentWave, initial, puts) => {
          const unique = new Map(initial.map((d) => [d.id, device(d)]));
          const ctx = createContext(rollout(currentWave), [...unique.values()], T0);
          checkAgainstRecount(ctx);
          for (const put of puts) {
            putDevice(ctx, device(put));
            checkAgainstRecount(ctx);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('counts a device replaced in another wave and status once, where it is now', () => {
    const first = device({
      id: 1,
      wave: 0,
      status: 'sent',
      lastSentAtMs: T0,
      nextAttemptAtMs: null,
    });
    const ctx = createContext(rollout(1), [first], T0);
    assert.equal(countStarted(ctx, 'sent'), 1);
    putDevice(ctx, { ...first, wave: 2, status: 'succeeded' });
    assert.equal(countStarted(ctx), 0);
    assert.equal(countDevices(ctx, { statuses: new Set(['succeeded']) }), 1);
    assert.equal(countDevices(ctx), 1);
  });
});
