import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseWaves } from './rollout-spec.ts';
import type { WaveSize } from './rollout-types.ts';
import { assignWaves, joiningWave, waveOrder, waveSizes } from './wave-plan.ts';

const ids = (n: number) => Array.from({ length: n }, (_, i) => `dev-${String(i).padStart(4, '0')}`);

/** Valid wave lists: optional leading counts, then growing percentages ending at 100. */
const wavesArb: fc.Arbitrary<WaveSize[]> = fc
  .tuple(
    fc.uniqueArray(fc.integer({ min: 1, max: 500 }), { maxLength: 3 }),
    fc.uniqueArray(fc.integer({ min: 1, max: 999 }), { maxLength: 4 }),
  )
  .map(([counts, tenths]) => [
    ...counts.sort((a, b) => a - b).map((count) => ({ count })),
    ...tenths.sort((a, b) => a - b).map((t) => ({ percent: t / 10 })),
    { percent: 100 },
  ]);

describe('waveSizes', () => {
  it('rounds percentages up, at least one device', () => {
    assert.deepEqual(waveSizes(parseWaves('1%,10%,50%,100%'), 250), [3, 25, 125, 250]);
    assert.deepEqual(waveSizes(parseWaves('1%,10%,50%,100%'), 30), [1, 3, 15, 30]);
    assert.deepEqual(waveSizes(parseWaves('1%,10%,50%,100%'), 1), [1, 1, 1, 1]);
  });

  it('does not round a float product that is exactly whole up past it', () => {
    // 1.1 * 3000 / 100 is 33.00000000000001 in binary floating point.
    assert.deepEqual(waveSizes(parseWaves('1.1%,all'), 3000), [33, 3000]);
  });

  it('caps counts at the target and never shrinks from one wave to the next', () => {
    assert.deepEqual(waveSizes(parseWaves('5,20,all'), 12), [5, 12, 12]);
    assert.deepEqual(waveSizes(parseWaves('5,1%,all'), 100), [5, 5, 100]);
  });

  it('is all zeros for an empty target', () => {
    assert.deepEqual(waveSizes(parseWaves('5,10%,all'), 0), [0, 0, 0]);
  });

  it('for any valid waves and target: monotone, within the target, at least one, ending at the target', () => {
    fc.assert(
      fc.property(wavesArb, fc.integer({ min: 0, max: 5000 }), (waves, target) => {
        const sizes = waveSizes(waves, target);
        assert.equal(sizes.length, waves.length);
        assert.equal(sizes.at(-1), target);
        for (const [i, size] of sizes.entries()) {
          assert.ok(size <= target && Number.isInteger(size));
          if (target > 0) assert.ok(size >= 1);
          if (i > 0) assert.ok(size >= sizes[i - 1]!);
          const wave = waves[i]!;
          const planned = 'count' in wave ? wave.count : (wave.percent * target) / 100;
          assert.ok(size >= Math.min(target, Math.floor(planned)), 'never below what was asked');
        }
      }),
    );
  });
});

describe('assignWaves', () => {
  it('fills waves in wave order to their cumulative sizes', () => {
    const devices = ids(250);
    const assigned = assignWaves(devices, parseWaves('1%,10%,50%,100%'), 'r-canary-01');
    const perWave = [0, 0, 0, 0];
    for (const wave of assigned.values()) perWave[wave]!++;
    assert.deepEqual(perWave, [3, 22, 100, 125]);
    const order = waveOrder(devices, 'r-canary-01');
    assert.deepEqual(
      order.slice(0, 3).map((id) => assigned.get(id)),
      [0, 0, 0],
    );
    assert.equal(assigned.get(order[3]!), 1);
  });

  it('does not depend on the order devices are given in, and drops duplicates', () => {
    const devices = ids(40);
    const waves = parseWaves('5,25%,all');
    const forward = assignWaves(devices, waves, 'r-1');
    const shuffled = assignWaves([...devices].reverse().concat(devices.slice(0, 5)), waves, 'r-1');
    assert.deepEqual([...shuffled].sort(), [...forward].sort());
    assert.equal(shuffled.size, 40);
  });

  it('picks canaries by rollout, not alphabetically', () => {
    const devices = ids(1000);
    const waves = parseWaves('1%,all');
    const canaries = (seed: string) =>
      [...assignWaves(devices, waves, seed)].filter(([, w]) => w === 0).map(([id]) => id);
    const first = canaries('r-first');
    assert.equal(first.length, 10);
    assert.notDeepEqual(first.sort(), devices.slice(0, 10), 'not the first ten ids');
    assert.notDeepEqual(canaries('r-second').sort(), first, 'another rollout, other canaries');
    assert.deepEqual(canaries('r-first').sort(), first, 'the same rollout, the same canaries');
  });

  it('gives every device a wave whose cumulative size covers its rank', () => {
    fc.assert(
      fc.property(wavesArb, fc.integer({ min: 0, max: 300 }), fc.string(), (waves, n, seed) => {
        const devices = ids(n);
        const assigned = assignWaves(devices, waves, seed);
        const sizes = waveSizes(waves, n);
        assert.equal(assigned.size, n);
        for (const [rank, id] of waveOrder(devices, seed).entries()) {
          const wave = assigned.get(id)!;
          assert.ok(rank < sizes[wave]!, `rank ${rank} inside wave ${wave}`);
          if (wave > 0) assert.ok(rank >= sizes[wave - 1]!, `rank ${rank} not in an earlier wave`);
        }
      }),
    );
  });
});

describe('joiningWave', () => {
  const policy = { waves: parseWaves('1%,10%,all') };
  it('is the current wave while running or paused, the last after completion, none after abort', () => {
    assert.equal(joiningWave({ status: 'running', currentWave: 1, policy }), 1);
    assert.equal(joiningWave({ status: 'paused', currentWave: 0, policy }), 0);
    assert.equal(joiningWave({ status: 'completed', currentWave: 2, policy }), 2);
    assert.equal(joiningWave({ status: 'aborted', currentWave: 1, policy }), null);
  });
});
