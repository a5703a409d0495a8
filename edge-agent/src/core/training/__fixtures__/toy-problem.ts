/**
 * Small seeded training problems for the trainer's tests: a separable toy
 * (three Gaussian-ish blobs in 4 dimensions) for a 4-8-3 net, and random
 * dense weights for any architecture (Glorot-uniform ranges, seeded).
 */
import { xorshift32 } from '../random.ts';
import type { DenseArchitecture, NamedTensor, TrainRequest, TrainSamples } from '../types.ts';

export const TOY_ARCHITECTURE: DenseArchitecture = {
  inputSize: 4,
  layers: [
    { units: 8, activation: 'relu' },
    { units: 3, activation: 'linear' },
  ],
  softmaxOutput: true,
};

/** Uniform in [0, 1) from a seeded generator. */
export function uniform(seed: number): () => number {
  const next = xorshift32(seed);
  return () => next() / 2 ** 32;
}

/** Three classes around well-separated centres, `count` rows, labels 0,1,2 in turn. */
export function toySamples(count: number, seed = 7): TrainSamples {
  const u = uniform(seed);
  const centres = [
    [2, 0, 0, 1],
    [0, 2, 1, 0],
    [-2, -1, 0, -1],
  ];
  const features = new Float32Array(count * 4);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    labels[i] = i % 3;
    for (let f = 0; f < 4; f++) features[i * 4 + f] = centres[i % 3]![f]! + (u() - 0.5) * 1.5;
  }
  return { features, labels, count, featureCount: 4 };
}

/** Seeded random weights for `architecture`, Glorot-uniform kernels and small biases. */
export function randomWeights(architecture: DenseArchitecture, seed = 3): NamedTensor[] {
  const u = uniform(seed);
  let inputs = architecture.inputSize;
  return architecture.layers.flatMap((layer, i) => {
    const limit = Math.sqrt(6 / (inputs + layer.units));
    const kernel = Float32Array.from({ length: inputs * layer.units }, () => (u() * 2 - 1) * limit);
    const bias = Float32Array.from({ length: layer.units }, () => (u() * 2 - 1) * 0.1);
    const out = [
      { name: `dense_${i}/kernel`, dims: [inputs, layer.units], values: kernel },
      { name: `dense_${i}/bias`, dims: [layer.units], values: bias },
    ];
    inputs = layer.units;
    return out;
  });
}

/** A valid request on the toy problem; override any field. */
export function toyRequest(overrides: Partial<TrainRequest> = {}): TrainRequest {
  return {
    architecture: TOY_ARCHITECTURE,
    weights: randomWeights(TOY_ARCHITECTURE),
    samples: toySamples(60),
    epochs: 5,
    batchSize: 10,
    learningRate: 0.1,
    proxMu: 0,
    seed: 42,
    ...overrides,
  };
}

/** Random MNIST-shaped data (784 features in [0, 1), 10 classes) for the 2NN. */
export function mnistShapedSamples(count: number, seed = 11): TrainSamples {
  const u = uniform(seed);
  const features = Float32Array.from({ length: count * 784 }, () => u());
  const labels = Int32Array.from({ length: count }, (_, i) => i % 10);
  return { features, labels, count, featureCount: 784 };
}

export const MNIST_2NN: DenseArchitecture = {
  inputSize: 784,
  layers: [
    { units: 200, activation: 'relu' },
    { units: 200, activation: 'relu' },
    { units: 10, activation: 'linear' },
  ],
  softmaxOutput: true,
};
