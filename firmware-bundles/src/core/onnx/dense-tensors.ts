/**
 * Dense weights as named tensors and back: the bridge between the builder's
 * `DenseArchitecture` (dense-builder.ts) and the federated-learning tensor
 * list of protocol's training-spec.ts (`dense_{i}/kernel` [inputs, units],
 * row-major as TensorFlow.js stores it, then `dense_{i}/bias` [units]). The
 * control plane turns aggregated float weights into an ONNX model with
 * `denseArchitectureFromTensors` then `buildDenseModel`.
 */
import {
  checkTrainingWeights,
  denseArchitectureSchema,
  type DenseArchitectureSpec,
  type NamedTensor,
} from '@fleet/protocol';
import { factoryError } from '../errors.ts';
import type { DenseArchitecture } from './dense-builder.ts';

/** What a training architecture is made from: a `DenseArchitecture` or a spec fits it. */
export interface DenseArchitectureShape {
  inputSize: number;
  layers: readonly { units: number; activation: 'relu' | 'linear' }[];
  softmaxOutput: boolean;
}

/**
 * The manifest's `training.architecture` of `shape`, exactly the schema's
 * fields (weights and graph name dropped). Throws TRAINING_SPEC for an
 * architecture the schema refuses (too many layers or parameters, bad units).
 */
export function denseArchitectureSpec(shape: DenseArchitectureShape): DenseArchitectureSpec {
  const parsed = denseArchitectureSchema.safeParse({
    kind: 'dense',
    inputSize: shape.inputSize,
    layers: shape.layers.map((l) => ({ units: l.units, activation: l.activation })),
    softmaxOutput: shape.softmaxOutput,
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw factoryError(
      'TRAINING_SPEC',
      `training architecture ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`,
    );
  }
  return parsed.data;
}

/** The float weights of `architecture` as the training tensor list (arrays shared, not copied). */
export function denseTensorsOf(architecture: DenseArchitecture): NamedTensor[] {
  const tensors: NamedTensor[] = [];
  let inputs = architecture.inputSize;
  architecture.layers.forEach((layer, i) => {
    tensors.push({ name: `dense_${i}/kernel`, dims: [inputs, layer.units], values: layer.weights });
    tensors.push({ name: `dense_${i}/bias`, dims: [layer.units], values: layer.bias });
    inputs = layer.units;
  });
  return tensors;
}

/**
 * Weights in the training tensor list (e.g. base + aggregated delta) into the
 * builder's layout, so `buildDenseModel` makes them an ONNX model. Throws
 * MALFORMED (protocol's `checkTrainingWeights`) unless `tensors` are exactly
 * the architecture's, in order. The values are copied.
 *
 * @example
 *   const model = buildDenseModel(denseArchitectureFromTensors(spec, candidate));
 */
export function denseArchitectureFromTensors(
  spec: DenseArchitectureShape,
  tensors: readonly NamedTensor[],
): DenseArchitecture {
  checkTrainingWeights(spec, tensors);
  return {
    inputSize: spec.inputSize,
    softmaxOutput: spec.softmaxOutput,
    layers: spec.layers.map((layer, i) => ({
      units: layer.units,
      activation: layer.activation,
      weights: tensors[2 * i]!.values.slice(),
      bias: tensors[2 * i + 1]!.values.slice(),
    })),
  };
}
