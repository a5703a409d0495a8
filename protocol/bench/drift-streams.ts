/**
 * Seeded value streams for the drift bench's sketch figures, and the ground
 * truth they are checked against: the exact two-sample Kolmogorov-Smirnov
 * statistic of two raw streams, and the dense grid of split points on which
 * every sketch's CDF is read (drift-sketch-figures.ts).
 *
 * Distributions (each with its standard deviation, the unit of a shift):
 * - `normal`: N(0, 1), the shape of a PCA projection;
 * - `lognormal`: exp(N(0, 1)), a long right tail (a reconstruction error);
 * - `confidence`: 1 - 0.02 x Exp(1), piled up just under 1 like a softmax
 *   confidence. Shifted downwards (lower confidence), so it stays <= 1.
 */
import { createSeededRandom, type RandomSource } from '../src/index.ts';

export type DistributionName = 'normal' | 'lognormal' | 'confidence';

export interface Distribution {
  name: DistributionName;
  /** Standard deviation: a shift of d moves the stream by d x sigma. */
  sigma: number;
  /** +1 or -1: the direction a shift moves the stream. */
  direction: number;
  draw(random: RandomSource, gaussian: () => number): number;
}

export const DISTRIBUTIONS: Readonly<Record<DistributionName, Distribution>> = {
  normal: { name: 'normal', sigma: 1, direction: 1, draw: (_r, g) => g() },
  lognormal: {
    name: 'lognormal',
    sigma: Math.sqrt((Math.E - 1) * Math.E),
    direction: 1,
    draw: (_r, g) => Math.exp(g()),
  },
  confidence: {
    name: 'confidence',
    sigma: 0.02,
    direction: -1,
    draw: (r) => 1 + 0.02 * Math.log(1 - r()),
  },
};

/** Standard normal draws from a uniform source (Box-Muller, the second of each pair kept). */
export function gaussianFrom(random: RandomSource): () => number {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const value = spare;
      spare = null;
      return value;
    }
    const u = Math.max(random(), Number.MIN_VALUE);
    const angle = 2 * Math.PI * random();
    const radius = Math.sqrt(-2 * Math.log(u));
    spare = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  };
}

/** `n` values of `distribution` moved by `shift` standard deviations, from `seed`. */
export function makeStream(
  distribution: Distribution,
  n: number,
  shift: number,
  seed: number,
): Float64Array {
  const random = createSeededRandom(seed);
  const gaussian = gaussianFrom(random);
  const offset = shift * distribution.sigma * distribution.direction;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = distribution.draw(random, gaussian) + offset;
  return out;
}

/** A sorted copy. */
export function sortedCopy(values: Float64Array): Float64Array {
  return Float64Array.from(values).sort();
}

/**
 * The exact two-sample KS statistic sup_x |F_a(x) - F_b(x)| of two sorted
 * samples: both empirical CDFs are stepped past every distinct value in turn.
 */
export function exactKs(a: Float64Array, b: Float64Array): number {
  let i = 0;
  let j = 0;
  let gap = 0;
  while (i < a.length || j < b.length) {
    const x = j >= b.length || (i < a.length && a[i]! <= b[j]!) ? a[i]! : b[j]!;
    while (i < a.length && a[i]! <= x) i++;
    while (j < b.length && b[j]! <= x) j++;
    gap = Math.max(gap, Math.abs(i / a.length - j / b.length));
  }
  return gap;
}

/**
 * Split points at which every sketch's CDF is read: both samples' min, max
 * and quantiles at ranks j/grid, sorted and distinct. Between neighbours
 * neither exact CDF rises by more than 1/grid, so the largest CDF gap on
 * these points is within 2/grid of the exact statistic.
 */
export function denseGrid(a: Float64Array, b: Float64Array, grid: number): number[] {
  const points: number[] = [];
  for (const sorted of [a, b]) {
    for (let j = 0; j <= grid; j++) {
      points.push(sorted[Math.max(0, Math.ceil((j / grid) * sorted.length) - 1)]!);
    }
  }
  points.sort((x, y) => x - y);
  return points.filter((x, i) => i === 0 || x !== points[i - 1]);
}

/** The largest gap between two CDFs read on the same points. */
export function maxGap(fa: readonly number[], fb: readonly number[]): number {
  let gap = 0;
  for (let i = 0; i < fa.length; i++) gap = Math.max(gap, Math.abs(fa[i]! - fb[i]!));
  return gap;
}
