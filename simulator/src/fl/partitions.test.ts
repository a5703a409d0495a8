import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  dirichlet,
  gamma,
  labelsPerDevice,
  partitionSamples,
  seededUniform,
} from './partitions.ts';

/** 1,000 samples, 100 of each of 10 labels, in label order. */
const LABELS = Uint8Array.from({ length: 1000 }, (_, i) => Math.floor(i / 100));

function assertExactCover(split: number[][], count: number): void {
  const seen = split.flat().sort((a, b) => a - b);
  assert.deepEqual(
    seen,
    Array.from({ length: count }, (_, i) => i),
  );
}

describe('partitionSamples', () => {
  it('iid: equal shares, every sample once, most labels on every device', () => {
    const split = partitionSamples(LABELS, { kind: 'iid', devices: 10, seed: 1 });
    assertExactCover(split, 1000);
    assert.ok(split.every((d) => d.length === 100));
    assert.ok(labelsPerDevice(LABELS, split).every((n) => n >= 8));
  });

  it('pathological: 2 shards of sorted labels per device, so at most 2 labels each (the paper split)', () => {
    const split = partitionSamples(LABELS, { kind: 'pathological', devices: 10, seed: 1 });
    assertExactCover(split, 1000);
    assert.ok(split.every((d) => d.length === 100));
    // Shards are 50 samples and classes 100, so a shard never straddles two labels here.
    assert.ok(labelsPerDevice(LABELS, split).every((n) => n <= 2));
    // And the shards really are shuffled: not every device holds one label.
    assert.ok(labelsPerDevice(LABELS, split).some((n) => n === 2));
  });

  it('dirichlet: small alpha concentrates labels, large alpha spreads them', () => {
    const skewed = partitionSamples(LABELS, {
      kind: 'dirichlet',
      devices: 10,
      seed: 3,
      alpha: 0.1,
    });
    const even = partitionSamples(LABELS, { kind: 'dirichlet', devices: 10, seed: 3, alpha: 100 });
    assertExactCover(skewed, 1000);
    assertExactCover(even, 1000);
    const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    const nonEmpty = (split: number[][]) => split.filter((d) => d.length > 0);
    assert.ok(mean(labelsPerDevice(LABELS, nonEmpty(skewed))) < 4);
    assert.ok(mean(labelsPerDevice(LABELS, even)) > 9);
  });

  it('is the same for the same seed and differs for another', () => {
    const a = partitionSamples(LABELS, { kind: 'iid', devices: 5, seed: 7 });
    const b = partitionSamples(LABELS, { kind: 'iid', devices: 5, seed: 7 });
    const c = partitionSamples(LABELS, { kind: 'iid', devices: 5, seed: 8 });
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });

  it('refuses impossible requests with a clear error', () => {
    assert.throws(() => partitionSamples(LABELS, { kind: 'iid', devices: 0, seed: 1 }), /devices/);
    assert.throws(
      () => partitionSamples([1, 2], { kind: 'iid', devices: 3, seed: 1 }),
      /cannot be split/,
    );
    assert.throws(
      () => partitionSamples(LABELS, { kind: 'dirichlet', devices: 3, seed: 1 }),
      /alpha/,
    );
    assert.throws(
      () => partitionSamples(LABELS, { kind: 'pathological', devices: 600, seed: 1 }),
      /shards/,
    );
  });
});

describe('Dirichlet and Gamma draws', () => {
  it('gamma has mean = shape (within 3 standard errors), for shape below and above 1', () => {
    for (const shape of [0.3, 1, 4.5]) {
      const random = seededUniform(11);
      const n = 20_000;
      let sum = 0;
      for (let i = 0; i < n; i++) sum += gamma(shape, random);
      const standardError = Math.sqrt(shape / n); // variance of Gamma(k, 1) is k
      assert.ok(Math.abs(sum / n - shape) < 3 * standardError, `shape ${shape}: mean ${sum / n}`);
    }
  });

  it('dirichlet shares are non-negative and sum to 1', () => {
    const random = seededUniform(5);
    for (const alpha of [0.01, 0.5, 10]) {
      const shares = dirichlet(20, alpha, random);
      assert.ok(shares.every((x) => x >= 0));
      assert.ok(Math.abs(shares.reduce((s, x) => s + x, 0) - 1) < 1e-9);
    }
  });
});
