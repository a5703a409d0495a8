/**
 * A dense model in TensorFlow.js: the forward pass to logits, the mean
 * softmax cross-entropy on them, and evaluation (loss and accuracy) in row
 * chunks, so memory stays bounded on any number of samples. Used by the
 * trainer before and after training, and by `evaluateDense`.
 */
import type { Scalar, Tensor1D, Tensor2D } from '@tensorflow/tfjs';
import type { DensePlan } from '../../core/training/check-request.ts';
import type { DenseEvaluation, TrainSamples } from '../../core/training/types.ts';
import type { Tf } from './tf-backend.ts';

/** One layer's parameters as tensors (`[inputs, units]` and `[units]`). */
export interface DenseParams {
  kernel: Tensor2D;
  bias: Tensor1D;
}

/** Rows evaluated per forward pass. */
export const EVAL_CHUNK_ROWS = 1024;

/**
 * The last layer's output before any softmax (the logits). The last layer's
 * own activation applies (normally `linear`); the softmax does not, since the
 * loss is taken from the logits for numerical stability.
 */
export function denseLogits(tf: Tf, plan: DensePlan, params: DenseParams[], x: Tensor2D): Tensor2D {
  let h = x;
  plan.layers.forEach((layer, i) => {
    const p = params[i]!;
    h = tf.add(tf.matMul(h, p.kernel), p.bias);
    if (layer.activation === 'relu') h = tf.relu(h);
  });
  return h;
}

/** Mean over rows of -log softmax(logits)[label], with one-hot labels. */
export function meanCrossEntropy(tf: Tf, logits: Tensor2D, oneHot: Tensor2D): Scalar {
  return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), 1))) as Scalar;
}

/** Mean cross-entropy and top-1 accuracy (first maximum on a tie) over all samples. */
export function evaluateParams(
  tf: Tf,
  plan: DensePlan,
  params: DenseParams[],
  samples: TrainSamples,
): DenseEvaluation {
  const { count, featureCount } = samples;
  let lossSum = 0;
  let correct = 0;
  for (let start = 0; start < count; start += EVAL_CHUNK_ROWS) {
    const rows = Math.min(EVAL_CHUNK_ROWS, count - start);
    const labels = samples.labels.subarray(start, start + rows);
    const [losses, predicted] = tf.tidy(() => {
      const x = tf.tensor2d(
        samples.features.subarray(start * featureCount, (start + rows) * featureCount),
        [rows, featureCount],
      );
      const logits = denseLogits(tf, plan, params, x);
      const oneHot = tf.oneHot(tf.tensor1d(labels, 'int32'), plan.outputWidth);
      const rowLoss = tf.neg(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), 1));
      return [rowLoss.dataSync(), tf.argMax(logits, 1).dataSync()];
    });
    for (let i = 0; i < rows; i++) {
      lossSum += losses[i]!;
      if (predicted[i] === labels[i]) correct++;
    }
  }
  return { loss: lossSum / count, accuracy: correct / count };
}

/** The plan's weights as fresh tensors (the caller disposes them). */
export function paramsFromPlan(tf: Tf, plan: DensePlan): DenseParams[] {
  return plan.layers.map((l) => ({
    kernel: tf.tensor2d(l.kernel.values, [l.inputs, l.units]),
    bias: tf.tensor1d(l.bias.values),
  }));
}
