/**
 * Trains the reference model: the MNIST 2NN of the FedAvg paper (McMahan et
 * al., 2017), 784-200-200-10 with ReLU and a softmax output, on the fixed
 * 8,000-digit training split, with TensorFlow.js. Seeded initializers, a
 * seeded shuffle and seeded augmentation make runs repeatable on one backend.
 * Returns the weights as a `DenseArchitecture`, ready for the ONNX builder.
 */
import type { Scalar } from '@tensorflow/tfjs';
import type { EvalData } from '../../core/data/eval-data.ts';
import type { DenseArchitecture } from '../../core/onnx/dense-builder.ts';
import { shiftImages } from '../../core/training/augment.ts';
import { shuffleInPlace, xorshift32 } from '../../core/random.ts';
import { loadTf } from './tf-backend.ts';

export const REFERENCE_HYPERPARAMETERS = {
  architecture: '784-200-200-10, relu, softmax',
  epochs: 15,
  batchSize: 64,
  optimizer: 'adam',
  learningRate: 1e-3,
  /** Adam restarts at this rate for the final epochs, to settle. */
  finalLearningRate: 2e-4,
  finalEpochs: 3,
  /** Random whole-pixel shifts of up to this many pixels, from the second epoch on. */
  augmentShiftPixels: 2,
  seed: 1,
} as const;

export interface EpochReport {
  epoch: number;
  epochs: number;
  loss: number;
  /** Accuracy of the TensorFlow.js model on the test split after this epoch. */
  testAccuracy: number;
}

export interface TrainOptions {
  train: EvalData;
  test: EvalData;
  epochs?: number;
  onEpoch?: (report: EpochReport) => void;
}

export interface TrainedReference {
  architecture: DenseArchitecture;
  backend: string;
  hyperparameters: Record<string, string | number>;
}

export async function trainReferenceModel(options: TrainOptions): Promise<TrainedReference> {
  const { tf, backend } = await loadTf();
  const hp = {
    ...REFERENCE_HYPERPARAMETERS,
    epochs: options.epochs ?? REFERENCE_HYPERPARAMETERS.epochs,
  };
  const { train, test } = options;
  const classes = train.classCount;
  const init = (n: number) => tf.initializers.glorotUniform({ seed: hp.seed * 100 + n });
  const model = tf.sequential({
    layers: [
      tf.layers.dense({
        inputShape: [train.featureCount],
        units: 200,
        activation: 'relu',
        kernelInitializer: init(1),
      }),
      tf.layers.dense({ units: 200, activation: 'relu', kernelInitializer: init(2) }),
      tf.layers.dense({ units: classes, activation: 'softmax', kernelInitializer: init(3) }),
    ],
  });
  const compile = (rate: number) =>
    model.compile({
      optimizer: tf.train.adam(rate),
      loss: 'categoricalCrossentropy',
      metrics: ['accuracy'],
    });
  compile(hp.learningRate);
  const next = xorshift32(hp.seed);
  const side = Math.round(Math.sqrt(train.featureCount));
  const testX = tf.tensor2d(test.features, [test.sampleCount, test.featureCount]);
  const testY = tf.oneHot(tf.tensor1d(test.labels!, 'int32'), classes);
  for (let epoch = 1; epoch <= hp.epochs; epoch++) {
    if (epoch === hp.epochs - hp.finalEpochs + 1) compile(hp.finalLearningRate);
    const order = shuffleInPlace(
      Array.from({ length: train.sampleCount }, (_, i) => i),
      next,
    );
    const rows = new Float32Array(train.features.length);
    const labels = new Int32Array(train.sampleCount);
    order.forEach((src, dst) => {
      rows.set(
        train.features.subarray(src * train.featureCount, (src + 1) * train.featureCount),
        dst * train.featureCount,
      );
      labels[dst] = train.labels![src]!;
    });
    const features = epoch === 1 ? rows : shiftImages(rows, side, hp.augmentShiftPixels, next);
    const xs = tf.tensor2d(features, [train.sampleCount, train.featureCount]);
    const ys = tf.oneHot(tf.tensor1d(labels, 'int32'), classes);
    const history = await model.fit(xs, ys, {
      epochs: 1,
      batchSize: hp.batchSize,
      shuffle: false,
      verbose: 0,
    });
    tf.dispose([xs, ys]);
    const [, accuracy] = model.evaluate(testX, testY, { batchSize: 500 }) as Scalar[];
    options.onEpoch?.({
      epoch,
      epochs: hp.epochs,
      loss: Number(history.history['loss']![0]),
      testAccuracy: (await accuracy!.data())[0]!,
    });
  }
  tf.dispose([testX, testY]);
  const architecture: DenseArchitecture = {
    inputSize: train.featureCount,
    softmaxOutput: true,
    graphName: 'mnist-2nn',
    layers: await Promise.all(
      model.layers.map(async (layer, i) => {
        const [kernel, bias] = layer.getWeights();
        return {
          units: bias!.shape[0],
          activation: i < model.layers.length - 1 ? ('relu' as const) : ('linear' as const),
          weights: new Float32Array(await kernel!.data()),
          bias: new Float32Array(await bias!.data()),
        };
      }),
    ),
  };
  model.dispose();
  return { architecture, backend, hyperparameters: { ...hp } };
}
