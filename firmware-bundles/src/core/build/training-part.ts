/**
 * The bundle's training part (`weights.ftns`, protocol's FTNS tensor set) and
 * the manifest's `training` field: the start weights devices train a
 * federated round from, and the dense architecture they rebuild.
 *
 * `int8` (the default of `fleet bundle build`) stores exactly the int8 values
 * and per-channel scales of the quantized model's kernels, read from its
 * initializers behind each `DequantizeLinear`, with float32 biases: devices
 * train from the very numbers they serve. `float32` stores the float model's
 * weights. Either way the part is decoded again, as a device would, and held
 * to the architecture (`checkTrainingWeights`) before it is packed.
 *
 * `readTrainingWeights` is the reading side for the control plane: a verified
 * bundle in, its architecture and dequantized start weights out.
 */
import {
  checkTrainingWeights,
  decodeTensorSet,
  denseParameterCount,
  encodeQuantizedTensorSet,
  FleetError,
  manifestTrainingSchema,
  type DenseArchitectureSpec,
  type Manifest,
  type ManifestTraining,
  type NamedTensor,
  type PartInput,
  type QuantizedTensor,
  type TensorSetEncoding,
} from '@fleet/protocol';
import { factoryError } from '../errors.ts';
import type { OnnxModel, Tensor } from '../onnx/model.ts';
import { denseArchitectureFromOnnx, type DenseOnnxGraph } from '../onnx/dense-from-onnx.ts';
import { denseArchitectureSpec, type DenseArchitectureShape } from '../onnx/dense-tensors.ts';

/** The training part's name. */
export const TRAINING_WEIGHTS_PART = 'weights.ftns';
/** The training part's media type. */
export const TENSOR_SET_MEDIA_TYPE = 'application/vnd.fleet.tensor-set';

/** How the start weights are stored. */
export type TrainingWeightsEncoding = 'int8' | 'float32';

/** The training step's input. */
export interface TrainingBuildInput {
  /** The architecture devices rebuild; it must be the model's graph (else TRAINING_SPEC). */
  architecture: DenseArchitectureShape;
  weights: TrainingWeightsEncoding;
}

/** What the training step added to the bundle. */
export interface TrainingBuildReport {
  part: string;
  encoding: TrainingWeightsEncoding;
  /** Bytes of the part (already deflated; stored as is). */
  partBytes: number;
  tensors: number;
  parameters: number;
}

/** A bundle's training weights as the control plane reads them. */
export interface TrainingWeights {
  architecture: DenseArchitectureSpec;
  /** `dense_{i}/kernel`, `dense_{i}/bias`, ... checked against the architecture; int8 dequantized. */
  tensors: NamedTensor[];
  /** `mixed` for int8 kernels with float32 biases. */
  encoding: TensorSetEncoding | 'mixed';
}

/**
 * The training part and manifest field of a float model and its quantized
 * form. Throws TRAINING_SPEC when the architecture is invalid, the graph is
 * not a plain dense one, or the two differ (naming the first difference).
 */
export function trainingPart(
  float: OnnxModel,
  quantized: OnnxModel,
  input: TrainingBuildInput,
): { spec: ManifestTraining; part: PartInput; report: TrainingBuildReport } {
  const architecture = denseArchitectureSpec(input.architecture);
  const graph = denseGraphOf(float);
  matchArchitecture(architecture, graph);
  const stored =
    input.weights === 'int8'
      ? int8Tensors(quantized, graph)
      : graph.architecture.layers.flatMap((layer, i): QuantizedTensor[] => [
          {
            name: `dense_${i}/kernel`,
            dims: kernelDims(graph, i),
            dtype: 'float32',
            values: layer.weights,
          },
          { name: `dense_${i}/bias`, dims: [layer.units], dtype: 'float32', values: layer.bias },
        ]);
  const bytes = asTrainingError(() => {
    const encoded = encodeQuantizedTensorSet(stored);
    // Read back as a device will, and hold it to the architecture (THREATS 40).
    checkTrainingWeights(architecture, decodeTensorSet(encoded, limitsOf(architecture)).tensors);
    return encoded;
  });
  return {
    spec: { architecture, weightsPart: TRAINING_WEIGHTS_PART },
    part: {
      name: TRAINING_WEIGHTS_PART,
      bytes,
      mediaType: TENSOR_SET_MEDIA_TYPE,
      compression: 'none', // FTNS is deflated inside
    },
    report: {
      part: TRAINING_WEIGHTS_PART,
      encoding: input.weights,
      partBytes: bytes.length,
      tensors: stored.length,
      parameters: denseParameterCount(architecture),
    },
  };
}

/**
 * The architecture and start weights of a verified bundle (protocol's
 * `verifyBundle` result fits `bundle`). Throws TRAINING_SPEC when the manifest
 * has no valid `training` field or the part is missing; protocol's MALFORMED,
 * TOO_LARGE or NON_FINITE when the part does not decode to exactly the
 * architecture's tensors.
 *
 * @example
 *   const verified = await verifyBundle(bytes, options);
 *   const { architecture, tensors } = readTrainingWeights(verified);
 */
export function readTrainingWeights(bundle: {
  manifest: Pick<Manifest, 'name' | 'version' | 'training'>;
  parts: ReadonlyMap<string, Uint8Array>;
}): TrainingWeights {
  const { manifest } = bundle;
  const what = `bundle ${manifest.name}@${manifest.version}`;
  const parsed = manifestTrainingSchema.safeParse(manifest.training);
  if (manifest.training === undefined || !parsed.success) {
    throw factoryError('TRAINING_SPEC', `${what} has no valid training field`);
  }
  const { architecture, weightsPart } = parsed.data;
  const bytes = bundle.parts.get(weightsPart);
  if (bytes === undefined) {
    throw factoryError(
      'TRAINING_SPEC',
      `${what} has no part ${weightsPart} (its training weights)`,
    );
  }
  const decoded = decodeTensorSet(bytes, limitsOf(architecture));
  checkTrainingWeights(architecture, decoded.tensors);
  return { architecture, tensors: decoded.tensors, encoding: decoded.encoding };
}

function limitsOf(architecture: DenseArchitectureSpec) {
  return {
    maxTensors: 2 * architecture.layers.length,
    maxElements: denseParameterCount(architecture),
  };
}

function denseGraphOf(float: OnnxModel): DenseOnnxGraph {
  try {
    return denseArchitectureFromOnnx(float);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw factoryError('TRAINING_SPEC', `the model cannot carry training weights: ${why}`, error);
  }
}

/** The declared architecture must be the graph's, layer by layer. */
function matchArchitecture(declared: DenseArchitectureSpec, graph: DenseOnnxGraph): void {
  const found = graph.architecture;
  const differ = (what: string, a: unknown, b: unknown) =>
    factoryError(
      'TRAINING_SPEC',
      `the training architecture does not match the model's graph: ${what} is ${String(a)} in the architecture, ${String(b)} in the graph`,
    );
  if (declared.inputSize !== found.inputSize) {
    throw differ('the input size', declared.inputSize, found.inputSize);
  }
  if (declared.layers.length !== found.layers.length) {
    throw differ('the layer count', declared.layers.length, found.layers.length);
  }
  declared.layers.forEach((layer, i) => {
    const other = found.layers[i]!;
    if (layer.units !== other.units) throw differ(`layer ${i}'s units`, layer.units, other.units);
    if (layer.activation !== other.activation) {
      throw differ(`layer ${i}'s activation`, layer.activation, other.activation);
    }
  });
  if (declared.softmaxOutput !== found.softmaxOutput) {
    throw differ('softmaxOutput', declared.softmaxOutput, found.softmaxOutput);
  }
}

function kernelDims(graph: DenseOnnxGraph, i: number): number[] {
  const inputs = i === 0 ? graph.architecture.inputSize : graph.architecture.layers[i - 1]!.units;
  return [inputs, graph.architecture.layers[i]!.units];
}

/**
 * The quantized model's own kernels: for each layer, the int8 values and
 * per-channel scales behind the `DequantizeLinear` that restores the graph's
 * kernel name, renamed `dense_{i}/kernel`; biases stay float32.
 */
function int8Tensors(quantized: OnnxModel, graph: DenseOnnxGraph): QuantizedTensor[] {
  const initializers = new Map(quantized.initializers.map((t) => [t.name, t]));
  return graph.initializers.flatMap(({ kernel, bias }, i): QuantizedTensor[] => {
    const dims = kernelDims(graph, i);
    const where = `kernel ${kernel} (layer ${i})`;
    const node = quantized.nodes.find(
      (n) => n.opType === 'DequantizeLinear' && n.outputs[0] === kernel,
    );
    const [q, scale, zero] = (node?.inputs ?? []).map((name) => initializers.get(name));
    const axis = node?.attributes['axis'];
    const b = initializers.get(bias);
    if (!node || !q || !scale || q.dataType !== 'int8' || !sameDims(q.dims, dims)) {
      throw factoryError('TRAINING_SPEC', `the quantized model has no int8 ${where}`);
    }
    if (scale.dataType !== 'float32' || !sameDims(scale.dims, [dims[1]!])) {
      throw factoryError('TRAINING_SPEC', `the quantized ${where} has no per-channel scales`);
    }
    if (!(axis?.type === 'int' && (axis.value === 1 || axis.value === -1))) {
      throw factoryError('TRAINING_SPEC', `the quantized ${where} is not per output channel`);
    }
    if (zero && !(zero.data as Int8Array).every((z) => z === 0)) {
      throw factoryError('TRAINING_SPEC', `the quantized ${where} is not symmetric`);
    }
    if (!b || b.dataType !== 'float32') {
      throw factoryError('TRAINING_SPEC', `the quantized model has no float32 bias ${bias}`);
    }
    return [
      {
        name: `dense_${i}/kernel`,
        dims,
        dtype: 'int8',
        values: q.data as Int8Array,
        scales: scale.data as Float32Array,
      },
      { name: `dense_${i}/bias`, dims: [dims[1]!], dtype: 'float32', values: floatData(b) },
    ];
  });
}

function floatData(t: Tensor): Float32Array {
  return t.data as Float32Array;
}

function sameDims(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Protocol refusals while encoding the factory's own weights are factory errors. */
function asTrainingError<T>(run: () => T): T {
  try {
    return run();
  } catch (error) {
    if (!(error instanceof FleetError)) throw error;
    throw factoryError('TRAINING_SPEC', `training weights refused: ${error.message}`, error);
  }
}
