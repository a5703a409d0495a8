/**
 * THREATS 37 and 38 on the strategies themselves: with a fifth of the
 * updates attacking (scaled x100 or sign-flipped), median and trimmed mean
 * stay close to the mean of the honest updates while FedAvg is dragged far;
 * and once clipped, an x100 update moves FedAvg by at most clipNorm times its
 * weight share.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { createStrategy, fedAvg } from './aggregation.ts';
import { globalL2Norm } from './clip-check.ts';
import type { ClientUpdate, NamedTensor } from './types.ts';

const DIMS = [[8, 4], [4]];

/** Honest updates: a shared true delta plus small per-device noise (seeded). */
function honest(n: number, seed: number): { updates: ClientUpdate[]; truth: number[][] } {
  let s = seed >>> 0 || 1;
  const rand = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
  const truth = DIMS.map((d) => Array.from({ length: d.reduce((a, b) => a * b, 1) }, () => rand()));
  const updates = Array.from({ length: n }, (_, u) => ({
    deviceId: `dev-${u}`,
    sampleCount: 50 + (u % 7) * 10,
    tensors: DIMS.map((dims, t) => ({
      name: `dense_0/${t === 0 ? 'kernel' : 'bias'}`,
      dims,
      values: Float32Array.from(truth[t]!, (v) => v + 0.05 * rand()),
    })),
  }));
  return { updates, truth };
}

function attack(u: ClientUpdate, kind: 'scale' | 'flip'): ClientUpdate {
  const factor = kind === 'scale' ? 100 : -1;
  // A sign flip is amplified too (x10), as a real attacker would: a bare flip of one fifth barely moves a mean.
  const f = kind === 'flip' ? factor * 10 : factor;
  return { ...u, tensors: u.tensors.map((t) => ({ ...t, values: t.values.map((v) => v * f) })) };
}

function distance(a: readonly NamedTensor[], b: readonly NamedTensor[]): number {
  return globalL2Norm(a.map((t, i) => ({ values: t.values.map((v, k) => v - b[i]!.values[k]!) })));
}

describe('robust aggregation under a fifth attacking (THREATS 38)', () => {
  it('median and trimmed mean stay near the clean mean; fedavg does not', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2 ** 31 }),
        fc.constantFrom('scale' as const, 'flip' as const),
        fc.constantFrom(10, 20, 50),
        (seed, kind, n) => {
          const { updates } = honest(n, seed);
          const clean = fedAvg().aggregate(updates).tensors;
          const bad = Math.floor(n / 5);
          const attacked = updates.map((u, i) => (i < bad ? attack(u, kind) : u));
          const tolerance = 0.1; // noise is 0.05 per coordinate; the clean mean's own spread is smaller
          for (const config of [{ kind: 'median' }, { kind: 'trimmed-mean', beta: 0.2 }] as const) {
            const robust = createStrategy(config).aggregate(attacked).tensors;
            const moved = distance(robust, clean);
            assert.ok(moved < tolerance * Math.sqrt(36), `${config.kind} moved ${moved}`);
          }
          const naive = distance(fedAvg().aggregate(attacked).tensors, clean);
          const cleanNorm = globalL2Norm(clean);
          assert.ok(naive > cleanNorm, `fedavg moved only ${naive} (clean norm ${cleanNorm})`);
        },
      ),
      { numRuns: 40 },
    );
  });
});

/** The agent's clip: scale the whole delta to a global L2 norm of at most clipNorm. */
function clip(u: ClientUpdate, clipNorm: number): ClientUpdate {
  const norm = globalL2Norm(u.tensors);
  const f = norm > clipNorm ? clipNorm / norm : 1;
  return { ...u, tensors: u.tensors.map((t) => ({ ...t, values: t.values.map((v) => v * f) })) };
}

describe("clipping bounds one update's pull on fedavg (THREATS 37)", () => {
  it('an x100 update, clipped, moves fedavg by at most clipNorm * its weight share', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2 ** 31 }),
        fc.integer({ min: 2, max: 30 }),
        fc.double({ min: 0.05, max: 5, noNaN: true }),
        (seed, n, clipNorm) => {
          const { updates } = honest(n, seed);
          const clipped = updates.map((u) => clip(u, clipNorm));
          const attacker = clip(attack(updates[0]!, 'scale'), clipNorm);
          const share = updates[0]!.sampleCount / updates.reduce((s, u) => s + u.sampleCount, 0);
          // Against the same round with the attacker's delta zero: moved by exactly share * ||clipped||.
          const zero = {
            ...attacker,
            tensors: attacker.tensors.map((t) => ({
              ...t,
              values: new Float32Array(t.values.length),
            })),
          };
          const withAttack = fedAvg().aggregate([attacker, ...clipped.slice(1)]).tensors;
          const withZero = fedAvg().aggregate([zero, ...clipped.slice(1)]).tensors;
          const slack = 1e-5 * (1 + clipNorm); // float32 rounding of the aggregate
          assert.ok(distance(withAttack, withZero) <= clipNorm * share + slack);
          // Against the honest (clipped) update: at most twice that (both are inside the ball).
          const withHonest = fedAvg().aggregate(clipped).tensors;
          assert.ok(distance(withAttack, withHonest) <= 2 * clipNorm * share + slack);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('without clipping the same update moves fedavg far past that bound', () => {
    const { updates } = honest(10, 3);
    const clipNorm = 0.5;
    const clipped = updates.map((u) => clip(u, clipNorm));
    const share = updates[0]!.sampleCount / updates.reduce((s, u) => s + u.sampleCount, 0);
    const unclipped = fedAvg().aggregate([
      attack(updates[0]!, 'scale'),
      ...clipped.slice(1),
    ]).tensors;
    assert.ok(distance(unclipped, fedAvg().aggregate(clipped).tensors) > 10 * clipNorm * share);
  });
});
