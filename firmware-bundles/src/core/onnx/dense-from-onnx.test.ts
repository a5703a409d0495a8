/**
 * Reading a dense architecture back out of ONNX: the builder's graphs (the
 * reference 2NN among them) through the real codec, and refusals of graphs
 * that are anything else.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isFleetError } from '@fleet/protocol';
import { decodeOnnx, encodeOnnx } from '../../adapters/onnx/onnx-codec.ts';
import { quantizeWeights } from '../quantize/quantize-weights.ts';
import { xorshift32 } from '../random.ts';
import { buildDenseModel, type DenseArchitecture } from './dense-builder.ts';
import { denseArchitectureFromOnnx } from './dense-from-onnx.ts';
import type { GraphNode, OnnxModel } from './model.ts';

const next = xorshift32(17);
const floats = (n: number) => Float32Array.from({ length: n }, () => next() / 2 ** 32 - 0.5);

function dense(
  inputSize: number,
  layers: [number, 'relu' | 'linear'][],
  softmaxOutput: boolean,
): DenseArchitecture {
  let inputs = inputSize;
  return {
    inputSize,
    softmaxOutput,
    layers: layers.map(([units, activation]) => {
      const layer = { units, activation, weights: floats(inputs * units), bias: floats(units) };
      inputs = units;
      return layer;
    }),
  };
}

const shapeOf = (a: DenseArchitecture) => ({
  inputSize: a.inputSize,
  softmaxOutput: a.softmaxOutput,
  layers: a.layers.map((l) => [l.units, l.activation]),
});

const refused = (model: OnnxModel, message: RegExp) =>
  assert.throws(
    () => denseArchitectureFromOnnx(model),
    (e) => isFleetError(e, 'MODEL_UNSUPPORTED') && message.test(e.message),
    String(message),
  );

describe('denseArchitectureFromOnnx', () => {
  it('reads the reference 2NN graph (784-200-200-10, relu, softmax) with its weights', () => {
    const arch = dense(
      784,
      [
        [200, 'relu'],
        [200, 'relu'],
        [10, 'linear'],
      ],
      true,
    );
    const graph = denseArchitectureFromOnnx(decodeOnnx(encodeOnnx(buildDenseModel(arch))));
    assert.deepEqual(shapeOf(graph.architecture), shapeOf(arch));
    graph.architecture.layers.forEach((layer, i) => {
      assert.deepEqual(layer.weights, arch.layers[i]!.weights);
      assert.deepEqual(layer.bias, arch.layers[i]!.bias);
    });
    assert.deepEqual(graph.initializers[2], { kernel: 'dense_2/kernel', bias: 'dense_2/bias' });
  });

  it('reads logits outputs, a relu last layer, linear hidden layers and Add(bias, x)', () => {
    const cases = [
      dense(5, [[3, 'linear']], false),
      dense(
        5,
        [
          [4, 'linear'],
          [3, 'relu'],
        ],
        false,
      ),
      dense(5, [[3, 'relu']], true),
    ];
    for (const arch of cases) {
      const model = buildDenseModel(arch);
      const add = model.nodes.find((n) => n.opType === 'Add')!;
      add.inputs.reverse();
      assert.deepEqual(shapeOf(denseArchitectureFromOnnx(model).architecture), shapeOf(arch));
    }
  });

  it('refuses graphs that are not a plain dense chain, naming what does not fit', () => {
    const arch = dense(
      6,
      [
        [4, 'relu'],
        [3, 'linear'],
      ],
      true,
    );
    const base = () => buildDenseModel(arch);
    const withNodes = (edit: (nodes: GraphNode[]) => GraphNode[]) => {
      const m = base();
      return { ...m, nodes: edit(m.nodes) };
    };
    refused(
      withNodes((nodes) => nodes.map((n) => (n.opType === 'Relu' ? { ...n, opType: 'Tanh' } : n))),
      /Tanh/,
    );
    refused(
      withNodes((nodes) =>
        nodes.map((n) => (n.opType === 'MatMul' ? { ...n, opType: 'Gemm' } : n)),
      ),
      /Gemm/,
    );
    refused(
      withNodes((nodes) => nodes.filter((n) => n.name !== 'dense_1_bias')),
      /does not take exactly the previous value/,
    );
    // The weights of the int8 model are computed (DequantizeLinear), not initializers.
    refused(quantizeWeights(base()).model, /DequantizeLinear/);
    // A second output, and an output that is not the end of the chain.
    const two = base();
    refused({ ...two, outputs: [...two.outputs, two.outputs[0]!] }, /1 inputs and 2 outputs/);
    refused({ ...two, outputs: [{ ...two.outputs[0]!, name: 'dense_0/relu' }] }, /not the end/);
    // A bias of the wrong length, a kernel that does not follow the width.
    const bias = base();
    bias.initializers[1] = { ...bias.initializers[1]!, dims: [2, 2] };
    refused(bias, /float32 \[4\] bias/);
    const kernel = base();
    kernel.initializers[2] = { ...kernel.initializers[2]!, dims: [3, 4] };
    refused(kernel, /weight \[3, 4\] after a width of 4/);
    refused(
      { ...base(), inputs: [{ name: 'input', dataType: 'float32', shape: ['batch', 2, 3] }] },
      /not float32 \[batch, N\]/,
    );
  });
});
