/**
 * Weight-only int8 quantization, per output channel, symmetric: the float32
 * weights of MatMul, Gemm and Conv become int8 initializers with one float
 * scale per output channel, and a DequantizeLinear node (ONNX opset 13,
 * per-axis) restores float weights in front of the original op. Biases and
 * activations stay float. The bundle then carries about a quarter of the
 * weight bytes, and any runtime that speaks opset 13 runs it unchanged.
 *
 * A graph with an op outside the lists below is refused, naming the op: the
 * quantizer must know each op is safe to leave untouched.
 */
import { factoryError } from '../errors.ts';
import { elementCount, type GraphNode, type OnnxModel, type Tensor } from '../onnx/model.ts';

export const MIN_QUANTIZE_OPSET = 13;

/** Ops whose float inputs and outputs the quantizer leaves as they are. */
export const PASS_THROUGH_OPS = new Set([
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Relu',
  'LeakyRelu',
  'Sigmoid',
  'Tanh',
  'Softmax',
  'LogSoftmax',
  'Identity',
  'Dropout',
  'Reshape',
  'Flatten',
  'Transpose',
  'Squeeze',
  'Unsqueeze',
  'Concat',
  'MaxPool',
  'AveragePool',
  'GlobalAveragePool',
  'BatchNormalization',
  'Clip',
  'Shape',
  'Gather',
]);

/** Which axis of the weight (input 1) holds the output channels, per op; null: leave float. */
const WEIGHT_CHANNEL_AXIS: Record<string, (node: GraphNode, weight: Tensor) => number | null> = {
  MatMul: (_node, w) => (w.dims.length === 2 ? 1 : null),
  Gemm: (node) => (node.attributes['transB']?.value === 1 ? 0 : 1),
  Conv: () => 0,
};

export interface QuantizationReport {
  method: 'int8-weight-only-per-channel-symmetric';
  quantizedTensors: number;
  floatWeightBytes: number;
  int8WeightBytes: number;
  /** Largest |w - dequantized(w)| over all quantized weights. */
  maxAbsWeightError: number;
}

export function quantizeWeights(model: OnnxModel): {
  model: OnnxModel;
  report: QuantizationReport;
} {
  if (model.opsetVersion < MIN_QUANTIZE_OPSET) {
    throw factoryError(
      'MODEL_UNSUPPORTED',
      `the model uses opset ${model.opsetVersion}; per-channel quantization needs opset ${MIN_QUANTIZE_OPSET} or later`,
    );
  }
  const initializers = new Map(model.initializers.map((t) => [t.name, t]));
  const targets = new Map<string, number>(); // weight name -> channel axis
  for (const node of model.nodes) {
    const axisOf = WEIGHT_CHANNEL_AXIS[node.opType];
    if (node.domain !== '' || (!axisOf && !PASS_THROUGH_OPS.has(node.opType))) {
      throw factoryError(
        'MODEL_UNSUPPORTED',
        `op ${node.domain ? `${node.domain}.` : ''}${node.opType} (node ${node.name}) is not supported by the quantizer`,
      );
    }
    const weight = initializers.get(node.inputs[1] ?? '');
    if (!axisOf || !weight || weight.dataType !== 'float32') continue;
    const axis = axisOf(node, weight);
    if (axis === null) continue;
    if (targets.has(weight.name) && targets.get(weight.name) !== axis) {
      throw factoryError(
        'MODEL_UNSUPPORTED',
        `weight ${weight.name} is used with two different channel axes`,
      );
    }
    targets.set(weight.name, axis);
  }
  const report: QuantizationReport = {
    method: 'int8-weight-only-per-channel-symmetric',
    quantizedTensors: 0,
    floatWeightBytes: 0,
    int8WeightBytes: 0,
    maxAbsWeightError: 0,
  };
  const newInitializers: Tensor[] = [];
  const dequantizeNodes: GraphNode[] = [];
  for (const tensor of model.initializers) {
    const axis = targets.get(tensor.name);
    if (axis === undefined) {
      newInitializers.push(tensor);
      continue;
    }
    const q = quantizePerChannel(tensor, axis);
    newInitializers.push(q.values, q.scales, q.zeroPoints);
    dequantizeNodes.push({
      name: `${tensor.name}/dequantize`,
      opType: 'DequantizeLinear',
      domain: '',
      inputs: [q.values.name, q.scales.name, q.zeroPoints.name],
      outputs: [tensor.name], // consumers keep reading the original name
      attributes: { axis: { type: 'int', value: axis } },
    });
    report.quantizedTensors++;
    report.floatWeightBytes += tensor.data.byteLength;
    report.int8WeightBytes +=
      q.values.data.byteLength + q.scales.data.byteLength + q.zeroPoints.data.byteLength;
    report.maxAbsWeightError = Math.max(report.maxAbsWeightError, q.maxAbsError);
  }
  return {
    model: { ...model, initializers: newInitializers, nodes: [...dequantizeNodes, ...model.nodes] },
    report,
  };
}

/** Symmetric int8 per channel along `axis`: scale = max|w| / 127, zero point 0. */
function quantizePerChannel(tensor: Tensor, axis: number) {
  const w = tensor.data as Float32Array;
  const channels = tensor.dims[axis]!;
  const inner = elementCount(tensor.dims.slice(axis + 1)); // stride of the channel axis
  const channelOf = (i: number) => Math.floor(i / inner) % channels;
  const maxAbs = new Float32Array(channels);
  for (let i = 0; i < w.length; i++)
    maxAbs[channelOf(i)] = Math.max(maxAbs[channelOf(i)]!, Math.abs(w[i]!));
  const scales = maxAbs.map((m) => (m > 0 ? m / 127 : 1));
  const values = new Int8Array(w.length);
  let maxAbsError = 0;
  for (let i = 0; i < w.length; i++) {
    const scale = scales[channelOf(i)]!;
    const q = Math.max(-127, Math.min(127, Math.round(w[i]! / scale)));
    values[i] = q;
    maxAbsError = Math.max(maxAbsError, Math.abs(w[i]! - q * scale));
  }
  return {
    values: {
      name: `${tensor.name}/int8`,
      dataType: 'int8',
      dims: tensor.dims,
      data: values,
    } satisfies Tensor,
    scales: {
      name: `${tensor.name}/scale`,
      dataType: 'float32',
      dims: [channels],
      data: scales,
    } satisfies Tensor,
    zeroPoints: {
      name: `${tensor.name}/zero_point`,
      dataType: 'int8',
      dims: [channels],
      data: new Int8Array(channels),
    } satisfies Tensor,
    maxAbsError,
  };
}
