/**
 * Compares a float model and its quantized twin on the same evaluation data:
 * accuracy of each when labels are given, top-1 agreement and the largest
 * absolute output difference always, and onnxruntime latency (p50 for one
 * input, and per input in a batch of 64).
 */
import type { EvalData } from '../data/eval-data.ts';
import {
  argmaxRow,
  classifierAccuracy,
  type ModelRunner,
} from '../evaluation/classifier-accuracy.ts';

export interface ModelFigures {
  accuracy: number | null;
  p50LatencyMs: number;
  p50LatencyPerInputBatch64Ms: number;
}

export interface PairEvaluation {
  float: ModelFigures;
  int8: ModelFigures;
  top1Agreement: number;
  maxAbsOutputDiff: number;
  samples: number;
}

const LATENCY_RUNS = 50;

async function p50(runs: number, fn: () => Promise<unknown>): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

async function figures(runner: ModelRunner, data: EvalData): Promise<ModelFigures> {
  const one = data.features.subarray(0, data.featureCount);
  const batch = Math.min(64, data.sampleCount);
  const rows = data.features.subarray(0, batch * data.featureCount);
  return {
    accuracy: data.labels ? await classifierAccuracy(runner, data) : null,
    p50LatencyMs: await p50(LATENCY_RUNS, () => runner.run(one, 1)),
    p50LatencyPerInputBatch64Ms:
      (await p50(LATENCY_RUNS / 5, () => runner.run(rows, batch))) / batch,
  };
}

export async function evaluatePair(
  float: ModelRunner,
  int8: ModelRunner,
  data: EvalData,
): Promise<PairEvaluation> {
  const a = await float.run(data.features, data.sampleCount);
  const b = await int8.run(data.features, data.sampleCount);
  const classes = a.length / data.sampleCount;
  let agree = 0;
  let maxAbsOutputDiff = 0;
  for (let i = 0; i < a.length; i++)
    maxAbsOutputDiff = Math.max(maxAbsOutputDiff, Math.abs(a[i]! - b[i]!));
  for (let r = 0; r < data.sampleCount; r++) {
    if (argmaxRow(a, r, classes) === argmaxRow(b, r, classes)) agree++;
  }
  return {
    float: await figures(float, data),
    int8: await figures(int8, data),
    top1Agreement: agree / data.sampleCount,
    maxAbsOutputDiff,
    samples: data.sampleCount,
  };
}
