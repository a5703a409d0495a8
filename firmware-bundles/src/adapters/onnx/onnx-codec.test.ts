/**
 * The codec against the real thing: models we build and encode load and run in
 * onnxruntime-node and compute what a plain JavaScript forward pass computes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isFleetError } from '@fleet/protocol';
import { buildDenseModel, type DenseArchitecture } from '../../core/onnx/dense-builder.ts';
import { decodeOnnx, encodeOnnx } from './onnx-codec.ts';
import { createOnnxRunner } from './runtime.ts';

function seeded(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32 - 0.5;
  };
}

function randomArch(sizes: number[], softmaxOutput: boolean): DenseArchitecture {
  const rand = seeded(42);
  return {
    inputSize: sizes[0]!,
    softmaxOutput,
    layers: sizes.slice(1).map((units, i) => ({
      units,
      activation: i < sizes.length - 2 ? 'relu' : 'linear',
      weights: Float32Array.from({ length: sizes[i]! * units }, () => rand() * 0.5),
      bias: Float32Array.from({ length: units }, () => rand() * 0.1),
    })),
  };
}

/** Reference forward pass, row-major weights. */
function forward(arch: DenseArchitecture, x: Float32Array, batch: number): Float32Array {
  let act = x;
  let width = arch.inputSize;
  for (const layer of arch.layers) {
    const out = new Float32Array(batch * layer.units);
    for (let r = 0; r < batch; r++) {
      for (let u = 0; u < layer.units; u++) {
        let sum = layer.bias[u]!;
        for (let k = 0; k < width; k++)
          sum += act[r * width + k]! * layer.weights[k * layer.units + u]!;
        out[r * layer.units + u] = layer.activation === 'relu' ? Math.max(0, sum) : sum;
      }
    }
    act = out;
    width = layer.units;
  }
  if (arch.softmaxOutput) {
    for (let r = 0; r < batch; r++) {
      const row = act.subarray(r * width, (r + 1) * width);
      const max = Math.max(...row);
      let total = 0;
      for (let i = 0; i < width; i++) total += row[i] = Math.exp(row[i]! - max);
      for (let i = 0; i < width; i++) row[i]! /= total;
    }
  }
  return act;
}

describe('ONNX codec and dense builder', () => {
  for (const softmaxOutput of [true, false]) {
    it(`a built ${softmaxOutput ? 'softmax' : 'logits'} model runs in onnxruntime and matches a JS forward pass`, async () => {
      const arch = randomArch([20, 16, 8, 5], softmaxOutput);
      const bytes = encodeOnnx(buildDenseModel(arch));
      const runner = await createOnnxRunner(bytes);
      const rand = seeded(7);
      const batch = 12;
      const x = Float32Array.from({ length: batch * 20 }, () => rand() * 2);
      const got = await runner.run(x, batch);
      const want = forward(arch, x, batch);
      assert.equal(got.length, want.length);
      for (let i = 0; i < want.length; i++)
        assert.ok(Math.abs(got[i]! - want[i]!) < 1e-5, `value ${i}`);
      await runner.close();
    });
  }

  it('decode(encode(model)) gives back the same model', () => {
    const model = buildDenseModel(randomArch([6, 4, 3], true));
    const decoded = decodeOnnx(encodeOnnx(model));
    assert.deepEqual(decoded, model);
  });

  it('refuses bytes that are not ONNX, and an empty graph', () => {
    for (const bad of [
      new Uint8Array([0xff, 0xff, 0xff, 0x07, 1, 2, 3]),
      new TextEncoder().encode('not a model at all'),
      new Uint8Array(),
    ]) {
      assert.throws(
        () => decodeOnnx(bad),
        (e) => isFleetError(e, 'MODEL_MALFORMED'),
      );
    }
  });

  it('refuses a model truncated in the middle of its weights', () => {
    const bytes = encodeOnnx(buildDenseModel(randomArch([30, 20, 4], true)));
    assert.throws(
      () => decodeOnnx(bytes.subarray(0, bytes.length >> 1)),
      (e) => isFleetError(e, 'MODEL_MALFORMED'),
    );
  });

  it('refuses weights that do not fit the architecture, naming the layer', () => {
    const arch = randomArch([6, 4, 3], true);
    arch.layers[1]!.bias = new Float32Array(2);
    assert.throws(
      () => buildDenseModel(arch),
      (e) => isFleetError(e, 'MODEL_UNSUPPORTED') && /layer 1/.test(e.message),
    );
  });
});
