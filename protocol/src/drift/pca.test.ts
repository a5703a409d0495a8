import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertRefused as refused } from '../__fixtures__/refusals.ts';
import { normal } from './__fixtures__/streams.ts';
import { covarianceOf, fitPca, fitPcaFromCovariance, PCA_FIT_MAX_INPUT_SIZE } from './pca.ts';
import { createSeededRandom } from './random.ts';

const D = 20;

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}

/** Three orthonormal directions from seeded random vectors (Gram-Schmidt). */
function knownDirections(): Float64Array[] {
  const random = createSeededRandom(99);
  const out: Float64Array[] = [];
  for (let k = 0; k < 3; k++) {
    const x = Float64Array.from({ length: D }, () => random() - 0.5);
    for (const q of out) {
      const c = dot(q, x);
      x.forEach((_, i) => (x[i]! -= c * q[i]!));
    }
    const length = Math.sqrt(dot(x, x));
    out.push(x.map((value) => value / length));
  }
  return out;
}

const STDS = [5, 3, 2];
const OFFSET = Float64Array.from({ length: D }, (_, i) => 10 + i);

/** Rows = OFFSET + Σ std_k z_k dir_k + 0.1 noise, with a few features always 0 (sparse, like MNIST borders). */
function rows(n: number, seed: number): Float32Array[] {
  const random = createSeededRandom(seed);
  const directions = knownDirections();
  return Array.from({ length: n }, () => {
    const z = STDS.map((std) => std * normal(random));
    return Float32Array.from({ length: D }, (_, i) =>
      i >= D - 2
        ? 0
        : OFFSET[i]! + directions.reduce((s, d, k) => s + z[k]! * d[i]!, 0) + 0.1 * normal(random),
    );
  });
}

function assertOrthonormal(components: Float32Array[], tolerance = 1e-6): void {
  components.forEach((a, i) =>
    components.forEach((b, j) => {
      const expected = i === j ? 1 : 0;
      assert.ok(Math.abs(dot(a, b) - expected) < tolerance, `c${i}·c${j} = ${dot(a, b)}`);
    }),
  );
}

describe('PCA', () => {
  it('recovers the known components, their variances and the mean of a synthetic dataset', () => {
    const data = rows(3000, 1);
    const fit = fitPca(data, D, { components: 3 });
    assert.ok(fit.converged);
    const directions = knownDirections().map((d, k) => {
      // the last two features are 0 in the data: the truth is the direction without them
      const clipped = d.map((v, i) => (i >= D - 2 ? 0 : v));
      return { direction: clipped, variance: STDS[k]! ** 2 * dot(clipped, clipped) };
    });
    fit.basis.components.forEach((component, k) => {
      const truth = directions[k]!.direction;
      const cosine = Math.abs(dot(component, truth)) / Math.sqrt(dot(truth, truth));
      assert.ok(cosine > 0.995, `component ${k}: |cos| = ${cosine}`);
      const ratio = fit.eigenvalues[k]! / directions[k]!.variance;
      assert.ok(ratio > 0.85 && ratio < 1.15, `variance ${k}: ${ratio}`);
    });
    for (let i = 0; i < D - 2; i++) assert.ok(Math.abs(fit.basis.mean[i]! - OFFSET[i]!) < 0.3);
    assert.equal(fit.basis.mean[D - 1], 0);
    assert.ok(
      fit.eigenvalues[0]! >= fit.eigenvalues[1]! && fit.eigenvalues[1]! >= fit.eigenvalues[2]!,
    );
    // the three components carry nearly all the variance
    const explained = fit.eigenvalues.reduce((a, b) => a + b, 0) / fit.totalVariance;
    assert.ok(explained > 0.99, `explained ${explained}`);
  });

  it('returns orthonormal components, also when the data has fewer directions than asked', () => {
    assertOrthonormal(fitPca(rows(500, 2), D, { components: 8 }).basis.components);
    // rank 1: every row on one line; the other components are still an orthonormal completion
    const line = Array.from({ length: 50 }, (_, n) =>
      Float32Array.from({ length: 6 }, (_, i) => n * (i + 1)),
    );
    const fit = fitPca(line, 6, { components: 4 });
    assertOrthonormal(fit.basis.components);
    assert.ok(fit.eigenvalues[1]! < 1e-6 * fit.eigenvalues[0]!);
    // constant data: zero covariance, still a basis
    const flat = Array.from({ length: 10 }, () => new Float32Array(5).fill(2));
    assertOrthonormal(fitPca(flat, 5, { components: 5 }).basis.components);
  });

  it('is deterministic: equal seeds give identical bases, and other seeds the same components', () => {
    const data = rows(1000, 3);
    const cov = covarianceOf(data, D);
    const a = fitPcaFromCovariance(cov, { components: 3, random: createSeededRandom(7) });
    const b = fitPcaFromCovariance(cov, { components: 3, random: createSeededRandom(7) });
    assert.deepEqual(a, b);
    assert.deepEqual(fitPca(data, D, { components: 3 }), fitPca(data, D, { components: 3 }));
    const c = fitPcaFromCovariance(cov, { components: 3, random: createSeededRandom(8) });
    a.basis.components.forEach((row, k) =>
      row.forEach((value, i) => assert.ok(Math.abs(value - c.basis.components[k]![i]!) < 1e-5)),
    );
  });

  it('computes the covariance of sparse rows like the two-pass definition', () => {
    const data = rows(200, 4);
    const cov = covarianceOf(data, D);
    assert.equal(cov.n, 200);
    for (const [i, j] of [
      [0, 0],
      [3, 7],
      [7, 3],
      [5, D - 1],
      [D - 1, D - 1],
    ] as const) {
      const mi = data.reduce((s, r) => s + r[i]!, 0) / 200;
      const mj = data.reduce((s, r) => s + r[j]!, 0) / 200;
      const exact = data.reduce((s, r) => s + (r[i]! - mi) * (r[j]! - mj), 0) / 199;
      assert.ok(Math.abs(cov.matrix[i * D + j]! - exact) < 1e-9 * (1 + Math.abs(exact)));
    }
  });

  it('refuses bad shapes and numbers', () => {
    const data = rows(10, 5);
    refused(
      () => fitPca(data, D, { components: D + 1 }),
      'MALFORMED',
      /components must be 1 to 20/,
    );
    refused(() => fitPca(data, D, { components: 0 }), 'MALFORMED');
    refused(() => covarianceOf(data, PCA_FIT_MAX_INPUT_SIZE + 1), 'TOO_LARGE');
    refused(() => covarianceOf(data, D - 1), 'MALFORMED', /row 0 has 20 features, not 19/);
    refused(() => covarianceOf(data.slice(0, 1), D), 'MALFORMED', /at least 2 rows/);
    const bad = data.map((r) => r.slice());
    bad[4]![2] = NaN;
    refused(() => covarianceOf(bad, D), 'MALFORMED', /row 4, feature 2 is NaN/);
  });
});
