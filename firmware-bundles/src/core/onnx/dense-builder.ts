/**
 * Builds a float32 ONNX graph from dense-layer weights and a small architecture
 * description, so weights trained with TensorFlow.js (or aggregated by a
 * federated round) become an ONNX model. Each layer is MatMul + Add, then Relu
 * for hidden layers; the last layer's logits go through Softmax, so the output
 * is class probabilities (the agent reads confidence from them).
 */
import { factoryError } from '../errors.ts';
import type { GraphNode, OnnxModel, Tensor } from './model.ts';

export const DENSE_OPSET = 13;
export const DENSE_IR_VERSION = 8;

export interface DenseLayer {
  units: number;
  activation: 'relu' | 'linear';
  /** Row-major [inputs][units], TensorFlow.js's dense kernel layout. */
  weights: Float32Array;
  bias: Float32Array;
}

export interface DenseArchitecture {
  inputSize: number;
  layers: DenseLayer[];
  /** Apply Softmax to the last layer's output (named `probabilities`; else `logits`). */
  softmaxOutput: boolean;
  graphName?: string;
}

export const DENSE_INPUT_NAME = 'input';

export function buildDenseModel(arch: DenseArchitecture): OnnxModel {
  if (arch.layers.length === 0)
    throw factoryError('MODEL_UNSUPPORTED', 'a dense model needs at least one layer');
  const initializers: Tensor[] = [];
  const nodes: GraphNode[] = [];
  let current = DENSE_INPUT_NAME;
  let inputs = arch.inputSize;
  arch.layers.forEach((layer, i) => {
    if (layer.weights.length !== inputs * layer.units || layer.bias.length !== layer.units) {
      throw factoryError(
        'MODEL_UNSUPPORTED',
        `layer ${i}: expected ${inputs}x${layer.units} weights and ${layer.units} biases, got ${layer.weights.length} and ${layer.bias.length}`,
      );
    }
    const w = `dense_${i}/kernel`;
    const b = `dense_${i}/bias`;
    initializers.push({
      name: w,
      dataType: 'float32',
      dims: [inputs, layer.units],
      data: layer.weights,
    });
    initializers.push({ name: b, dataType: 'float32', dims: [layer.units], data: layer.bias });
    const last = i === arch.layers.length - 1;
    const matmul = `dense_${i}/matmul`;
    const added =
      last && !arch.softmaxOutput && layer.activation === 'linear' ? 'logits' : `dense_${i}/add`;
    nodes.push(node(`dense_${i}_matmul`, 'MatMul', [current, w], [matmul]));
    nodes.push(node(`dense_${i}_bias`, 'Add', [matmul, b], [added]));
    current = added;
    if (layer.activation === 'relu') {
      const out = `dense_${i}/relu`;
      nodes.push(node(`dense_${i}_relu`, 'Relu', [current], [out]));
      current = out;
    }
    inputs = layer.units;
  });
  let outputName = current;
  if (arch.softmaxOutput) {
    outputName = 'probabilities';
    nodes.push({
      ...node('softmax', 'Softmax', [current], [outputName]),
      attributes: { axis: { type: 'int', value: -1 } },
    });
  } else if (current !== 'logits') {
    nodes.push(node('logits', 'Identity', [current], ['logits']));
    outputName = 'logits';
  }
  return {
    irVersion: DENSE_IR_VERSION,
    opsetVersion: DENSE_OPSET,
    producerName: 'fleet-bundles',
    graphName: arch.graphName ?? 'dense',
    inputs: [{ name: DENSE_INPUT_NAME, dataType: 'float32', shape: ['batch', arch.inputSize] }],
    outputs: [{ name: outputName, dataType: 'float32', shape: ['batch', inputs] }],
    initializers,
    nodes,
  };
}

function node(name: string, opType: string, inputs: string[], outputs: string[]): GraphNode {
  return { name, opType, domain: '', inputs, outputs, attributes: {} };
}
