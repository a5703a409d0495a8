/**
 * Random event sequences against the engine's invariants: deploys only to
 * started waves and only while running (or to a joiner after completion), no
 * unknown status, no final device made non-final, no advance past a wave over
 * its failure limit, a running rollout never left above it, every step
 * idempotent, and every command justified by the device's state. And a
 * batch of events stepped at once (`stepRolloutEvents`, what the service
 * does) gives exactly what stepping them one by one at that time gives.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isFleetError, UPDATE_STATES } from '@fleet/protocol';
import { MODEL, PREVIOUS, ROLLOUT_ID, T0, deviceIds } from './__fixtures__/rollout-harness.ts';
import { startRollout, stepRollout, stepRolloutEvents } from './rollout-engine.ts';
import type { RolloutEvent, RolloutStep } from './rollout-events.ts';
import { buildPolicy } from './rollout-spec.ts';
import type { RolloutDevice, RolloutSnapshot } from './rollout-types.ts';

const STATUSES = new Set([
  'pending',
  'sent',
  'updating',
  'probation',
  'succeeded',
  'failed',
  'cancelled',
  'rolled_back',
]);
const FINAL = new Set(['succeeded', 'failed', 'cancelled', 'rolled_back']);
const ERROR_CODES = [
  'DOWNLOAD_DEADLINE',
  'BUSY',
  'DISCONNECTED',
  'PART_HASH',
  'CRASHED_DURING_UPDATE',
];

type PolicyDraw = typeof policyArb extends fc.Arbitrary<infer T> ? T : never;

const policyArb = fc.record({
  waves: fc.constantFrom('all', '10%,all', '1,50%,all', '1%,10%,50%,100%', '2,5,all'),
  bake: fc.constantFrom('0s', '1m', '10m'),
  limits: fc.constantFrom([0, 1], [0.1, 0.9], [0.3, 0.5], [0.02, 0.95]),
  retries: fc.integer({ min: 0, max: 2 }),
  retryBackoff: fc.constantFrom('0s', '30s', '2m'),
});

/** Which device an event is about; `toEvent` resolves it (mostly one that was sent a deploy). */
const deviceRef = () => fc.integer({ min: 0, max: 99 });

// Weighted towards what a healthy fleet says, so runs reach advances and completion too.
const stateArb = fc.oneof(
  { weight: 5, arbitrary: fc.constant('committed' as const) },
  { weight: 3, arbitrary: fc.constantFrom(...UPDATE_STATES.filter((s) => s !== 'committed')) },
);

function eventArb(): fc.Arbitrary<{ dtMs: number; jitter: number; event: RawEvent }> {
  const raw: fc.Arbitrary<RawEvent> = fc.oneof(
    { weight: 8, arbitrary: fc.constant({ kind: 'tick' as const }) },
    {
      weight: 20,
      arbitrary: fc.record({
        kind: fc.constant('report' as const),
        device: deviceRef(),
        state: stateArb,
        code: fc.option(fc.constantFrom(...ERROR_CODES), { freq: 2 }),
        otherBundle: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
      }),
    },
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constant('health' as const),
        device: deviceRef(),
        errors: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, fc.integer({ min: 0, max: 20 })),
        latencyP95Ms: fc.integer({ min: 0, max: 1200 }),
        probation: fc.boolean(),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('join' as const),
        n: fc.integer({ min: 0, max: 5 }),
        matches: fc.boolean(),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.constantFrom({ kind: 'pause' as const }, { kind: 'resume' as const }),
    },
    { weight: 1, arbitrary: fc.constant({ kind: 'abort' as const }) },
  );
  return fc.record({
    // Mostly seconds apart, sometimes long enough for timeouts, retries and bakes.
    dtMs: fc.oneof(
      { weight: 6, arbitrary: fc.integer({ min: 0, max: 60_000 }) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 20 * 60_000 }) },
    ),
    jitter: fc.double({ min: 0, max: 0.999, noNaN: true }),
    event: raw,
  });
}

type RawEvent =
  | { kind: 'tick' | 'pause' | 'resume' | 'abort' }
  | {
      kind: 'report';
      device: number;
      state: (typeof UPDATE_STATES)[number];
      code: string | null;
      otherBundle: boolean;
    }
  | { kind: 'health'; device: number; errors: number; latencyP95Ms: number; probation: boolean }
  | { kind: 'join'; n: number; matches: boolean };

function toEvent(raw: RawEvent, ids: readonly string[], world: World): RolloutEvent {
  const sent = [...world.devices.values()].filter((d) => d.attempts > 0).map((d) => d.deviceId);
  // 4 in 5 about a device that was sent a deploy; else any of the fleet, or an unknown one.
  const id = (ref: number) =>
    ref < 80 && sent.length > 0
      ? sent[ref % sent.length]!
      : (ids[ref % (ids.length + 2)] ?? `dev-unknown-${ref}`);
  switch (raw.kind) {
    case 'tick':
      return { type: 'tick' };
    case 'pause':
      return { type: 'pause', actor: 'prop', reason: 'random pause' };
    case 'resume':
      return { type: 'resume', actor: 'prop' };
    case 'abort':
      return { type: 'abort', actor: 'prop', reason: 'random abort' };
    case 'report':
      return {
        type: 'device-report',
        deviceId: id(raw.device),
        rolloutId: ROLLOUT_ID,
        bundleId: raw.otherBundle ? PREVIOUS.bundleId : MODEL.bundleId,
        state: raw.state,
        error: raw.code === null ? null : { code: raw.code, message: 'random' },
      };
    case 'health':
      return {
        type: 'device-health',
        deviceId: id(raw.device),
        model: { name: MODEL.name, version: MODEL.version, release: MODEL.release },
        probation: raw.probation,
        requests: 20,
        errors: raw.errors,
        latencyP95Ms: raw.latencyP95Ms,
        meanConfidence: raw.errors === 20 ? null : 0.8,
      };
    case 'join':
      return {
        type: 'device-joined',
        device: {
          id: `dev-late-${raw.n}`,
          hardware: 'rpi4',
          tags: raw.matches ? { ring: 'beta' } : { ring: 'ga' },
        },
        previousModel: PREVIOUS,
      };
  }
}

interface World {
  rollout: RolloutSnapshot;
  devices: Map<string, RolloutDevice>;
}

function failedOver(world: World, upToWave: number): { failed: number; started: number } {
  const started = [...world.devices.values()].filter((d) => d.wave <= upToWave);
  return { failed: started.filter((d) => d.status === 'failed').length, started: started.length };
}

function checkStep(before: World, after: World, step: RolloutStep, event: RolloutEvent): void {
  const { policy } = after.rollout;
  const withinLimit = ({ failed, started }: { failed: number; started: number }) =>
    failed <= policy.maxFailureRatio * started + 1e-9;
  for (const device of after.devices.values()) {
    assert.ok(STATUSES.has(device.status), `unknown status ${device.status}`);
    assert.ok(device.wave >= 0 && device.wave < policy.waves.length);
    const was = before.devices.get(device.deviceId);
    if (was && FINAL.has(was.status))
      assert.ok(FINAL.has(device.status), `${device.deviceId} un-finalized`);
  }
  for (const device of step.devices) {
    assert.notDeepEqual(
      device,
      before.devices.get(device.deviceId),
      'only changed devices are returned',
    );
  }
  for (const command of step.commands) {
    const device = after.devices.get(command.deviceId)!;
    if (command.type === 'deploy') {
      assert.ok(
        device.wave <= after.rollout.currentWave,
        `deploy to ${device.deviceId} of unstarted wave ${device.wave}`,
      );
      assert.equal(device.status, 'sent');
      assert.ok(
        after.rollout.status === 'running' ||
          (after.rollout.status === 'completed' && event.type === 'device-joined'),
      );
    } else if (command.type === 'rollback') {
      assert.notEqual(device.committedAtMs, null, 'rollback only for a device that committed');
    } else {
      assert.ok(
        device.attempts > 0 && device.committedAtMs === null,
        'cancel only for a device sent a deploy, not committed',
      );
    }
  }
  for (const decision of step.decisions) {
    if (decision.kind === 'wave-advanced')
      assert.ok(withinLimit(failedOver(after, decision.wave!)), 'advanced past a failing wave');
    if (decision.kind === 'completed')
      assert.ok([...after.devices.values()].every((d) => FINAL.has(d.status)));
  }
  if (after.rollout.status === 'running' || after.rollout.status === 'paused') {
    assert.ok(
      withinLimit(failedOver(after, after.rollout.currentWave)),
      'left running above the failure limit',
    );
  }
  assert.ok(after.rollout.currentWave >= before.rollout.currentWave);
  if (before.rollout.status === 'aborted') assert.equal(after.rollout.status, 'aborted');
}

function apply(world: World, step: RolloutStep): World {
  const devices = new Map(world.devices);
  for (const device of step.devices) devices.set(device.deviceId, device);
  return { rollout: step.rollout, devices };
}

/** A rollout of `ids` under a random policy, started at T0. */
function startWorld(ids: readonly string[], policy: PolicyDraw): World {
  const [maxFailure, successRatio] = policy.limits as [number, number];
  const start = startRollout({
    id: ROLLOUT_ID,
    model: MODEL,
    selector: { tags: { ring: 'beta' } },
    policy: buildPolicy({
      waves: policy.waves,
      bake: policy.bake,
      maxFailure,
      successRatio,
      retries: policy.retries,
      retryBackoff: policy.retryBackoff,
    }),
    devices: ids.map((deviceId) => ({ deviceId, previousModel: PREVIOUS })),
    nowMs: T0,
  });
  return {
    rollout: start.rollout,
    devices: new Map(start.devices.map((d) => [d.deviceId, d])),
  };
}

describe('rollout engine properties', () => {
  it('hold for random event sequences', () => {
    const scenario = fc.record({
      fleet: fc.integer({ min: 1, max: 16 }),
      policy: policyArb,
      events: fc.array(eventArb(), { maxLength: 80 }),
    });
    fc.assert(
      fc.property(scenario, ({ fleet, policy, events }) => {
        const ids = deviceIds(fleet);
        let world = startWorld(ids, policy);
        let nowMs = T0;
        for (const { dtMs, jitter, event: raw } of events) {
          nowMs += dtMs;
          const event = toEvent(raw, ids, world);
          const input = {
            rollout: world.rollout,
            devices: [...world.devices.values()],
            event,
            nowMs,
            random: () => jitter,
          };
          let step: RolloutStep;
          try {
            step = stepRollout(input);
          } catch (error) {
            assert.ok(isFleetError(error, 'CONFLICT'), String(error));
            assert.ok(['pause', 'resume', 'abort'].includes(event.type));
            assert.ok(world.rollout.status === 'completed' || world.rollout.status === 'aborted');
            continue;
          }
          const next = apply(world, step);
          checkStep(world, next, step, event);
          const finished = next.rollout.status === 'completed' || next.rollout.status === 'aborted';
          // Reports carry no attempt number: once a deploy went out to the reporting device
          // in this step, the same report again may be news about it (see device-rules.ts).
          const about = 'deviceId' in event ? event.deviceId : null;
          const deployed = step.commands.some((c) => c.type === 'deploy' && c.deviceId === about);
          if (!deployed && !(finished && ['pause', 'resume', 'abort'].includes(event.type))) {
            const again = stepRollout({
              ...input,
              rollout: next.rollout,
              devices: [...next.devices.values()],
            });
            assert.deepEqual(
              again,
              { rollout: next.rollout, devices: [], commands: [], decisions: [] },
              `repeating ${event.type} changed something`,
            );
          }
          world = next;
        }
      }),
      { numRuns: 400 },
    );
  });

  it('a batch stepped at once equals its events stepped one by one', () => {
    const scenario = fc.record({
      fleet: fc.integer({ min: 1, max: 16 }),
      policy: policyArb,
      // Each batch: its events, applied at one time.
      batches: fc.array(fc.array(eventArb(), { minLength: 1, maxLength: 12 }), { maxLength: 12 }),
    });
    let batchesCompared = 0;
    fc.assert(
      fc.property(scenario, ({ fleet, policy, batches }) => {
        const ids = deviceIds(fleet);
        let world = startWorld(ids, policy);
        let nowMs = T0;
        for (const batch of batches) {
          nowMs += batch[0]!.dtMs;
          const jitter = batch[0]!.jitter;
          const events = batch.map(({ event }) => toEvent(event, ids, world));
          // One by one, as the service used to.
          let folded: { world: World; commands: unknown[]; decisions: unknown[] } | 'conflict' = {
            world,
            commands: [],
            decisions: [],
          };
          try {
            for (const event of events) {
              const step = stepRollout({
                rollout: folded.world.rollout,
                devices: [...folded.world.devices.values()],
                event,
                nowMs,
                random: () => jitter,
              });
              folded = {
                world: apply(folded.world, step),
                commands: [...folded.commands, ...step.commands],
                decisions: [...folded.decisions, ...step.decisions],
              };
            }
          } catch (error) {
            assert.ok(isFleetError(error, 'CONFLICT'), String(error));
            folded = 'conflict';
          }
          const batched = () =>
            stepRolloutEvents({
              rollout: world.rollout,
              devices: [...world.devices.values()],
              events,
              nowMs,
              random: () => jitter,
            });
          if (folded === 'conflict') {
            assert.throws(batched, (error) => isFleetError(error, 'CONFLICT'));
            continue; // the service's transaction changes nothing
          }
          const step = batched();
          const next = apply(world, step);
          assert.deepEqual(next.rollout, folded.world.rollout);
          assert.deepEqual(
            [...next.devices].sort(([a], [b]) => a.localeCompare(b)),
            [...folded.world.devices].sort(([a], [b]) => a.localeCompare(b)),
          );
          assert.deepEqual(step.commands, folded.commands);
          assert.deepEqual(step.decisions, folded.decisions);
          batchesCompared += 1;
          world = next;
        }
      }),
      { numRuns: 400 },
    );
    assert.ok(batchesCompared > 1_000, `${batchesCompared} batches compared`);
  });
});
