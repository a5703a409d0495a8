/**
 * The training architecture: its tensor list (the dense builder's initializer
 * names and dims), the exact-schema check of a weights part, and the bounds
 * of the architecture schema.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertRefused as refused } from '../__fixtures__/refusals.ts';
import { decodeTensorSet, encodeTensorSet, type NamedTensor } from './tensor-set.ts';
import {
  checkTrainingWeights,
  denseArchitectureSchema,
  denseParameterCount,
  denseTensorShapes,
  type DenseArchitectureSpec,
} from './training-spec.ts';

/** The reference MNIST 2NN, 784-200-200-10. */
const mnist2nn = (): DenseArchitectureSpec => ({
  kind: 'dense',
  inputSize: 784,
  layers: [
    { units: 200, activation: 'relu' },
    { units: 200, activation: 'relu' },
    { units: 10, activation: 'linear' },
  ],
  softmaxOutput: true,
});

const small = { inputSize: 3, layers: [{ units: 2 }, { units: 1 }] };
const weights = (): NamedTensor[] =>
  denseTensorShapes(small).map(({ name, dims }) => ({
    name,
    dims,
    values: new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(0.5),
  }));

describe('training architecture', () => {
  it('lists the dense tensors in order, named like the ONNX initializers', () => {
    assert.deepEqual(denseTensorShapes(mnist2nn()), [
      { name: 'dense_0/kernel', dims: [784, 200] },
      { name: 'dense_0/bias', dims: [200] },
      { name: 'dense_1/kernel', dims: [200, 200] },
      { name: 'dense_1/bias', dims: [200] },
      { name: 'dense_2/kernel', dims: [200, 10] },
      { name: 'dense_2/bias', dims: [10] },
    ]);
    assert.equal(denseParameterCount(mnist2nn()), 199_210);
  });

  it('accepts exactly the expected weights, decoded from a tensor set', () => {
    const decoded = decodeTensorSet(
      encodeTensorSet(weights(), { encoding: 'int8', scales: 'channel' }),
    );
    checkTrainingWeights(small, decoded.tensors);
  });

  it('refuses weights that differ in count, name, order or dims (THREATS 40)', () => {
    const [k0, b0, k1, b1] = weights() as [NamedTensor, NamedTensor, NamedTensor, NamedTensor];
    const cases: [NamedTensor[], RegExp][] = [
      [[k0, b0, k1], /hold 3 tensors; the architecture has 4/],
      [[k0, b0, k1, b1, { ...b1, name: 'extra' }], /hold 5 tensors/],
      [[b0, k0, k1, b1], /tensor 0 is "dense_0\/bias", expected dense_0\/kernel/],
      [[{ ...k0, name: 'dense_0/weights' }, b0, k1, b1], /expected dense_0\/kernel/],
      [
        [{ ...k0, dims: [2, 3] }, b0, k1, b1],
        /dense_0\/kernel has dims \[2, 3\] and 6 values, expected \[3, 2\]/,
      ],
      [
        [k0, b0, k1, { ...b1, values: new Float32Array(2) }],
        /dense_1\/bias has dims \[1\] and 2 values/,
      ],
    ];
    for (const [tensors, message] of cases)
      refused(() => checkTrainingWeights(small, tensors), 'MALFORMED', message);
  });

  it('bounds the architecture schema', () => {
    assert.ok(denseArchitectureSchema.safeParse(mnist2nn()).success);
    const bad: Record<string, unknown>[] = [
      { inputSize: 0 },
      { inputSize: 1_000_001 },
      { inputSize: 1.5 },
      { layers: [] },
      { layers: Array.from({ length: 17 }, () => ({ units: 2, activation: 'relu' })) },
      { layers: [{ units: 0, activation: 'relu' }] },
      { layers: [{ units: 65_537, activation: 'relu' }] },
      { layers: [{ units: 10, activation: 'tanh' }] },
      { layers: [{ units: 10, activation: 'relu', bias: false }] },
      { kind: 'conv' },
      { softmaxOutput: 'yes' },
      { dropout: 0.5 },
      // 1,000,000 x 20 parameters: more than one tensor set holds
      { inputSize: 1_000_000, layers: [{ units: 20, activation: 'linear' }] },
    ];
    for (const change of bad) {
      assert.equal(
        denseArchitectureSchema.safeParse({ ...mnist2nn(), ...change }).success,
        false,
        JSON.stringify(change).slice(0, 80),
      );
    }
    const edge = {
      ...mnist2nn(),
      inputSize: 1_000_000,
      layers: [{ units: 16, activation: 'linear' }],
    };
    assert.ok(denseArchitectureSchema.safeParse(edge).success);
  });
});
