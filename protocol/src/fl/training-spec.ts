/**
 * The manifest's optional `training` field: the architecture devices rebuild
 * to train a federated round from this bundle, and the part holding its start
 * weights (an FTNS tensor set, tensor-set.ts). Dense models only for now.
 *
 * Tensor names follow the ONNX initializers of the bundle factory's dense
 * builder: `dense_{i}/kernel` dims [inputs, units] (row-major, TensorFlow.js
 * layout) and `dense_{i}/bias` dims [units]. `checkTrainingWeights` holds a
 * decoded weights part to exactly that list (THREATS 40: validate against the
 * exact schema the consumer expects).
 *
 * @example
 *   training: {
 *     architecture: { kind: 'dense', inputSize: 784, softmaxOutput: true,
 *       layers: [{ units: 200, activation: 'relu' }, { units: 200, activation: 'relu' },
 *                { units: 10, activation: 'linear' }] },
 *     weightsPart: 'weights.ftns' }
 */
import { z } from 'zod';
import { FleetError } from '../errors.ts';
import { MAX_TENSOR_SET_ELEMENTS, type NamedTensor } from './tensor-set.ts';

/** Most dense layers of a trainable architecture. */
export const MAX_DENSE_LAYERS = 16;
/** Most units of one dense layer. */
export const MAX_DENSE_UNITS = 65_536;
/** Largest input of a trainable dense model. */
export const MAX_DENSE_INPUT_SIZE = 1_000_000;

export const denseLayerSpecSchema = z.strictObject({
  units: z.number().int().min(1).max(MAX_DENSE_UNITS),
  activation: z.enum(['relu', 'linear']),
});

export const denseArchitectureSchema = z
  .strictObject({
    kind: z.literal('dense'),
    inputSize: z.number().int().min(1).max(MAX_DENSE_INPUT_SIZE),
    layers: z.array(denseLayerSpecSchema).min(1).max(MAX_DENSE_LAYERS),
    /** Softmax over the last layer (output `probabilities`; else `logits`). */
    softmaxOutput: z.boolean(),
  })
  .refine((a) => denseParameterCount(a) <= MAX_TENSOR_SET_ELEMENTS, {
    message: `an architecture has at most ${MAX_TENSOR_SET_ELEMENTS} parameters (one tensor set)`,
    path: ['layers'],
  });
export type DenseArchitectureSpec = z.infer<typeof denseArchitectureSchema>;

export const manifestTrainingSchema = z.strictObject({
  architecture: denseArchitectureSchema,
  /** The bundle part with the start weights, e.g. `weights.ftns`; must be a part of the bundle. */
  weightsPart: z.string().max(256),
});
export type ManifestTraining = z.infer<typeof manifestTrainingSchema>;

/** The shape of an architecture, for the helpers below (the parsed field fits it). */
export interface DenseShape {
  inputSize: number;
  layers: readonly { units: number }[];
}

/** A tensor a consumer expects: its name and dims. */
export interface TensorShape {
  name: string;
  dims: number[];
}

/** Parameters of a dense architecture: sum of inputs x units + units per layer. */
export function denseParameterCount(architecture: DenseShape): number {
  let inputs = architecture.inputSize;
  let count = 0;
  for (const layer of architecture.layers) {
    count += inputs * layer.units + layer.units;
    inputs = layer.units;
  }
  return count;
}

/**
 * The tensors of a dense architecture, in order: `dense_{i}/kernel`
 * [inputs, units], then `dense_{i}/bias` [units], for each layer i.
 */
export function denseTensorShapes(architecture: DenseShape): TensorShape[] {
  const shapes: TensorShape[] = [];
  let inputs = architecture.inputSize;
  architecture.layers.forEach((layer, i) => {
    shapes.push({ name: `dense_${i}/kernel`, dims: [inputs, layer.units] });
    shapes.push({ name: `dense_${i}/bias`, dims: [layer.units] });
    inputs = layer.units;
  });
  return shapes;
}

/**
 * Throws MALFORMED unless `tensors` are exactly the architecture's tensors:
 * the same names in the same order, the same dims, and as many values.
 */
export function checkTrainingWeights(
  architecture: DenseShape,
  tensors: readonly NamedTensor[],
): void {
  const expected = denseTensorShapes(architecture);
  if (tensors.length !== expected.length) {
    throw new FleetError(
      'MALFORMED',
      `training weights hold ${tensors.length} tensors; the architecture has ${expected.length}`,
    );
  }
  expected.forEach((shape, i) => {
    const tensor = tensors[i]!;
    if (tensor.name !== shape.name) {
      throw new FleetError(
        'MALFORMED',
        `training weights: tensor ${i} is ${JSON.stringify(tensor.name.slice(0, 140))}, expected ${shape.name}`,
      );
    }
    const sameDims =
      tensor.dims.length === shape.dims.length && tensor.dims.every((d, k) => d === shape.dims[k]);
    if (!sameDims || tensor.values.length !== shape.dims.reduce((a, b) => a * b, 1)) {
      throw new FleetError(
        'MALFORMED',
        `training weights: ${shape.name} has dims [${tensor.dims.join(', ')}] and ${tensor.values.length} values, expected [${shape.dims.join(', ')}]`,
      );
    }
  });
}
