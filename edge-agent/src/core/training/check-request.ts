/**
 * Checks a training request before any work starts, so a bad one is refused
 * with `TRAIN_REQUEST` naming what is wrong (and changes nothing): the
 * architecture, every weight tensor against it (names, dims, sizes, finite
 * values), the samples (shape, finite features, labels within the output
 * width, at least one) and the hyperparameters. Returns the weights resolved
 * per layer, which is what the trainer works from.
 */
import { agentError } from '../errors.ts';
import type { DenseArchitecture, NamedTensor, TrainRequest, TrainSamples } from './types.ts';

/** Local epochs above this are refused (a device trains for minutes, not days). */
export const MAX_EPOCHS = 1000;

export interface DenseLayerWeights {
  inputs: number;
  units: number;
  activation: 'relu' | 'linear';
  kernel: NamedTensor;
  bias: NamedTensor;
}

/** The request's weights, one entry per layer, in layer order. */
export interface DensePlan {
  layers: DenseLayerWeights[];
  /** Units of the last layer: the number of classes. */
  outputWidth: number;
}

const refuse = (message: string) => agentError('TRAIN_REQUEST', message);
const isCount = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 1;

/** Checks a whole request; throws `TRAIN_REQUEST` on the first problem. */
export function checkTrainRequest(request: TrainRequest): DensePlan {
  const plan = resolveDenseWeights(request.architecture, request.weights);
  checkSamples(request.architecture, plan.outputWidth, request.samples);
  const { epochs, batchSize, learningRate, proxMu, seed } = request;
  if (!isCount(epochs) || epochs > MAX_EPOCHS)
    throw refuse(`epochs must be an integer in [1, ${MAX_EPOCHS}], got ${String(epochs)}`);
  if (!isCount(batchSize))
    throw refuse(`batchSize must be a positive integer, got ${String(batchSize)}`);
  if (!(Number.isFinite(learningRate) && learningRate > 0))
    throw refuse(`learningRate must be a finite number > 0, got ${learningRate}`);
  if (!(Number.isFinite(proxMu) && proxMu >= 0))
    throw refuse(`proxMu must be a finite number >= 0, got ${proxMu}`);
  if (!Number.isSafeInteger(seed)) throw refuse(`seed must be an integer, got ${seed}`);
  return plan;
}

/** Checks the architecture and finds each layer's kernel and bias among `weights`. */
export function resolveDenseWeights(
  architecture: DenseArchitecture,
  weights: NamedTensor[],
): DensePlan {
  const { inputSize, layers } = architecture;
  if (!isCount(inputSize)) throw refuse(`architecture.inputSize must be a positive integer`);
  if (!Array.isArray(layers) || layers.length === 0)
    throw refuse('architecture.layers must list at least one layer');
  const byName = new Map<string, NamedTensor>();
  for (const t of weights) {
    if (byName.has(t.name)) throw refuse(`weight tensor ${t.name} appears twice`);
    byName.set(t.name, t);
  }
  let inputs = inputSize;
  const resolved = layers.map((layer, i): DenseLayerWeights => {
    if (!isCount(layer.units)) throw refuse(`layer ${i}: units must be a positive integer`);
    if (layer.activation !== 'relu' && layer.activation !== 'linear')
      throw refuse(
        `layer ${i}: activation must be relu or linear, got ${String(layer.activation)}`,
      );
    const kernel = tensorOf(byName, `dense_${i}/kernel`, [inputs, layer.units]);
    const bias = tensorOf(byName, `dense_${i}/bias`, [layer.units]);
    const entry = { inputs, units: layer.units, activation: layer.activation, kernel, bias };
    inputs = layer.units;
    return entry;
  });
  if (byName.size !== layers.length * 2) {
    const known = new Set(resolved.flatMap((l) => [l.kernel.name, l.bias.name]));
    const extra = [...byName.keys()].filter((n) => !known.has(n));
    throw refuse(`weight tensors not in the architecture: ${extra.join(', ')}`);
  }
  return { layers: resolved, outputWidth: inputs };
}

function tensorOf(byName: Map<string, NamedTensor>, name: string, dims: number[]): NamedTensor {
  const t = byName.get(name);
  if (!t) throw refuse(`weight tensor ${name} is missing`);
  if (t.dims.length !== dims.length || t.dims.some((d, k) => d !== dims[k]))
    throw refuse(
      `${name}: dims [${t.dims.join(',')}] but the architecture needs [${dims.join(',')}]`,
    );
  if (!(t.values instanceof Float32Array)) throw refuse(`${name}: values must be a Float32Array`);
  const size = dims.reduce((a, b) => a * b, 1);
  if (t.values.length !== size)
    throw refuse(`${name}: ${t.values.length} values for dims [${dims.join(',')}] (${size})`);
  const bad = firstNonFinite(t.values);
  if (bad >= 0) throw refuse(`${name}: value ${bad} is not finite (${t.values[bad]})`);
  return t;
}

/** Checks samples against the architecture and the number of classes. */
export function checkSamples(
  architecture: DenseArchitecture,
  outputWidth: number,
  samples: TrainSamples,
): void {
  const { features, labels, count, featureCount } = samples;
  if (!isCount(count))
    throw refuse(`samples.count must be a positive integer, got ${String(count)}`);
  if (featureCount !== architecture.inputSize)
    throw refuse(
      `samples have ${featureCount} features, the model takes ${architecture.inputSize}`,
    );
  if (!(features instanceof Float32Array) || features.length !== count * featureCount)
    throw refuse(
      `samples.features must be a Float32Array of count x featureCount = ${count * featureCount}`,
    );
  if (!(labels instanceof Int32Array) || labels.length !== count)
    throw refuse(`samples.labels must be an Int32Array of ${count} labels`);
  const bad = firstNonFinite(features);
  if (bad >= 0)
    throw refuse(
      `sample ${Math.floor(bad / featureCount)}, feature ${bad % featureCount} is not finite`,
    );
  for (let i = 0; i < count; i++) {
    const label = labels[i]!;
    if (label < 0 || label >= outputWidth)
      throw refuse(`sample ${i}: label ${label} outside [0, ${outputWidth})`);
  }
}

function firstNonFinite(values: Float32Array): number {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return i;
  return -1;
}
