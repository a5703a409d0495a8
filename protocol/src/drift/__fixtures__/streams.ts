/**
 * Seeded test streams for the drift sketches, and the exact ranks their
 * estimates are measured against.
 */
import { createSeededRandom, type RandomSource } from '../random.ts';
import type { KllSketch } from '../kll.ts';

export type StreamKind =
  'uniform' | 'normal' | 'ascending' | 'descending' | 'duplicates' | 'exponential';

export const STREAM_KINDS: readonly StreamKind[] = [
  'uniform',
  'normal',
  'ascending',
  'descending',
  'duplicates',
  'exponential',
];

/** A standard normal draw (Box-Muller). */
export function normal(random: RandomSource): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

/** `n` values of `kind`; every (kind, seed) pair is its own stream. */
export function stream(kind: StreamKind, n: number, seed: number): Float64Array {
  const random = createSeededRandom(seed * 7919 + STREAM_KINDS.indexOf(kind) * 104729 + n);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    switch (kind) {
      case 'uniform':
        out[i] = random();
        break;
      case 'normal':
        out[i] = 3 + 2 * normal(random);
        break;
      case 'ascending':
        out[i] = i + random() / 2;
        break;
      case 'descending':
        out[i] = n - i;
        break;
      case 'duplicates': // 12 values, very unevenly frequent
        out[i] = Math.floor(12 * random() ** 3);
        break;
      case 'exponential':
        out[i] = -Math.log(1 - random()) * 40;
        break;
    }
  }
  return out;
}

/** Fraction of `sorted` that is <= value (`below`: < value). */
export function exactRank(sorted: Float64Array, value: number, below = false): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (below ? sorted[mid]! < value : sorted[mid]! <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo / sorted.length;
}

export interface RankErrors {
  /** max |sketch.rank(v) - exact rank(v)| over v at 1001 evenly spaced exact quantiles. */
  rank: number;
  /**
   * max over r in {0, 0.001, ..., 1} of the distance from r to the exact
   * rank interval [fraction < q, fraction <= q] of q = sketch.quantile(r).
   */
  quantile: number;
}

export function measureRankErrors(
  sketch: KllSketch,
  data: Float64Array,
  points = 1000,
): RankErrors {
  const sorted = data.slice().sort();
  let rank = 0;
  let quantile = 0;
  for (let i = 0; i <= points; i++) {
    const r = i / points;
    const v = sorted[Math.min(sorted.length - 1, Math.floor(r * sorted.length))]!;
    rank = Math.max(rank, Math.abs(sketch.rank(v) - exactRank(sorted, v)));
    const q = sketch.quantile(r);
    const low = exactRank(sorted, q, true);
    const high = exactRank(sorted, q);
    quantile = Math.max(quantile, r < low ? low - r : r > high ? r - high : 0);
  }
  return { rank, quantile };
}

export function sketchOf(data: Float64Array, sketch: KllSketch): KllSketch {
  for (const x of data) sketch.update(x);
  return sketch;
}
