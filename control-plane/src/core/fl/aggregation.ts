/**
 * Aggregation strategies (Flower's `Strategy.aggregate_fit`, the maths only):
 *
 *   fedavg        sum_k (n_k / n) * w_k, weighted by each update's sampleCount
 *                 (McMahan et al. 2017, Algorithm 1). A zero total weight is
 *                 refused. FedProx aggregates the same way (its term is on the client).
 *   trimmed-mean  per coordinate: drop floor(beta * m) values from each end,
 *                 average the rest, unweighted (Yin et al. 2018).
 *   median        per coordinate median, the mean of the two middle values for
 *                 an even count (Yin et al. 2018).
 *
 * All of them check that every update has the same tensors (tensor-layout.ts)
 * and refuse a non-finite aggregate. The robust two live in
 * robust-strategies.ts; `createStrategy` builds any of them from a config.
 */
import { controlPlaneError } from '../errors.ts';
import { coordinateMedian, trimmedMean } from './robust-strategies.ts';
import { commonLayout, refuseNonFinite } from './tensor-layout.ts';
import type {
  AggregateResult,
  ClientUpdate,
  NamedTensor,
  Strategy,
  StrategyConfig,
} from './types.ts';

export { coordinateMedian, trimmedMean } from './robust-strategies.ts';

function sampleWeights(updates: readonly ClientUpdate[]): number[] {
  let total = 0;
  for (const [i, u] of updates.entries()) {
    if (!Number.isFinite(u.sampleCount) || u.sampleCount < 0) {
      throw controlPlaneError(
        'INVALID_REQUEST',
        `fedavg: update ${i} (device ${u.deviceId}) has sampleCount ${u.sampleCount}, not a count`,
      );
    }
    total += u.sampleCount;
  }
  if (!(total > 0)) {
    throw controlPlaneError(
      'INVALID_REQUEST',
      `fedavg: the ${updates.length} update(s) weigh 0 samples in all; nothing to weight by`,
    );
  }
  return updates.map((u) => u.sampleCount / total);
}

/**
 * FedAvg: the sample-weighted mean of the updates, coordinate by coordinate.
 * Accumulates in float64 (one pass over each update's contiguous values),
 * rounds to float32 once.
 *
 * @example
 *   fedAvg().aggregate([
 *     { deviceId: 'a', sampleCount: 1, tensors: [{ name: 'b', dims: [1], values: Float32Array.of(0) }] },
 *     { deviceId: 'b', sampleCount: 3, tensors: [{ name: 'b', dims: [1], values: Float32Array.of(4) }] },
 *   ]).tensors[0].values // Float32Array [3]
 */
export function fedAvg(): Strategy {
  const config: StrategyConfig = { kind: 'fedavg' };
  return {
    name: 'fedavg',
    config,
    aggregate(updates: readonly ClientUpdate[]): AggregateResult {
      const layout = commonLayout(updates);
      const weights = sampleWeights(updates);
      const tensors: NamedTensor[] = layout.map((shape, t) => {
        const sum = new Float64Array(shape.size);
        for (const [u, update] of updates.entries()) {
          const w = weights[u]!;
          if (w === 0) continue;
          const values = update.tensors[t]!.values;
          for (let i = 0; i < sum.length; i++) sum[i]! += w * values[i]!;
        }
        return { name: shape.name, dims: shape.dims, values: Float32Array.from(sum) };
      });
      refuseNonFinite('fedavg', tensors);
      const total = updates.reduce((s, u) => s + u.sampleCount, 0);
      return {
        tensors,
        weightsUsed: weights,
        notes: [
          `fedavg over ${updates.length} update(s), ${total} samples, weighted by sampleCount`,
        ],
      };
    },
  };
}

/**
 * A strategy from its stored config. Throws INVALID_REQUEST for an unknown
 * kind or a trimmed-mean beta outside [0, 0.5).
 *
 * @example
 *   createStrategy({ kind: 'trimmed-mean', beta: 0.2 }).aggregate(updates)
 */
export function createStrategy(config: StrategyConfig): Strategy {
  switch (config.kind) {
    case 'fedavg':
      return fedAvg();
    case 'trimmed-mean':
      return trimmedMean({ beta: config.beta });
    case 'median':
      return coordinateMedian();
    default:
      throw controlPlaneError(
        'INVALID_REQUEST',
        `strategy.kind: '${String((config as { kind: unknown }).kind)}' is not fedavg, trimmed-mean or median`,
      );
  }
}
