/**
 * `fleet bundle build`'s training option: whether the bundle carries the
 * start weights of federated learning (part `weights.ftns`, manifest field
 * `training`), and how.
 *
 *   --training-weights int8      the shipped model's exact int8 kernels and scales (default with --from)
 *   --training-weights float32   the float weights
 *   --training-weights none      no training part (default with --onnx)
 *
 * The architecture: with `--from DIR`, the `architecture` of `reference.json`
 * (`fleet model train-reference` writes it), else read from the graph; with
 * `--onnx FILE`, read from the graph (`denseArchitectureFromOnnx`), which must
 * be a plain dense MatMul/Add/Relu chain. The factory checks it against the
 * graph either way.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { denseArchitectureSchema } from '@fleet/protocol';
import { factoryError } from '../core/errors.ts';
import { denseArchitectureFromOnnx } from '../core/onnx/dense-from-onnx.ts';
import type { OnnxModel } from '../core/onnx/model.ts';
import type { TrainingBuildInput, TrainingWeightsEncoding } from '../core/build/training-part.ts';

export type TrainingWeightsFlag = TrainingWeightsEncoding | 'none';

export interface TrainingFlags {
  /** Undefined when not given: int8 with --from, none with --onnx. */
  trainingWeights?: TrainingWeightsFlag;
}

function parseTrainingWeights(value: string): TrainingWeightsFlag {
  if (value === 'int8' || value === 'float32' || value === 'none') return value;
  throw new InvalidArgumentError('int8, float32 or none');
}

export function addTrainingOptions(command: Command): Command {
  return command.addOption(
    new Option(
      '--training-weights <encoding>',
      'start weights for federated learning in part weights.ftns: int8 (the shipped int8 values), float32, or none; default int8 with --from, none with --onnx',
    ).argParser(parseTrainingWeights),
  );
}

/**
 * The training step's input, or undefined for none. `reference` is the
 * `architecture` a `--from` directory's reference.json declares (unchecked
 * JSON; undefined when it declares none).
 */
export function trainingInput(
  flags: TrainingFlags & { from?: string },
  floatModel: () => OnnxModel,
  reference: unknown,
): TrainingBuildInput | undefined {
  const weights = flags.trainingWeights ?? (flags.from ? 'int8' : 'none');
  if (weights === 'none') return undefined;
  if (reference !== undefined) {
    const parsed = denseArchitectureSchema.safeParse(reference);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw factoryError(
        'TRAINING_SPEC',
        `reference.json architecture ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`,
      );
    }
    return { architecture: parsed.data, weights };
  }
  const model = floatModel(); // MODEL_MALFORMED as it is
  try {
    return { architecture: denseArchitectureFromOnnx(model).architecture, weights };
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw factoryError(
      'TRAINING_SPEC',
      `--training-weights ${weights} needs a dense model (or --training-weights none): ${why}`,
      error,
    );
  }
}
