/**
 * The exact distribution of raw samples as a `QuantileView`: the ground truth
 * that sketch-based drift distances are checked against in tests and the
 * benchmark, and a usable view when a signal has few enough samples to keep.
 * Ranks are inclusive, as in the KLL sketch: cdf(x) is the fraction of
 * samples <= x, and quantile(r) the smallest sample whose cdf is >= r.
 *
 * @example
 *   const d = createSampleDistribution([3, 1, 2, 2]);
 *   d.cdf([1, 2]); // [0.25, 0.75, 1]
 *   d.quantile(0.5); // 2
 */
import { FleetError } from '../errors.ts';
import { assertSplitPoints, type QuantileView } from './distances.ts';

/** A QuantileView that also exposes its samples, sorted ascending. */
export interface SampleDistribution extends QuantileView {
  readonly sorted: Float64Array;
}

/**
 * The exact view of `samples` (copied and sorted). Samples must be finite
 * numbers; no samples gives an empty view (n = 0, min and max NaN) whose
 * `cdf` and `quantile` throw, as the drift distances refuse it anyway.
 */
export function createSampleDistribution(samples: Iterable<number>): SampleDistribution {
  const sorted = Float64Array.from(samples);
  sorted.forEach((value, i) => {
    if (!Number.isFinite(value)) {
      throw new FleetError('MALFORMED', `sample ${i} is ${value}: samples are finite numbers`);
    }
  });
  sorted.sort();
  const n = sorted.length;

  function checkNotEmpty(): void {
    if (n === 0) throw new FleetError('MALFORMED', 'the sample distribution is empty');
  }

  /** How many samples are <= x (binary search for the first sample above x). */
  function countAtMost(x: number): number {
    let low = 0;
    let high = n;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (sorted[mid]! <= x) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  function cdf(splitPoints: readonly number[]): number[] {
    checkNotEmpty();
    assertSplitPoints(splitPoints);
    return [...splitPoints.map((s) => countAtMost(s) / n), 1];
  }

  function quantile(rank: number): number {
    checkNotEmpty();
    if (!(rank >= 0 && rank <= 1)) {
      throw new FleetError('MALFORMED', `rank ${rank} is outside [0, 1]`);
    }
    // The ceil(rank·n)-th smallest; the 1e-9 absorbs float error, e.g. 0.3·10 = 3.0000000000000004.
    const index = Math.max(0, Math.ceil(rank * n - 1e-9) - 1);
    return sorted[index]!;
  }

  return {
    n,
    min: n > 0 ? sorted[0]! : NaN,
    max: n > 0 ? sorted[n - 1]! : NaN,
    sorted,
    cdf,
    quantile,
  };
}
