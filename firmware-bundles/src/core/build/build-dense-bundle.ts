/**
 * The control plane's candidate bundles: dense weights (a federated round's
 * aggregate) in, a signed bundle out, through the same named steps and
 * accuracy budget as `fleet bundle build`:
 *
 *   buildDenseModel -> encode -> buildBundle (decode ... pack, with training weights)
 *
 * The candidate carries its own training part, so the next round trains from it.
 */
import { buildDenseModel, type DenseArchitecture } from '../onnx/dense-builder.ts';
import { buildBundle, type BuildInput, type BuildPorts, type BuildResult } from './build-bundle.ts';
import type { TrainingWeightsEncoding } from './training-part.ts';

export interface DenseBundleInput extends Omit<BuildInput, 'floatModel' | 'training'> {
  /** The float weights in the builder's layout (`denseArchitectureFromTensors` makes it). */
  architecture: DenseArchitecture;
  /** How the bundle's `weights.ftns` stores them (int8: the shipped model's exact values). */
  training: { weights: TrainingWeightsEncoding };
}

/**
 * Builds the float ONNX model of `architecture` and runs the bundle factory on
 * it with the same architecture as the training field.
 *
 * @example
 *   const architecture = denseArchitectureFromTensors(base.architecture, candidate);
 *   const { bundle } = await buildDenseBundle(
 *     { architecture, evalData, manifest, signers, training: { weights: 'int8' } }, ports);
 */
export async function buildDenseBundle(
  input: DenseBundleInput,
  ports: BuildPorts,
): Promise<BuildResult> {
  const { architecture, training, ...rest } = input;
  const floatModel = ports.encode(buildDenseModel(architecture));
  return buildBundle(
    { ...rest, floatModel, training: { architecture, weights: training.weights } },
    ports,
  );
}
