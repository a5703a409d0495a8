/**
 * Quantized models in three op layouts (dense MatMul, Gemm with both transB
 * forms, a small convolutional net) run in onnxruntime and agree with their
 * float originals; unsupported graphs are refused by name.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isFleetError } from '@fleet/protocol';
import { decodeOnnx, encodeOnnx } from '../../adapters/onnx/onnx-codec.ts';
import { createOnnxRunner } from '../../adapters/onnx/runtime.ts';
import { xorshift32 } from '../random.ts';
import { buildDenseModel } from '../onnx/dense-builder.ts';
import type { GraphNode, OnnxModel, Tensor } from '../onnx/model.ts';
import { quantizeWeights } from './quantize-weights.ts';
import { argmaxRow } from '../evaluation/classifier-accuracy.ts';

const nextInt = xorshift32(99);
const uniform = () => nextInt() / 2 ** 32 - 0.5;
const floats = (n: number, scale = 1) => Float32Array.from({ length: n }, () => uniform() * scale);
const tensor = (name: string, dims: number[], scale = 0.5): Tensor => ({
  name,
  dataType: 'float32',
  dims,
  data: floats(
    dims.reduce((a, b) => a * b, 1),
    scale,
  ),
});
const node = (
  opType: string,
  inputs: string[],
  outputs: string[],
  attributes: GraphNode['attributes'] = {},
): GraphNode => ({
  name: outputs[0]!,
  opType,
  domain: '',
  inputs,
  outputs,
  attributes,
});

function argmaxRows(scores: Float32Array, rows: number): number[] {
  return Array.from({ length: rows }, (_, r) => argmaxRow(scores, r, scores.length / rows));
}

/** Runs float and quantized models on the same random inputs; returns top-1 agreement. */
async function agreement(model: OnnxModel, sampleShape: number[], samples = 500): Promise<number> {
  const quantized = quantizeWeights(decodeOnnx(encodeOnnx(model))).model;
  const float = await createOnnxRunner(encodeOnnx(model));
  const int8 = await createOnnxRunner(encodeOnnx(quantized));
  const x = floats(samples * sampleShape.reduce((a, b) => a * b, 1), 2);
  const a = argmaxRows(await float.run(x, samples, sampleShape), samples);
  const b = argmaxRows(await int8.run(x, samples, sampleShape), samples);
  await Promise.all([float.close(), int8.close()]);
  return a.filter((v, i) => v === b[i]).length / samples;
}

function model(
  nodes: GraphNode[],
  initializers: Tensor[],
  input: (number | string)[],
  output: string,
): OnnxModel {
  return {
    irVersion: 8,
    opsetVersion: 13,
    producerName: 'test',
    graphName: 'test',
    inputs: [{ name: 'input', dataType: 'float32', shape: input }],
    outputs: [{ name: output, dataType: 'float32', shape: ['batch', '?'] }],
    initializers,
    nodes,
  };
}

const gemmModel = () =>
  model(
    [
      node('Gemm', ['input', 'w1', 'b1'], ['h'], { transB: { type: 'int', value: 1 } }),
      node('Relu', ['h'], ['r']),
      node('Gemm', ['r', 'w2', 'b2'], ['logits'], { transB: { type: 'int', value: 0 } }),
      node('Softmax', ['logits'], ['probabilities'], { axis: { type: 'int', value: -1 } }),
    ],
    [
      tensor('w1', [24, 12]),
      tensor('b1', [24], 0.1),
      tensor('w2', [24, 6]),
      tensor('b2', [6], 0.1),
    ],
    ['batch', 12],
    'probabilities',
  );

const convModel = () =>
  model(
    [
      node('Conv', ['input', 'cw', 'cb'], ['c'], {
        pads: { type: 'ints', value: [1, 1, 1, 1] },
        kernel_shape: { type: 'ints', value: [3, 3] },
      }),
      node('Relu', ['c'], ['cr']),
      node('MaxPool', ['cr'], ['p'], {
        kernel_shape: { type: 'ints', value: [2, 2] },
        strides: { type: 'ints', value: [2, 2] },
      }),
      node('Flatten', ['p'], ['f']),
      node('Gemm', ['f', 'fw', 'fb'], ['logits']),
      node('Softmax', ['logits'], ['probabilities'], { axis: { type: 'int', value: -1 } }),
    ],
    [
      tensor('cw', [6, 1, 3, 3]),
      tensor('cb', [6], 0.1),
      tensor('fw', [6 * 4 * 4, 10], 0.3),
      tensor('fb', [10], 0.1),
    ],
    ['batch', 1, 8, 8],
    'probabilities',
  );

describe('int8 weight quantization', () => {
  // Agreement of the dense (MatMul) layout is measured on the trained reference
  // model, on real digits (train-reference.test.ts): random weights on random
  // inputs leave near-ties between classes that no real classifier has.
  it('dense MatMul model: every kernel quantized, runs, at <= 30% of the bytes', async () => {
    const dense = buildDenseModel({
      inputSize: 784,
      softmaxOutput: true,
      layers: [
        { units: 200, activation: 'relu', weights: floats(784 * 200, 0.1), bias: floats(200, 0.1) },
        {
          units: 200,
          activation: 'relu',
          weights: floats(200 * 200, 0.15),
          bias: floats(200, 0.1),
        },
        { units: 10, activation: 'linear', weights: floats(200 * 10, 0.3), bias: floats(10, 0.1) },
      ],
    });
    const runner = await createOnnxRunner(encodeOnnx(quantizeWeights(dense).model));
    assert.equal((await runner.run(floats(784 * 3), 3)).length, 30);
    await runner.close();
    const { model: q, report } = quantizeWeights(dense);
    assert.equal(report.quantizedTensors, 3);
    const ratio = encodeOnnx(q).length / encodeOnnx(dense).length;
    assert.ok(ratio <= 0.3, `size ratio ${ratio}`);
    assert.ok(
      q.initializers.every((t) => !t.name.endsWith('kernel')),
      'no float kernel left',
    );
  });

  it('Gemm with transB=1 and transB=0 quantizes along the right axis', async () => {
    const { model: q } = quantizeWeights(gemmModel());
    const scales = new Map(q.initializers.map((t) => [t.name, t.dims]));
    assert.deepEqual(scales.get('w1/scale'), [24]); // transB=1: [N, K], channels on axis 0
    assert.deepEqual(scales.get('w2/scale'), [6]); // transB=0: [K, N], channels on axis 1
    assert.ok((await agreement(gemmModel(), [12])) >= 0.99);
  });

  it('a small convolutional net quantizes, runs and agrees with float', async () => {
    assert.ok((await agreement(convModel(), [1, 8, 8])) >= 0.99);
  });

  it('refuses a graph with an unsupported op, naming it, and a pre-13 opset', () => {
    const m = gemmModel();
    m.nodes.splice(1, 0, node('LSTM', ['h'], ['h2']));
    assert.throws(
      () => quantizeWeights(m),
      (e) => isFleetError(e, 'MODEL_UNSUPPORTED') && /LSTM/.test(e.message),
    );
    const old = { ...gemmModel(), opsetVersion: 11 };
    assert.throws(
      () => quantizeWeights(old),
      (e) => isFleetError(e, 'MODEL_UNSUPPORTED') && /opset 11/.test(e.message),
    );
  });
});
