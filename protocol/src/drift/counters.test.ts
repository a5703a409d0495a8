import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isFleetError } from '../errors.ts';
import { COUNTERS_SERIALIZED_BYTES, SummaryCounters } from './counters.ts';
import { createSeededRandom } from './random.ts';
import { assertRefused as refused } from '../__fixtures__/refusals.ts';
import { normal } from './__fixtures__/streams.ts';

function countersOf(values: Iterable<number | null | undefined>): SummaryCounters {
  const counters = new SummaryCounters();
  for (const value of values) counters.update(value);
  return counters;
}

/** Mean and population variance by the two-pass formula. */
function exactMoments(values: number[]): { mean: number; variance: number } {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
  return { mean, variance };
}

function assertClose(actual: number, expected: number, what: string): void {
  const scale = Math.max(Math.abs(expected), 1e-300);
  assert.ok(Math.abs(actual - expected) / scale <= 1e-9, `${what}: ${actual} vs ${expected}`);
}

describe('summary counters', () => {
  it('count NaN, infinities and missing values apart from the finite ones', () => {
    const counters = countersOf([1, NaN, 2, Infinity, null, -Infinity, undefined, 6, -0]);
    assert.deepEqual(
      [
        counters.count,
        counters.nanCount,
        counters.infinityCount,
        counters.nullCount,
        counters.total,
      ],
      [4, 1, 2, 2, 9],
    );
    assert.deepEqual([counters.min, counters.max, counters.mean], [0, 6, 9 / 4]);
    assert.equal(
      counters.variance,
      ((1 - 2.25) ** 2 + (2 - 2.25) ** 2 + (6 - 2.25) ** 2 + 2.25 ** 2) / 4,
    );
    const empty = countersOf([NaN, null]);
    assert.ok(
      [empty.min, empty.max, empty.mean, empty.variance, empty.sampleVariance].every(Number.isNaN),
    );
  });

  it('merged from uneven shards equal the counters of the union (mean, variance within 1e-9)', () => {
    const random = createSeededRandom(5);
    const union: (number | null)[] = [];
    const shards: SummaryCounters[] = [];
    for (let shard = 0; shard < 50; shard++) {
      const size = shard % 7 === 0 ? 0 : Math.floor(random() * 3000);
      const values: (number | null)[] = [];
      for (let i = 0; i < size; i++) {
        const u = random();
        values.push(
          u < 0.01
            ? NaN
            : u < 0.02
              ? null
              : u < 0.025
                ? -Infinity
                : 1e6 + shard * 10 + 3 * normal(random),
        );
      }
      union.push(...values);
      shards.push(countersOf(values));
    }
    const chain = new SummaryCounters();
    for (const shard of shards) chain.merge(shard);
    let tree = shards;
    while (tree.length > 1) {
      const next: SummaryCounters[] = [];
      for (let i = 0; i < tree.length; i += 2) {
        if (i + 1 < tree.length) tree[i]!.merge(tree[i + 1]!);
        next.push(tree[i]!);
      }
      tree = next;
    }
    const direct = countersOf(union);
    const finite = union.filter((x): x is number => x !== null && Number.isFinite(x));
    const exact = exactMoments(finite);
    for (const counters of [chain, tree[0]!, direct]) {
      assert.deepEqual(
        [counters.count, counters.nanCount, counters.nullCount, counters.infinityCount],
        [direct.count, direct.nanCount, direct.nullCount, direct.infinityCount],
      );
      assert.equal(counters.min, Math.min(...finite));
      assert.equal(counters.max, Math.max(...finite));
      assertClose(counters.mean, exact.mean, 'mean');
      assertClose(counters.variance, exact.variance, 'variance');
      assertClose(
        counters.sampleVariance,
        (exact.variance * finite.length) / (finite.length - 1),
        'sample variance',
      );
    }
  });

  it('keep the mean finite at the edges of float64 (M2 may overflow to Infinity)', () => {
    const counters = countersOf([1.7e308, -1.7e308, 1.7e308]);
    assert.ok(Number.isFinite(counters.mean) && Math.abs(counters.mean - 1.7e308 / 3) < 1e295);
    assert.equal(counters.m2, Infinity);
    const copy = SummaryCounters.deserialize(counters.serialize());
    assert.equal(copy.m2, Infinity);
    const merged = countersOf([1.7e308]);
    merged.merge(countersOf([-1.7e308]));
    assert.equal(merged.mean, 0);
  });
});

describe('summary counters serialization', () => {
  const sample = () => countersOf([3, 1, NaN, null, 4, Infinity, 1, 5]);

  it('round-trips bit-identically, empty or not', () => {
    for (const counters of [new SummaryCounters(), sample(), countersOf([7])]) {
      const bytes = counters.serialize();
      assert.equal(bytes.length, COUNTERS_SERIALIZED_BYTES);
      const copy = SummaryCounters.deserialize(bytes);
      assert.deepEqual(copy.serialize(), bytes);
      assert.deepEqual(
        [copy.count, copy.total, copy.mean, copy.m2],
        [counters.count, counters.total, counters.mean, counters.m2],
      );
    }
  });

  function edit(change: (view: DataView) => void, from = sample()): Uint8Array {
    const bytes = from.serialize();
    change(new DataView(bytes.buffer));
    return bytes;
  }

  it('refuses truncations, trailing bytes, bad magic, versions and reserved bytes', () => {
    const bytes = sample().serialize();
    for (let length = 0; length < bytes.length; length++) {
      refused(() => SummaryCounters.deserialize(bytes.subarray(0, length)), 'TRUNCATED');
    }
    refused(() => SummaryCounters.deserialize(Uint8Array.from([...bytes, 0])), 'TRAILING_DATA');
    refused(() => SummaryCounters.deserialize(edit((v) => v.setUint8(1, 0))), 'MALFORMED', /magic/);
    refused(
      () => SummaryCounters.deserialize(edit((v) => v.setUint8(4, 2))),
      'MALFORMED',
      /version/,
    );
    refused(
      () => SummaryCounters.deserialize(edit((v) => v.setUint8(7, 1))),
      'MALFORMED',
      /reserved/,
    );
  });

  it('refuses moments that cannot come from the counts', () => {
    const cases: [(view: DataView) => void, RegExp][] = [
      [(v) => v.setFloat64(40, 6), /min 6/], // min above max
      [(v) => v.setFloat64(48, NaN), /max NaN/],
      [(v) => v.setFloat64(56, 9), /mean 9/],
      [(v) => v.setFloat64(56, NaN), /mean NaN/],
      [(v) => v.setFloat64(64, -1), /m2 -1/],
      [(v) => v.setFloat64(64, NaN), /m2 NaN/],
    ];
    for (const [change, message] of cases)
      refused(() => SummaryCounters.deserialize(edit(change)), 'MALFORMED', message);
    refused(
      () => SummaryCounters.deserialize(edit((v) => v.setFloat64(40, 1), new SummaryCounters())),
      'MALFORMED',
      /of 0/,
    );
    refused(
      () => SummaryCounters.deserialize(edit((v) => v.setFloat64(64, 2), countersOf([7]))),
      'MALFORMED',
      /0 for one value/,
    );
  });

  it('refuses counts of 2^53 or more (TOO_LARGE)', () => {
    refused(
      () => SummaryCounters.deserialize(edit((v) => v.setBigUint64(16, 2n ** 53n))),
      'TOO_LARGE',
    );
    const sum = edit((v) => {
      v.setBigUint64(16, 2n ** 52n);
      v.setBigUint64(24, 2n ** 52n);
    });
    refused(() => SummaryCounters.deserialize(sum), 'TOO_LARGE', /2\^53/);
  });

  it('fails only with FleetErrors under random corruption (seeded fuzz)', () => {
    const random = createSeededRandom(8);
    const original = sample().serialize();
    for (let round = 0; round < 2000; round++) {
      const bytes = original.slice();
      bytes[Math.floor(random() * bytes.length)]! ^= 1 << Math.floor(random() * 8);
      try {
        const counters = SummaryCounters.deserialize(bytes);
        assert.deepEqual(counters.serialize(), bytes);
        assert.ok(
          counters.count === 0 || (counters.min <= counters.mean && counters.mean <= counters.max),
        );
      } catch (e) {
        assert.ok(isFleetError(e), String(e));
      }
    }
  });
});
