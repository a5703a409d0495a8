/**
 * Principal components of the training inputs, for the drift signals that
 * project an input on them or measure how badly they reconstruct it
 * (ARCHITECTURE "Drift"; drift/signals.ts computes both). The bundle factory
 * fits the basis once and ships it in the drift profile (drift/profile.ts).
 *
 * Written here rather than taken from npm: the registry's PCA package,
 * `ml-pca` 4.1.1 (mljs), computes every component, by full SVD or an
 * eigendecomposition of the covariance, which took 9.5 s and 10 s for 2,000
 * MNIST digits of 784 pixels on this project's 2-core machines, and its
 * top-k mode (NIPALS) returned NaN loadings on the same digits (pixels that
 * are always 0). Drift needs only the top 5-10 components, and the simulator
 * builds bundles in tests, so this does just that:
 *
 * 1. `covarianceOf`: one pass over the rows, sums of x and x xᵀ in float64,
 *    skipping zero entries (an MNIST digit has about 150 non-zero pixels of
 *    784, so 8,000 digits take about 90 M multiply-adds, not 2.5 G). The
 *    covariance is (Σ x xᵀ − n μ μᵀ) / (n − 1): its relative rounding error is
 *    about 1e-16 · (mean / std)² per feature, negligible unless a feature's
 *    mean is some 10^5 times its standard deviation (centre such data first).
 * 2. `fitPcaFromCovariance`: subspace iteration with Rayleigh-Ritz (Saad,
 *    "Numerical Methods for Large Eigenvalue Problems", ch. 5) on a block of
 *    k + `oversample` vectors, from a seeded random start, until every wanted
 *    Ritz pair's residual ‖C y − λ y‖ is below `tolerance` × trace(C). Each
 *    component's sign is fixed so its largest-magnitude entry is positive, so
 *    the basis does not depend on the start when the eigenvalues are distinct.
 *    On the 8,000 MNIST training digits (k = 5, default tolerance 1e-6) the
 *    covariance took 0.26 s and the fit 11 iterations, 0.15 s, and every
 *    component was within float32 rounding of a fit to 1e-12 (1 − |cos| ≤ 6e-9).
 *
 * The covariance is a dense inputSize² matrix of float64 (4.9 MB at 784), so
 * fitting is capped at PCA_FIT_MAX_INPUT_SIZE features.
 *
 * @example
 *   const fit = fitPca(rowsOf(train), 784, { components: 5 });
 *   fit.basis; // { inputSize: 784, mean, components: [5 rows of 784] }
 *   fit.eigenvalues.map((v) => v / fit.totalVariance); // explained variance ratios
 */
import { FleetError } from '../errors.ts';
import { createSeededRandom, type RandomSource } from './random.ts';

/** Most features `covarianceOf` and `fitPca` take (a 4096² float64 matrix is 134 MB). */
export const PCA_FIT_MAX_INPUT_SIZE = 4096;
/** Seed of the default start vectors: a fit is deterministic unless told otherwise. */
export const PCA_DEFAULT_SEED = 0x5eed;

/** The mean of the training inputs and `components.length` orthonormal rows of `inputSize`. */
export interface PcaBasis {
  inputSize: number;
  mean: Float32Array;
  components: Float32Array[];
}

/** Sample covariance of `n` rows: `matrix` is size × size, row-major, symmetric. */
export interface CovarianceMatrix {
  n: number;
  size: number;
  mean: Float64Array;
  matrix: Float64Array;
}

export interface PcaFitOptions {
  /** How many components, 1 to inputSize. */
  components: number;
  /** Start vectors; default createSeededRandom(PCA_DEFAULT_SEED). */
  random?: RandomSource;
  /** Extra vectors in the iterated block (default 8): more converge faster per step. */
  oversample?: number;
  /** Stop when every wanted residual is below tolerance × trace (default 1e-6). */
  tolerance?: number;
  /** Default 1000; the fit is returned with `converged: false` if reached. */
  maxIterations?: number;
}

export interface PcaFit {
  basis: PcaBasis;
  /** Variance along each component, largest first. */
  eigenvalues: number[];
  /** Sum of the variances of every feature (the covariance's trace). */
  totalVariance: number;
  iterations: number;
  converged: boolean;
}

/** Covariance of `rows` (each `inputSize` long), in one pass; zero entries cost nothing. */
export function covarianceOf(rows: Iterable<Float32Array>, inputSize: number): CovarianceMatrix {
  if (!Number.isInteger(inputSize) || inputSize < 1 || inputSize > PCA_FIT_MAX_INPUT_SIZE) {
    throw new FleetError(
      'TOO_LARGE',
      `a PCA fit takes 1 to ${PCA_FIT_MAX_INPUT_SIZE} features, not ${inputSize}`,
    );
  }
  const sums = new Float64Array(inputSize);
  const products = new Float64Array(inputSize * inputSize);
  const index = new Int32Array(inputSize);
  const value = new Float64Array(inputSize);
  let n = 0;
  for (const row of rows) {
    if (row.length !== inputSize) {
      throw new FleetError('MALFORMED', `row ${n} has ${row.length} features, not ${inputSize}`);
    }
    let nonZero = 0;
    for (let j = 0; j < inputSize; j++) {
      const x = row[j]!;
      if (!Number.isFinite(x)) throw new FleetError('MALFORMED', `row ${n}, feature ${j} is ${x}`);
      if (x !== 0) {
        index[nonZero] = j;
        value[nonZero++] = x;
        sums[j]! += x;
      }
    }
    for (let a = 0; a < nonZero; a++) {
      const base = index[a]! * inputSize;
      const xa = value[a]!;
      for (let b = a; b < nonZero; b++) products[base + index[b]!]! += xa * value[b]!;
    }
    n++;
  }
  if (n < 2) throw new FleetError('MALFORMED', `a covariance needs at least 2 rows, got ${n}`);
  const mean = sums.map((s) => s / n);
  for (let i = 0; i < inputSize; i++) {
    for (let j = i; j < inputSize; j++) {
      const c = (products[i * inputSize + j]! - n * mean[i]! * mean[j]!) / (n - 1);
      products[i * inputSize + j] = c;
      products[j * inputSize + i] = c;
    }
  }
  return { n, size: inputSize, mean, matrix: products };
}

/** The top principal components of `rows`: `covarianceOf`, then `fitPcaFromCovariance`. */
export function fitPca(
  rows: Iterable<Float32Array>,
  inputSize: number,
  options: PcaFitOptions,
): PcaFit {
  return fitPcaFromCovariance(covarianceOf(rows, inputSize), options);
}

/** The top `options.components` eigenvectors of a covariance, as a PCA basis. */
export function fitPcaFromCovariance(cov: CovarianceMatrix, options: PcaFitOptions): PcaFit {
  const d = cov.size;
  const k = options.components;
  if (!Number.isInteger(k) || k < 1 || k > d) {
    throw new FleetError('MALFORMED', `PCA components must be 1 to ${d}, not ${k}`);
  }
  const random = options.random ?? createSeededRandom(PCA_DEFAULT_SEED);
  const block = Math.min(d, k + (options.oversample ?? 8));
  const tolerance = options.tolerance ?? 1e-6;
  const maxIterations = options.maxIterations ?? 1000;
  let trace = 0;
  for (let i = 0; i < d; i++) trace += cov.matrix[i * d + i]!;
  let v = orthonormalize(
    Array.from({ length: block }, () => randomVector(d, random)),
    random,
  );
  let ritz = rayleighRitz(cov, v);
  let iterations = 1;
  let converged = maxResidual(ritz, k) <= tolerance * trace;
  while (!converged && iterations < maxIterations) {
    v = orthonormalize(ritz.images, random); // one power step on the Ritz vectors
    ritz = rayleighRitz(cov, v);
    iterations++;
    converged = maxResidual(ritz, k) <= tolerance * trace;
  }
  const components = ritz.vectors.slice(0, k).map((y) => Float32Array.from(fixSign(y)));
  return {
    basis: { inputSize: d, mean: Float32Array.from(cov.mean), components },
    eigenvalues: ritz.values.slice(0, k).map((value) => Math.max(0, value)),
    totalVariance: trace,
    iterations,
    converged,
  };
}

interface RitzPairs {
  /** Eigenvalue estimates, largest first. */
  values: number[];
  /** Ritz vectors y_i (orthonormal), in the order of `values`. */
  vectors: Float64Array[];
  /** C y_i. */
  images: Float64Array[];
}

/** Ritz pairs of C on the span of the orthonormal vectors `v`. */
function rayleighRitz(cov: CovarianceMatrix, v: Float64Array[]): RitzPairs {
  const z = multiplyBlock(cov, v);
  const b = v.length;
  const h = new Float64Array(b * b);
  for (let i = 0; i < b; i++) {
    for (let j = i; j < b; j++) {
      const hij = (dot(v[i]!, z[j]!) + dot(v[j]!, z[i]!)) / 2;
      h[i * b + j] = hij;
      h[j * b + i] = hij;
    }
  }
  const { values, vectors } = symmetricEigen(h, b);
  const order = values.map((_, i) => i).sort((p, q) => values[q]! - values[p]! || p - q);
  const combine = (basis: Float64Array[], e: number) => {
    const out = new Float64Array(cov.size);
    for (let i = 0; i < b; i++) axpy(out, vectors[i * b + e]!, basis[i]!);
    return out;
  };
  return {
    values: order.map((e) => values[e]!),
    vectors: order.map((e) => combine(v, e)),
    images: order.map((e) => combine(z, e)),
  };
}

function maxResidual(ritz: RitzPairs, k: number): number {
  let worst = 0;
  for (let i = 0; i < k; i++) {
    const y = ritz.vectors[i]!;
    const cy = ritz.images[i]!;
    const lambda = ritz.values[i]!;
    let sum = 0;
    for (let j = 0; j < y.length; j++) sum += (cy[j]! - lambda * y[j]!) ** 2;
    worst = Math.max(worst, Math.sqrt(sum));
  }
  return worst;
}

/** C times each vector, reading C once (it is the large operand: 4.9 MB at 784 features). */
function multiplyBlock(cov: CovarianceMatrix, vectors: Float64Array[]): Float64Array[] {
  const d = cov.size;
  const b = vectors.length;
  const packed = new Float64Array(d * b); // row j holds entry j of every vector
  vectors.forEach((x, c) => x.forEach((value, j) => (packed[j * b + c] = value)));
  const sums = new Float64Array(b);
  const out = vectors.map(() => new Float64Array(d));
  for (let i = 0; i < d; i++) {
    sums.fill(0);
    const row = i * d;
    for (let j = 0; j < d; j++) {
      const cij = cov.matrix[row + j]!;
      if (cij === 0) continue;
      const base = j * b;
      for (let c = 0; c < b; c++) sums[c]! += cij * packed[base + c]!;
    }
    for (let c = 0; c < b; c++) out[c]![i] = sums[c]!;
  }
  return out;
}

/**
 * Modified Gram-Schmidt, run twice per vector ("twice is enough", Giraud et
 * al. 2005); a vector that vanishes (inside the span of the previous ones, or
 * zero) is replaced with a random one, so the output is always orthonormal.
 */
function orthonormalize(vectors: Float64Array[], random: RandomSource): Float64Array[] {
  const out: Float64Array[] = [];
  for (const original of vectors) {
    let x: Float64Array = Float64Array.from(original);
    for (let attempt = 0; ; attempt++) {
      const before = norm(x);
      for (let pass = 0; pass < 2; pass++) for (const q of out) axpy(x, -dot(q, x), q);
      const after = norm(x);
      if (after > 1e-10 * before && after > 0) {
        out.push(x.map((value) => value / after));
        break;
      }
      if (attempt > 20) throw new FleetError('MALFORMED', 'PCA could not orthonormalize a basis');
      x = randomVector(x.length, random);
    }
  }
  return out;
}

/**
 * Eigenvalues and eigenvectors (column e of `vectors`, row-major b × b) of a
 * small symmetric matrix, by cyclic Jacobi rotations.
 */
function symmetricEigen(
  matrix: Float64Array,
  b: number,
): { values: number[]; vectors: Float64Array } {
  const a = Float64Array.from(matrix);
  const vectors = new Float64Array(b * b);
  for (let i = 0; i < b; i++) vectors[i * b + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    let total = 0;
    for (let i = 0; i < b; i++) {
      for (let j = 0; j < b; j++) {
        total += a[i * b + j]! ** 2;
        if (i !== j) off += a[i * b + j]! ** 2;
      }
    }
    if (off <= 1e-30 * total || off === 0) break;
    for (let p = 0; p < b - 1; p++) for (let q = p + 1; q < b; q++) rotate(a, vectors, b, p, q);
  }
  return { values: Array.from({ length: b }, (_, i) => a[i * b + i]!), vectors };
}

/** One Jacobi rotation zeroing a[p][q] (Golub and Van Loan, Algorithm 8.5.1). */
function rotate(a: Float64Array, v: Float64Array, b: number, p: number, q: number): void {
  const apq = a[p * b + q]!;
  if (apq === 0) return;
  const tau = (a[q * b + q]! - a[p * b + p]!) / (2 * apq);
  const t = Math.sign(tau || 1) / (Math.abs(tau) + Math.sqrt(1 + tau * tau));
  const c = 1 / Math.sqrt(1 + t * t);
  const s = t * c;
  for (let k = 0; k < b; k++) {
    const akp = a[k * b + p]!;
    const akq = a[k * b + q]!;
    a[k * b + p] = c * akp - s * akq;
    a[k * b + q] = s * akp + c * akq;
  }
  for (let k = 0; k < b; k++) {
    const apk = a[p * b + k]!;
    const aqk = a[q * b + k]!;
    a[p * b + k] = c * apk - s * aqk;
    a[q * b + k] = s * apk + c * aqk;
  }
  for (let k = 0; k < b; k++) {
    const vkp = v[k * b + p]!;
    const vkq = v[k * b + q]!;
    v[k * b + p] = c * vkp - s * vkq;
    v[k * b + q] = s * vkp + c * vkq;
  }
}

/** Flips `y` so that its largest-magnitude entry (the first, on a tie) is positive. */
function fixSign(y: Float64Array): Float64Array {
  let largest = 0;
  for (let j = 1; j < y.length; j++) if (Math.abs(y[j]!) > Math.abs(y[largest]!)) largest = j;
  return y[largest]! < 0 ? y.map((value) => -value) : y;
}

function randomVector(d: number, random: RandomSource): Float64Array {
  return Float64Array.from({ length: d }, () => random() - 0.5);
}

function dot(a: Float64Array, b: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}

function norm(a: Float64Array): number {
  return Math.sqrt(dot(a, a));
}

/** y += alpha x */
function axpy(y: Float64Array, alpha: number, x: Float64Array): void {
  for (let i = 0; i < y.length; i++) y[i]! += alpha * x[i]!;
}
