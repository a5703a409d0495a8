/**
 * Local training of a dense model: plain minibatch SGD as in the FedAvg paper
 * (McMahan et al., 2017), ClientUpdate: E epochs, each over the samples in a
 * fresh seeded order, split into batches of B (the last one smaller when B
 * does not divide the count; B >= count is one full-batch step per epoch,
 * FedSGD), w <- w - lr * grad. The loss is the mean softmax cross-entropy of
 * the batch on the logits, plus the FedProx term (mu/2)*||w - w_start||^2
 * when proxMu > 0 (Li et al., 2020). The one implementation behind both the
 * in-thread trainer and the pool's workers. Every tensor it makes is disposed
 * before it returns or throws.
 */
import type { Scalar, Tensor1D, Tensor2D, Variable } from '@tensorflow/tfjs';
import { agentError } from '../../core/errors.ts';
import { checkTrainRequest, type DensePlan } from '../../core/training/check-request.ts';
import { tensorDelta } from '../../core/training/delta.ts';
import { shuffleInPlace, xorshift32 } from '../../core/training/random.ts';
import type { NamedTensor, TrainRequest, TrainResult } from '../../core/training/types.ts';
import { denseLogits, evaluateParams, meanCrossEntropy, type DenseParams } from './dense-model.ts';
import type { Tf } from './tf-backend.ts';

/**
 * Trains synchronously on the thread's backend (the caller loads it). Throws
 * `TRAIN_REQUEST` for a bad request and `TRAIN_DIVERGED` when the trained
 * weights or loss are not finite.
 */
export function trainDenseSgd(tf: Tf, request: TrainRequest, nowMs: () => number): TrainResult {
  const plan = checkTrainRequest(request);
  const started = nowMs();
  const { samples } = request;
  // A variable shares its initial tensor's data: the tidy disposes the initial handles only.
  const params = tf.tidy(() =>
    plan.layers.map((l) => ({
      kernel: tf.variable(tf.tensor2d(l.kernel.values, [l.inputs, l.units])),
      bias: tf.variable(tf.tensor1d(l.bias.values)),
    })),
  );
  const anchors: DenseParams[] =
    request.proxMu > 0
      ? params.map((p) => ({ kernel: p.kernel.clone(), bias: p.bias.clone() }))
      : [];
  const xs = tf.tensor2d(samples.features, [samples.count, samples.featureCount]);
  const ys = tf.tidy(() => tf.oneHot(tf.tensor1d(samples.labels, 'int32'), plan.outputWidth));
  try {
    const before = evaluateParams(tf, plan, params, samples);
    runEpochs(tf, request, plan, params, anchors, xs, ys as Tensor2D);
    const after = evaluateParams(tf, plan, params, samples);
    const weights = readWeights(request.weights, plan, params);
    if (
      !Number.isFinite(after.loss) ||
      weights.some((t) => t.values.some((v) => !Number.isFinite(v)))
    )
      throw agentError(
        'TRAIN_DIVERGED',
        `training diverged (loss ${after.loss} after ${request.epochs} epochs at learning rate ${request.learningRate})`,
      );
    return {
      weights,
      delta: tensorDelta(weights, request.weights),
      sampleCount: samples.count,
      lossBefore: before.loss,
      lossAfter: after.loss,
      accuracyBefore: before.accuracy,
      accuracyAfter: after.accuracy,
      trainMs: nowMs() - started,
    };
  } finally {
    tf.dispose([xs, ys, ...params.flatMap((p) => [p.kernel, p.bias])]);
    tf.dispose(anchors.flatMap((p) => [p.kernel, p.bias]));
  }
}

function runEpochs(
  tf: Tf,
  request: TrainRequest,
  plan: DensePlan,
  params: { kernel: Variable & Tensor2D; bias: Variable & Tensor1D }[],
  anchors: DenseParams[],
  xs: Tensor2D,
  ys: Tensor2D,
): void {
  const { count } = request.samples;
  const variables = params.flatMap((p) => [p.kernel, p.bias]);
  const next = xorshift32(request.seed);
  const order = Int32Array.from({ length: count }, (_, i) => i);
  for (let epoch = 0; epoch < request.epochs; epoch++) {
    shuffleInPlace(order, next);
    for (let start = 0; start < count; start += request.batchSize) {
      const batch = order.subarray(start, Math.min(count, start + request.batchSize));
      tf.tidy(() => {
        const index = tf.tensor1d(batch, 'int32');
        const x = tf.gather(xs, index);
        const y = tf.gather(ys, index);
        const loss = (): Scalar => {
          const ce = meanCrossEntropy(tf, denseLogits(tf, plan, params, x), y);
          return request.proxMu > 0
            ? tf.add(ce, proximalTerm(tf, params, anchors, request.proxMu))
            : ce;
        };
        const { grads } = tf.variableGrads(loss, variables);
        for (const v of variables)
          v.assign(tf.sub(v, tf.mul(grads[v.name]!, request.learningRate)));
      });
    }
  }
}

/** (mu/2) * sum over all weight tensors of ||w - w_start||^2. */
function proximalTerm(tf: Tf, params: DenseParams[], anchors: DenseParams[], mu: number): Scalar {
  const squares = params.flatMap((p, i) => [
    tf.sum(tf.square(tf.sub(p.kernel, anchors[i]!.kernel))),
    tf.sum(tf.square(tf.sub(p.bias, anchors[i]!.bias))),
  ]);
  return tf.mul(tf.addN(squares), mu / 2);
}

/** The trained values under the request's names, in the request's order. */
function readWeights(start: NamedTensor[], plan: DensePlan, params: DenseParams[]): NamedTensor[] {
  const trained = new Map<string, Float32Array>();
  plan.layers.forEach((l, i) => {
    trained.set(l.kernel.name, params[i]!.kernel.dataSync() as Float32Array);
    trained.set(l.bias.name, params[i]!.bias.dataSync() as Float32Array);
  });
  return start.map((t) => ({ name: t.name, dims: [...t.dims], values: trained.get(t.name)! }));
}
