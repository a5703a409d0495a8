import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isFleetError } from '@fleet/protocol';
import { coordinateMedian, createStrategy, fedAvg, trimmedMean } from './aggregation.ts';
import type { ClientUpdate } from './types.ts';

/** One update with a [2] kernel-like tensor and a [1] bias. */
function upd(
  deviceId: string,
  sampleCount: number,
  kernel: number[],
  bias: number[],
): ClientUpdate {
  return {
    deviceId,
    sampleCount,
    tensors: [
      { name: 'dense_0/kernel', dims: [1, kernel.length], values: Float32Array.from(kernel) },
      { name: 'dense_0/bias', dims: [bias.length], values: Float32Array.from(bias) },
    ],
  };
}

const values = (r: { tensors: { values: Float32Array }[] }) => r.tensors.map((t) => [...t.values]);
const refused = (pattern: RegExp) => (e: unknown) =>
  isFleetError(e, 'INVALID_REQUEST') && pattern.test(e.message);

describe('fedAvg', () => {
  it('weights by sample count', () => {
    const r = fedAvg().aggregate([upd('a', 1, [0, 8], [1]), upd('b', 3, [4, 0], [5])]);
    // kernel: (1*0 + 3*4)/4 = 3, (1*8 + 3*0)/4 = 2; bias: (1 + 15)/4 = 4
    assert.deepEqual(values(r), [[3, 2], [4]]);
    assert.deepEqual(r.weightsUsed, [0.25, 0.75]);
    assert.equal(r.tensors[0]!.name, 'dense_0/kernel');
    assert.deepEqual(r.tensors[0]!.dims, [1, 2]);
  });

  it('ignores a zero-weight update and refuses a zero total weight', () => {
    assert.deepEqual(
      values(fedAvg().aggregate([upd('a', 0, [100, 100], [100]), upd('b', 2, [1, 2], [3])])),
      [[1, 2], [3]],
    );
    assert.throws(
      () => fedAvg().aggregate([upd('a', 0, [1, 1], [1]), upd('b', 0, [2, 2], [2])]),
      refused(/weigh 0 samples/),
    );
  });

  it('refuses a negative sample count and an empty update list', () => {
    assert.throws(() => fedAvg().aggregate([upd('a', -1, [1, 1], [1])]), refused(/sampleCount -1/));
    assert.throws(() => fedAvg().aggregate([]), refused(/no update/));
  });

  it('refuses NaN poisoning instead of returning a NaN model', () => {
    assert.throws(
      () => fedAvg().aggregate([upd('a', 1, [NaN, 1], [1]), upd('b', 1, [1, 1], [1])]),
      refused(/not finite/),
    );
  });
});

describe('trimmedMean', () => {
  it('drops floor(beta * n) from each end per coordinate, unweighted', () => {
    const updates = [
      upd('a', 1, [1, -100], [0]),
      upd('b', 1, [2, 2], [0]),
      upd('c', 1000, [3, 3], [0]),
      upd('d', 1, [4, 4], [0]),
      upd('e', 1, [1000, 5], [10]),
    ];
    // beta 0.2 of 5 -> 1 each end. Coordinate 0: {2,3,4} -> 3; coordinate 1: {2,3,4} -> 3; bias {0,0,0} -> 0.
    const r = trimmedMean({ beta: 0.2 }).aggregate(updates);
    assert.deepEqual(values(r), [[3, 3], [0]]);
    assert.equal(r.weightsUsed, null);
    // beta 0.1 of 5 -> 0 trimmed: the plain mean.
    assert.deepEqual(
      values(trimmedMean({ beta: 0.1 }).aggregate(updates)),
      [[202, -17.2], [2]].map((t) => t.map(Math.fround)),
    );
  });

  it('trims exactly k of a float product just under an integer (0.29 * 100)', () => {
    const updates = Array.from({ length: 100 }, (_, i) =>
      upd(`d${i}`, 1, [i < 29 ? -1e6 : i >= 71 ? 1e6 : 1, 0], [0]),
    );
    assert.deepEqual(values(trimmedMean({ beta: 0.29 }).aggregate(updates))[0], [1, 0]);
  });

  it('refuses when nothing would remain and a beta outside [0, 0.5)', () => {
    assert.throws(() => trimmedMean({ beta: 0.5 }), refused(/beta/));
    assert.throws(() => trimmedMean({ beta: -0.1 }), refused(/beta/));
    const two = [upd('a', 1, [1, 1], [1]), upd('b', 1, [2, 2], [2])];
    assert.throws(
      () => trimmedMean({ beta: 0.4999999999 }).aggregate(two),
      refused(/leaving nothing/),
    );
    assert.throws(
      () => trimmedMean({ beta: 0.1 }).aggregate([...two, upd('c', 1, [Infinity, 1], [1])]),
      refused(/non-finite value in 'dense_0\/kernel' at 0/),
    );
    assert.throws(
      () => coordinateMedian().aggregate([...two, upd('c', 1, [1, 1], [NaN])]),
      refused(/update 2 \(device c\) has a non-finite value in 'dense_0\/bias'/),
    );
    // 0.49 * 2 = 0.98 -> 0 trimmed of 2 is fine; 0.4 * 5 -> 2 each end leaves 1: fine.
    assert.deepEqual(
      values(
        trimmedMean({ beta: 0.4 }).aggregate(
          ['a', 'b', 'c', 'd', 'e'].map((d, i) => upd(d, 1, [i, i], [i])),
        ),
      ),
      [[2, 2], [2]],
    );
  });
});

describe('coordinateMedian', () => {
  it('takes the middle value for odd n', () => {
    const r = coordinateMedian().aggregate([
      upd('a', 1, [5, -1], [0]),
      upd('b', 1, [1, 7], [1e6]),
      upd('c', 1, [3, 2], [2]),
    ]);
    assert.deepEqual(values(r), [[3, 2], [2]]);
  });

  it('averages the two middle values for even n', () => {
    const r = coordinateMedian().aggregate([
      upd('a', 1, [4, 0], [1]),
      upd('b', 1, [1, 0], [1]),
      upd('c', 1, [3, 10], [1]),
      upd('d', 1, [100, -10], [1]),
    ]);
    // coordinate 0: {1,3,4,100} -> 3.5; coordinate 1: {-10,0,0,10} -> 0; bias 1.
    assert.deepEqual(values(r), [[3.5, 0], [1]]);
  });

  it('matches a sort-based median on many coordinates (blocks and ties)', () => {
    let seed = 7;
    const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const n = 10;
    const size = 700; // more than one block of coordinates
    const updates = Array.from({ length: n }, (_, u) => ({
      deviceId: `d${u}`,
      sampleCount: 1,
      tensors: [
        {
          name: 'w',
          dims: [size],
          values: Float32Array.from({ length: size }, () => Math.round(rand() * 6)),
        },
      ],
    }));
    const got = coordinateMedian().aggregate(updates).tensors[0]!.values;
    for (let i = 0; i < size; i++) {
      const col = updates.map((u) => u.tensors[0]!.values[i]!).sort((a, b) => a - b);
      assert.equal(got[i], (col[4]! + col[5]!) / 2, `coordinate ${i}`);
    }
  });
});

describe('layout checks (every strategy)', () => {
  for (const config of [
    { kind: 'fedavg' },
    { kind: 'trimmed-mean', beta: 0.1 },
    { kind: 'median' },
  ] as const) {
    it(`${config.kind} refuses mismatched names, dims, counts and lengths`, () => {
      const s = createStrategy(config);
      const good = upd('a', 1, [1, 2], [3]);
      const renamed = upd('b', 1, [1, 2], [3]);
      renamed.tensors[1]!.name = 'dense_0/bias_x';
      assert.throws(
        () => s.aggregate([good, renamed]),
        refused(/update 1 \(device b\): tensor 1 is 'dense_0\/bias_x'/),
      );
      assert.throws(
        () => s.aggregate([good, upd('c', 1, [1, 2, 3], [3])]),
        refused(/\[1, 3\], expected 'dense_0\/kernel' \[1, 2\]/),
      );
      const fewer = upd('d', 1, [1, 2], [3]);
      fewer.tensors.pop();
      assert.throws(() => s.aggregate([good, fewer]), refused(/1 tensors, expected 2/));
      const short = upd('e', 1, [1, 2], [3]);
      short.tensors[0]!.values = Float32Array.of(1);
      assert.throws(() => s.aggregate([good, short]), refused(/holds 1 values, its dims say 2/));
    });
  }

  it('createStrategy refuses an unknown kind', () => {
    assert.throws(() => createStrategy({ kind: 'krum' } as never), refused(/krum/));
    assert.equal(createStrategy({ kind: 'median' }).name, 'median');
  });
});
