/**
 * Accuracy of a classifier on labelled evaluation data, through whatever runs
 * the model (onnxruntime in practice): the figure reported is the one of the
 * exact model bytes that ship.
 */
import { factoryError } from '../errors.ts';
import type { EvalData } from '../data/eval-data.ts';

/** Runs rows of float32 features and returns one row of scores per input. */
export interface ModelRunner {
  run(features: Float32Array, batchSize: number): Promise<Float32Array>;
}

/** Index of the largest score in row `row` of a rows x `classes` score matrix. */
export function argmaxRow(scores: Float32Array, row: number, classes: number): number {
  let best = 0;
  for (let c = 1; c < classes; c++) {
    if (scores[row * classes + c]! > scores[row * classes + best]!) best = c;
  }
  return best;
}

export async function classifierAccuracy(
  runner: ModelRunner,
  data: EvalData,
  batchSize = 256,
): Promise<number> {
  if (!data.labels) throw factoryError('EVAL_DATA_MALFORMED', 'accuracy needs labelled data');
  let correct = 0;
  for (let start = 0; start < data.sampleCount; start += batchSize) {
    const rows = Math.min(batchSize, data.sampleCount - start);
    const scores = await runner.run(
      data.features.subarray(start * data.featureCount, (start + rows) * data.featureCount),
      rows,
    );
    const classes = scores.length / rows;
    for (let r = 0; r < rows; r++) {
      if (argmaxRow(scores, r, classes) === data.labels[start + r]) correct++;
    }
  }
  return correct / data.sampleCount;
}
