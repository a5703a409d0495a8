/**
 * `evaluateDense`: a dense model's mean softmax cross-entropy and accuracy on
 * labelled samples, on the thread's TensorFlow.js (what the trainer reports
 * before and after training; the simulator's bench scores global models
 * with it).
 */
import { checkSamples, resolveDenseWeights } from '../../core/training/check-request.ts';
import type {
  DenseArchitecture,
  DenseEvaluation,
  NamedTensor,
  TrainSamples,
} from '../../core/training/types.ts';
import { evaluateParams, paramsFromPlan } from './dense-model.ts';
import { loadTf } from './tf-backend.ts';

/**
 * Evaluates `weights` (named as in a `TrainRequest`) on `samples`; refuses a
 * mismatch with `TRAIN_REQUEST`.
 *
 * @example
 * const { loss, accuracy } = await evaluateDense(request.architecture, result.weights, testSamples);
 */
export async function evaluateDense(
  architecture: DenseArchitecture,
  weights: NamedTensor[],
  samples: TrainSamples,
): Promise<DenseEvaluation> {
  const plan = resolveDenseWeights(architecture, weights);
  checkSamples(architecture, plan.outputWidth, samples);
  const { tf } = await loadTf();
  const params = paramsFromPlan(tf, plan);
  try {
    return evaluateParams(tf, plan, params, samples);
  } finally {
    tf.dispose(params.flatMap((p) => [p.kernel, p.bias]));
  }
}
