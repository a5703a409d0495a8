/**
 * Plain input and output types of federated aggregation. `NamedTensor` is
 * protocol's (protocol/src/fl/tensor-set.ts): the shape decoding returns.
 */
import type { NamedTensor } from '@fleet/protocol';

export type { NamedTensor };

/** One device's decoded update (a weight delta), as the strategies take it. */
export interface ClientUpdate {
  deviceId: string;
  /** Local samples trained on: FedAvg's weight. */
  sampleCount: number;
  tensors: NamedTensor[];
}

/** What a round aggregates with, as stored in its config. */
export type StrategyConfig =
  { kind: 'fedavg' } | { kind: 'trimmed-mean'; beta: number } | { kind: 'median' };

export type StrategyKind = StrategyConfig['kind'];

/** The aggregate of one round, with how it was formed. */
export interface AggregateResult {
  /** Same names, dims and order as every input update. */
  tensors: NamedTensor[];
  /**
   * Each update's weight, in input order, when one weight applies to every
   * coordinate (FedAvg: sampleCount / total, summing to 1); null for the
   * coordinate-wise strategies, where who counts differs per coordinate.
   */
  weightsUsed: number[] | null;
  /** Human-readable facts for lineage and the audit log. */
  notes: string[];
}

/**
 * Flower's strategy shape, reduced to the part that is pure maths: turn the
 * round's accepted updates into one aggregate. Throws INVALID_REQUEST
 * (changing nothing) for inputs it cannot aggregate.
 */
export interface Strategy {
  readonly name: StrategyKind;
  readonly config: StrategyConfig;
  aggregate(updates: readonly ClientUpdate[]): AggregateResult;
}
