/**
 * The bundle factory as named steps: a float ONNX model and evaluation data in,
 * a signed bundle holding the int8 model, its golden vectors, a quantization
 * report and (when asked) a drift profile and the training weights of
 * federated learning out. Any failing step throws and nothing is produced;
 * the CLI writes the file only after the last step.
 *
 *   decode -> checkEvalData -> quantize -> trainingWeights -> evaluate
 *          -> enforceBudget -> goldenVectors -> driftProfile -> pack
 */
import { deflateSync } from 'fflate';
import { packBundle, type GoldenVectors, type ManifestInput, type Signer } from '@fleet/protocol';
import { factoryError } from '../errors.ts';
import type { EvalData } from '../data/eval-data.ts';
import type { ModelRunner } from '../evaluation/classifier-accuracy.ts';
import type { OnnxModel } from '../onnx/model.ts';
import { quantizeWeights, type QuantizationReport } from '../quantize/quantize-weights.ts';
import { evaluatePair, type PairEvaluation } from './evaluate-pair.ts';
import {
  buildDriftProfile,
  planDrift,
  type DriftPlan,
  type DriftPlanOptions,
} from './drift-profile.ts';
import {
  trainingPart,
  type TrainingBuildInput,
  type TrainingBuildReport,
} from './training-part.ts';

/** The drift step's input: the data the baselines describe, and how to monitor it. */
export interface DriftBuildInput extends DriftPlanOptions {
  /** Training or calibration inputs (labels unused); run through the int8 model. */
  data: EvalData;
  /** A plan made earlier by `planDrift` from the same data: skips fitting again. */
  plan?: DriftPlan;
  /** KLL k of the baselines (default 200). */
  baselineK?: number;
  /** Seed of the baselines' compactions (default 1): equal inputs, equal part. */
  seed?: number;
}

/** What the drift step added to the bundle. */
export interface DriftBuildReport {
  part: string;
  profileBytes: number;
  samples: number;
  signals: string[];
  /** Share of the input variance the PCA components explain; null without PCA. */
  explainedVariance: number | null;
}

/** What the core needs from outside: the ONNX codec and a runtime (adapters). */
export interface BuildPorts {
  decode(bytes: Uint8Array): OnnxModel;
  encode(model: OnnxModel): Uint8Array;
  createRunner(modelBytes: Uint8Array): Promise<ModelRunner & { close(): Promise<void> }>;
}

export interface BuildInput {
  floatModel: Uint8Array;
  evalData: EvalData;
  manifest: Omit<ManifestInput, 'io' | 'quantization'>;
  signers: readonly Signer[];
  /** Largest accepted accuracy loss, in percentage points (default 1.0). */
  maxAccuracyDropPoints?: number;
  /** How many evaluation samples become golden vectors (default 32). */
  goldenCount?: number;
  /** Add a drift profile part and the manifest's `drift` field (default: none). */
  drift?: DriftBuildInput;
  /**
   * Add the training part `weights.ftns` and the manifest's `training` field
   * (default: none): the architecture must be the model's dense graph.
   */
  training?: TrainingBuildInput;
  /** Progress of the long steps, one line each. */
  onProgress?: (line: string) => void;
}

export interface BuildResult {
  bundle: Uint8Array;
  evaluation: PairEvaluation;
  sizes: {
    floatBytes: number;
    floatCompressedBytes: number;
    int8Bytes: number;
    int8CompressedBytes: number;
  };
  quantization: QuantizationReport;
  drift: DriftBuildReport | null;
  training: TrainingBuildReport | null;
}

/** Absolute tolerance a device allows between its outputs and the golden ones. */
export const GOLDEN_TOLERANCE = 1e-4;

/** Runs the factory's steps (module comment) and returns the signed bundle with its figures. */
export async function buildBundle(input: BuildInput, ports: BuildPorts): Promise<BuildResult> {
  const float = ports.decode(input.floatModel); // decode: MODEL_MALFORMED
  checkEvalData(float, input.evalData);
  const quantized = quantizeWeights(float); // MODEL_UNSUPPORTED names the op
  // Refused here, before the costly evaluation: TRAINING_SPEC names the mismatch.
  const training = input.training ? trainingPart(float, quantized.model, input.training) : null;
  const int8Bytes = ports.encode(quantized.model);
  const floatRunner = await ports.createRunner(input.floatModel);
  const int8Runner = await ports.createRunner(int8Bytes);
  try {
    const evaluation = await evaluatePair(floatRunner, int8Runner, input.evalData);
    enforceBudget(evaluation, input.maxAccuracyDropPoints ?? 1.0);
    const golden = await goldenVectors(int8Runner, float, input.evalData, input.goldenCount ?? 32);
    const drift = input.drift ? await driftStep(float, int8Runner, input) : null;
    const sizes = {
      floatBytes: input.floatModel.length,
      floatCompressedBytes: deflateSync(input.floatModel).length,
      int8Bytes: int8Bytes.length,
      int8CompressedBytes: deflateSync(int8Bytes).length,
    };
    const bundle = await packBundle({
      manifest: {
        ...input.manifest,
        io: { inputs: float.inputs.map(tensorSpec), outputs: float.outputs.map(tensorSpec) },
        quantization: { ...quantized.report, ...sizes, evaluation },
        ...(drift ? { drift: drift.spec } : {}),
        ...(training ? { training: training.spec } : {}),
      },
      parts: [
        { name: 'model.onnx', bytes: int8Bytes, mediaType: 'application/onnx' },
        {
          name: 'golden.json',
          bytes: new TextEncoder().encode(JSON.stringify(golden)),
          mediaType: 'application/json',
        },
        ...(drift ? [drift.part] : []),
        ...(training ? [training.part] : []),
      ],
      signers: input.signers,
    });
    return {
      bundle,
      evaluation,
      sizes,
      quantization: quantized.report,
      drift: drift?.report ?? null,
      training: training?.report ?? null,
    };
  } finally {
    await Promise.all([floatRunner.close(), int8Runner.close()]);
  }
}

/**
 * The drift profile of the int8 model, the one devices run: its outputs on
 * the drift data are what the confidence and predicted-class baselines hold.
 */
async function driftStep(model: OnnxModel, int8: ModelRunner, input: BuildInput) {
  const options = input.drift!;
  checkEvalData(model, options.data);
  const onProgress = options.onProgress ?? input.onProgress;
  const plan = options.plan ?? planDrift(options.data, { ...options, onProgress });
  const profile = await buildDriftProfile(plan, options.data, int8, { ...options, onProgress });
  const explained = plan.pca
    ? plan.pca.eigenvalues.reduce((a, b) => a + b, 0) / (plan.pca.totalVariance || 1)
    : null;
  return {
    spec: plan.spec,
    part: {
      name: plan.spec.part,
      bytes: profile.bytes,
      mediaType: 'application/vnd.fleet.drift-profile',
    },
    report: {
      part: plan.spec.part,
      profileBytes: profile.bytes.length,
      samples: profile.samples,
      signals: plan.spec.signals.map((s) => s.name),
      explainedVariance: explained,
    },
  };
}

function checkEvalData(model: OnnxModel, data: EvalData): void {
  const shape = model.inputs[0]?.shape ?? [];
  const fixed = shape.slice(1);
  const expected = fixed.every((d) => typeof d === 'number')
    ? fixed.reduce((a, b) => a * b, 1)
    : null;
  if (shape.length < 2 || expected !== data.featureCount) {
    throw factoryError(
      'EVAL_DATA_MISMATCH',
      `the model's input ${model.inputs[0]?.name ?? '?'} has shape [${shape.join(', ')}], the evaluation data has ${data.featureCount} features per sample`,
    );
  }
}

function enforceBudget(evaluation: PairEvaluation, maxDropPoints: number): void {
  const { float, int8 } = evaluation;
  if (float.accuracy === null || int8.accuracy === null) return; // no labels: agreement is reported, not judged
  const dropPoints = (float.accuracy - int8.accuracy) * 100;
  if (dropPoints > maxDropPoints) {
    throw factoryError(
      'ACCURACY_BUDGET',
      `int8 accuracy ${(int8.accuracy * 100).toFixed(2)}% is ${dropPoints.toFixed(2)} points below float ${(float.accuracy * 100).toFixed(2)}%; the budget is ${maxDropPoints}`,
    );
  }
}

/** The golden.json part (protocol's GoldenVectors): `count` samples through the int8 model. */
async function goldenVectors(
  runner: ModelRunner,
  model: OnnxModel,
  data: EvalData,
  count: number,
): Promise<GoldenVectors> {
  const n = Math.min(count, data.sampleCount);
  const inputs = data.features.subarray(0, n * data.featureCount);
  const outputs = await runner.run(inputs, n);
  const width = outputs.length / n;
  return {
    input: model.inputs[0]!.name,
    output: model.outputs[0]!.name,
    tolerance: GOLDEN_TOLERANCE,
    cases: Array.from({ length: n }, (_, i) => ({
      input: Array.from(inputs.subarray(i * data.featureCount, (i + 1) * data.featureCount)),
      output: Array.from(outputs.subarray(i * width, (i + 1) * width)),
    })),
  };
}

function tensorSpec(v: OnnxModel['inputs'][number]) {
  return { name: v.name, dtype: v.dataType, shape: v.shape };
}
