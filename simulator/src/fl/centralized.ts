/**
 * The centralized baseline of the FL bench: the same dense model from the
 * same start, trained with the same minibatch SGD (the edge agent's trainer,
 * one epoch per call over all the pooled training digits) and scored on the
 * test set after every epoch, until the test accuracy has not improved for
 * `patience` epochs or `maxEpochs` ran. Its best test accuracy is the ceiling
 * the federated runs are measured against.
 */
import {
  evaluateDense,
  type DenseArchitecture,
  type NamedTensor,
  type Trainer,
  type TrainSamples,
} from '@fleet/edge-agent';
import { cloneTensors } from './mnist-2nn.ts';

export interface CentralizedOptions {
  architecture: DenseArchitecture;
  initialWeights: readonly NamedTensor[];
  train: TrainSamples;
  test: TrainSamples;
  trainer: Trainer;
  batchSize: number;
  learningRate: number;
  maxEpochs: number;
  /** Epochs without a new best test accuracy before stopping (default 3). */
  patience?: number;
  seed: number;
  onEpoch?: (epoch: CentralizedEpoch) => void;
  perfNowMs?: () => number;
}

export interface CentralizedEpoch {
  epoch: number;
  accuracy: number;
  loss: number;
  trainLoss: number;
  ms: number;
}

export interface CentralizedResult {
  epochs: CentralizedEpoch[];
  bestAccuracy: number;
  bestEpoch: number;
  /** The weights of the best epoch. */
  bestWeights: NamedTensor[];
  /** The weights after the last epoch run. */
  weights: NamedTensor[];
}

/**
 * Trains until the test accuracy stops improving; see the module comment.
 *
 * @example
 *   const { bestAccuracy } = await trainCentralized({ ..., batchSize: 10, learningRate: 0.1, maxEpochs: 30, seed: 1 });
 */
export async function trainCentralized(options: CentralizedOptions): Promise<CentralizedResult> {
  const now = options.perfNowMs ?? (() => performance.now());
  const patience = options.patience ?? 3;
  let weights = cloneTensors(options.initialWeights);
  let bestWeights = weights;
  let bestAccuracy = -1;
  let bestEpoch = 0;
  const epochs: CentralizedEpoch[] = [];
  for (let epoch = 1; epoch <= options.maxEpochs; epoch++) {
    const started = now();
    const result = await options.trainer.train({
      architecture: options.architecture,
      weights,
      samples: options.train,
      epochs: 1,
      batchSize: options.batchSize,
      learningRate: options.learningRate,
      proxMu: 0,
      seed: (options.seed + epoch) >>> 0,
    });
    weights = result.weights;
    const evaluation = await evaluateDense(options.architecture, weights, options.test);
    const record: CentralizedEpoch = {
      epoch,
      accuracy: evaluation.accuracy,
      loss: evaluation.loss,
      trainLoss: result.lossAfter,
      ms: now() - started,
    };
    epochs.push(record);
    options.onEpoch?.(record);
    if (evaluation.accuracy > bestAccuracy) {
      bestAccuracy = evaluation.accuracy;
      bestEpoch = epoch;
      bestWeights = weights;
    } else if (epoch - bestEpoch >= patience) {
      break;
    }
  }
  return { epochs, bestAccuracy, bestEpoch, bestWeights, weights };
}
