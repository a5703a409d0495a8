/**
 * The local trainer's vocabulary (issue 7, item 2): what a device trains (a
 * dense model's architecture and start weights), on what (its own labelled
 * samples), how (minibatch SGD as in the FedAvg paper, with an optional
 * FedProx term), and what comes back (trained weights, their delta from the
 * start, and before/after metrics). The core declares `Trainer`; TF.js
 * implements it in adapters/tfjs (in a worker pool, or in the calling thread).
 */

import type { NamedTensor } from '@fleet/protocol';

export type { NamedTensor };

export type DenseActivation = 'relu' | 'linear';

/** A dense model's shape, as the manifest's `training.architecture` (without `kind`). */
export interface DenseArchitecture {
  inputSize: number;
  layers: { units: number; activation: DenseActivation }[];
  /** The model ends with a softmax; training then takes its loss from the pre-softmax logits. */
  softmaxOutput: boolean;
}

/** Labelled samples, row-major: `features` is `count` rows of `featureCount` numbers. */
export interface TrainSamples {
  features: Float32Array;
  /** Class index per row, in [0, units of the last layer). */
  labels: Int32Array;
  count: number;
  featureCount: number;
}

export interface TrainRequest {
  architecture: DenseArchitecture;
  /** Start weights: exactly the `dense_{i}/kernel` and `dense_{i}/bias` of every layer. */
  weights: NamedTensor[];
  samples: TrainSamples;
  /** Local epochs E (passes over the samples). */
  epochs: number;
  /** Minibatch size B; B >= count is full-batch gradient descent (one step per epoch: FedSGD). */
  batchSize: number;
  learningRate: number;
  /** FedProx mu: adds (mu/2)*||w - w_start||^2 to the loss; 0 is plain FedAvg. */
  proxMu: number;
  /** Seeds the per-epoch shuffle: equal seeds give equal results on one backend. */
  seed: number;
}

/** Mean softmax cross-entropy (without the FedProx term) and top-1 accuracy. */
export interface DenseEvaluation {
  loss: number;
  accuracy: number;
}

export interface TrainResult {
  /** Trained weights, in the request's order and with its names and dims. */
  weights: NamedTensor[];
  /** Trained minus start, per tensor (float32 subtraction). */
  delta: NamedTensor[];
  sampleCount: number;
  lossBefore: number;
  lossAfter: number;
  accuracyBefore: number;
  accuracyAfter: number;
  /** Wall time of the training steps and both evaluations, excluding backend start-up. */
  trainMs: number;
}

/**
 * Trains a dense model on local samples. Refuses a bad request with
 * `TRAIN_REQUEST`, a run whose weights or loss become non-finite with
 * `TRAIN_DIVERGED`, and anything else that stops it (a crashed worker, a
 * closed pool) with `TRAIN_FAILED`. Never changes the request's arrays.
 */
export interface Trainer {
  train(request: TrainRequest): Promise<TrainResult>;
}
