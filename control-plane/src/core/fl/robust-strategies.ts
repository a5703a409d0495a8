/**
 * The coordinate-wise robust strategies (Yin et al. 2018, "Byzantine-Robust
 * Distributed Learning"): trimmed mean and median. Unweighted by design: a
 * sample count is the device's own claim, and letting it weigh would hand an
 * attacker the lever the trimming takes away.
 *
 * Speed (the bench: 1,000 updates of the 199,210-parameter 2NN): coordinates
 * go in blocks. For each block, every update's contiguous slice is copied
 * into one reused scratch buffer laid out coordinate-major (block x updates),
 * then each coordinate's row is reduced with an in-place quickselect. No
 * allocation per coordinate; reads stay sequential per update.
 */
import { controlPlaneError } from '../errors.ts';
import { minInRange, selectInPlace } from './quickselect.ts';
import { commonLayout, refuseNonFinite } from './tensor-layout.ts';
import type { AggregateResult, ClientUpdate, NamedTensor, Strategy } from './types.ts';

/** Coordinates per block: scratch is BLOCK * updates floats (1 MiB at 1,000 updates). */
const BLOCK = 256;

/** Reduces one coordinate's values, `row[lo..lo+m)`, which it may reorder. */
type RowReducer = (row: Float32Array, lo: number, m: number) => number;

function coordinateWise(
  strategy: string,
  updates: readonly ClientUpdate[],
  reduce: RowReducer,
): NamedTensor[] {
  const layout = commonLayout(updates);
  const m = updates.length;
  const scratch = new Float32Array(BLOCK * m);
  const tensors = layout.map((shape, t) => {
    const out = new Float32Array(shape.size);
    const sources = updates.map((u) => u.tensors[t]!.values);
    for (let start = 0; start < shape.size; start += BLOCK) {
      const width = Math.min(BLOCK, shape.size - start);
      for (let u = 0; u < m; u++) {
        const src = sources[u]!;
        let check = 0;
        for (let j = 0; j < width; j++) {
          const v = src[start + j]!;
          check += v - v; // 0 for finite values, NaN as soon as one is NaN or Inf
          scratch[j * m + u] = v;
        }
        // NaN or Inf would break the ordering the selection relies on.
        if (check !== 0)
          refuseNonFiniteSlice(strategy, updates[u]!, u, shape.name, src, start, width);
      }
      for (let j = 0; j < width; j++) out[start + j] = reduce(scratch, j * m, m);
    }
    return { name: shape.name, dims: shape.dims, values: out };
  });
  refuseNonFinite(strategy, tensors);
  return tensors;
}

function refuseNonFiniteSlice(
  strategy: string,
  update: ClientUpdate,
  index: number,
  tensor: string,
  values: Float32Array,
  start: number,
  width: number,
): never {
  let at = start;
  while (at < start + width - 1 && Number.isFinite(values[at]!)) at++;
  throw controlPlaneError(
    'INVALID_REQUEST',
    `${strategy}: update ${index} (device ${update.deviceId}) has a non-finite value in '${tensor}' at ${at}`,
  );
}

/**
 * Coordinate-wise trimmed mean: with m updates and k = floor(beta * m), each
 * coordinate drops its k smallest and k largest values and averages the
 * other m - 2k. beta must be in [0, 0.5); aggregating refuses (INVALID_REQUEST)
 * when m - 2k < 1, i.e. nothing would remain.
 *
 * @example
 *   trimmedMean({ beta: 0.2 }) // over 10 updates drops 2 from each end
 */
export function trimmedMean(options: { beta: number }): Strategy {
  const { beta } = options;
  if (!Number.isFinite(beta) || beta < 0 || beta >= 0.5) {
    throw controlPlaneError('INVALID_REQUEST', `strategy.beta: ${beta} is not in [0, 0.5)`);
  }
  return {
    name: 'trimmed-mean',
    config: { kind: 'trimmed-mean', beta },
    aggregate(updates: readonly ClientUpdate[]): AggregateResult {
      const m = updates.length;
      // Float slack: 0.29 * 100 is 28.999999999999996 and must trim 29.
      const k = Math.floor(beta * m + 1e-9);
      if (m - 2 * k < 1) {
        throw controlPlaneError(
          'INVALID_REQUEST',
          `trimmed-mean: beta ${beta} trims ${k} from each end of ${m} update(s), leaving nothing`,
        );
      }
      const kept = m - 2 * k;
      const reduce: RowReducer = (row, lo, n) => {
        const hi = lo + n - 1;
        if (k > 0) {
          selectInPlace(row, lo, hi, lo + k); // row[lo..lo+k) are the k smallest
          selectInPlace(row, lo + k, hi, hi - k); // row(hi-k..hi] are the k largest
        }
        let sum = 0;
        for (let i = lo + k; i <= hi - k; i++) sum += row[i]!;
        return sum / kept;
      };
      const tensors = coordinateWise('trimmed-mean', updates, reduce);
      return {
        tensors,
        weightsUsed: null,
        notes: [
          `trimmed-mean over ${m} update(s): per coordinate ${k} dropped from each end (beta ${beta}), mean of ${kept}, unweighted`,
        ],
      };
    },
  };
}

/**
 * Coordinate-wise median; for an even number of updates, the mean of the two
 * middle values. Unweighted.
 */
export function coordinateMedian(): Strategy {
  return {
    name: 'median',
    config: { kind: 'median' },
    aggregate(updates: readonly ClientUpdate[]): AggregateResult {
      const reduce: RowReducer = (row, lo, n) => {
        const hi = lo + n - 1;
        const upper = lo + (n >> 1);
        if (n % 2 === 1) return selectInPlace(row, lo, hi, upper);
        const below = selectInPlace(row, lo, hi, upper - 1);
        // After selection everything right of upper - 1 is >= it: the next order statistic is their minimum.
        return (below + minInRange(row, upper, hi)) / 2;
      };
      const tensors = coordinateWise('median', updates, reduce);
      return {
        tensors,
        weightsUsed: null,
        notes: [`median over ${updates.length} update(s), per coordinate, unweighted`],
      };
    },
  };
}
