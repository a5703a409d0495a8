/**
 * The FedAvg paper's MNIST 2NN (McMahan et al. 2017: 784-200-200-10, ReLU,
 * softmax) as the federated simulation trains it: the architecture, its
 * seeded Glorot-uniform start weights (the same start for every method a
 * bench compares), and the reference digits turned into the trainer's
 * `TrainSamples` (all of them, or one device's partition).
 */
import type { DenseArchitecture, NamedTensor, TrainSamples } from '@fleet/edge-agent';
import { seededUniform } from './partitions.ts';

/** The paper's 2NN: two hidden layers of 200 ReLU units, 10 softmax outputs (199,210 parameters). */
export const MNIST_2NN: DenseArchitecture = {
  inputSize: 784,
  layers: [
    { units: 200, activation: 'relu' },
    { units: 200, activation: 'relu' },
    { units: 10, activation: 'linear' },
  ],
  softmaxOutput: true,
};

/** Labelled rows as `mnistSplit()` returns them (firmware-bundles' EvalData). */
export interface LabelledData {
  sampleCount: number;
  featureCount: number;
  features: Float32Array;
  labels: Uint8Array | null;
}

/**
 * Glorot-uniform kernels (U(-l, l), l = sqrt(6 / (fanIn + fanOut)), Keras's
 * default) and zero biases, named `dense_{i}/kernel` [inputs, units] and
 * `dense_{i}/bias` [units]; equal seeds give equal weights.
 *
 * @example
 *   const start = glorotUniformWeights(MNIST_2NN, 1);
 */
export function glorotUniformWeights(architecture: DenseArchitecture, seed: number): NamedTensor[] {
  const random = seededUniform(seed);
  const tensors: NamedTensor[] = [];
  let inputs = architecture.inputSize;
  architecture.layers.forEach((layer, i) => {
    const limit = Math.sqrt(6 / (inputs + layer.units));
    const kernel = new Float32Array(inputs * layer.units);
    for (let k = 0; k < kernel.length; k++) kernel[k] = (2 * random() - 1) * limit;
    tensors.push({ name: `dense_${i}/kernel`, dims: [inputs, layer.units], values: kernel });
    tensors.push({
      name: `dense_${i}/bias`,
      dims: [layer.units],
      values: new Float32Array(layer.units),
    });
    inputs = layer.units;
  });
  return tensors;
}

/**
 * The rows `indices` of `data` (all rows when omitted) as trainer samples.
 * Throws RangeError for unlabelled data or an index out of range.
 */
export function toTrainSamples(data: LabelledData, indices?: readonly number[]): TrainSamples {
  const labels = data.labels;
  if (!labels) throw new RangeError('federated training needs labelled data');
  const rows = indices ?? Array.from({ length: data.sampleCount }, (_, i) => i);
  const width = data.featureCount;
  const features = new Float32Array(rows.length * width);
  const out = new Int32Array(rows.length);
  rows.forEach((row, i) => {
    if (!Number.isInteger(row) || row < 0 || row >= data.sampleCount) {
      throw new RangeError(`sample index ${row} is outside 0..${data.sampleCount - 1}`);
    }
    features.set(data.features.subarray(row * width, (row + 1) * width), i * width);
    out[i] = labels[row]!;
  });
  return { features, labels: out, count: rows.length, featureCount: width };
}

/** A copy of `tensors` (new value arrays), so a run never shares a start with another. */
export function cloneTensors(tensors: readonly NamedTensor[]): NamedTensor[] {
  return tensors.map((t) => ({ name: t.name, dims: [...t.dims], values: t.values.slice() }));
}
