/**
 * The control plane's path for candidate bundles: weights -> signed bundle ->
 * verified -> `readTrainingWeights` -> the same weights (exactly for float32,
 * within int8 rounding for int8), through the factory's budget; and the
 * tensor-list conversions around it.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { isFleetError, verifyBundle, type NamedTensor } from '@fleet/protocol';
import { IN_A_YEAR, NOW_MS, testTrust, type TestTrust } from '@fleet/protocol/testing';
import { decodeOnnx, encodeOnnx } from '../../adapters/onnx/onnx-codec.ts';
import { createOnnxRunner } from '../../adapters/onnx/runtime.ts';
import type { EvalData } from '../data/eval-data.ts';
import { argmaxRow } from '../evaluation/classifier-accuracy.ts';
import { buildDenseModel, type DenseArchitecture } from '../onnx/dense-builder.ts';
import {
  denseArchitectureFromTensors,
  denseArchitectureSpec,
  denseTensorsOf,
} from '../onnx/dense-tensors.ts';
import { xorshift32 } from '../random.ts';
import { buildDenseBundle, type DenseBundleInput } from './build-dense-bundle.ts';
import { readTrainingWeights, type TrainingWeightsEncoding } from './training-part.ts';

const ports = { decode: decodeOnnx, encode: encodeOnnx, createRunner: createOnnxRunner };
const next = xorshift32(23);
const floats = (n: number, scale: number) =>
  Float32Array.from({ length: n }, () => (next() / 2 ** 32 - 0.5) * scale);

let trust: TestTrust;
before(async () => {
  trust = await testTrust();
});

const manifest = {
  name: 'candidate',
  version: '1.1.0',
  release: 2,
  hardware: ['rpi4'],
  minAgentVersion: '0.1.0',
  issuedAt: '2026-11-26T00:00:00Z',
  expires: IN_A_YEAR,
  lineage: {
    producer: { kind: 'federated-round' as const, roundId: 'r-1', participants: 10 },
    parent: { version: '1.0.0', release: 1 },
  },
};

/** A 784-200-200-10 model (the reference 2NN's shape) with random weights. */
function twoNn(): DenseArchitecture {
  const layer = (inputs: number, units: number, activation: 'relu' | 'linear') => ({
    units,
    activation,
    weights: floats(inputs * units, 0.2),
    bias: floats(units, 0.1),
  });
  return {
    inputSize: 784,
    softmaxOutput: true,
    layers: [layer(784, 200, 'relu'), layer(200, 200, 'relu'), layer(200, 10, 'linear')],
  };
}

const evalData = (features: number, samples: number): EvalData => ({
  sampleCount: samples,
  featureCount: features,
  classCount: 0,
  features: floats(samples * features, 1),
  labels: null,
});

function input(
  architecture: DenseArchitecture,
  weights: TrainingWeightsEncoding,
  extra: Partial<DenseBundleInput> = {},
): DenseBundleInput {
  return {
    architecture,
    evalData: evalData(architecture.inputSize, 64),
    manifest,
    signers: trust.bundleKeys.slice(0, 2),
    training: { weights },
    ...extra,
  };
}

async function roundTrip(architecture: DenseArchitecture, weights: TrainingWeightsEncoding) {
  const { bundle } = await buildDenseBundle(input(architecture, weights), ports);
  const verified = await verifyBundle(bundle, {
    root: trust.root,
    nowMs: NOW_MS,
    installedRelease: 1,
    hardwareClass: 'rpi4',
  });
  return readTrainingWeights(verified);
}

describe('buildDenseBundle -> readTrainingWeights', () => {
  it('float32: gives back exactly the weights, and they rebuild the same architecture', async () => {
    const arch = twoNn();
    const read = await roundTrip(arch, 'float32');
    assert.deepEqual(read.architecture, denseArchitectureSpec(arch));
    assert.equal(read.encoding, 'float32');
    assert.deepEqual(read.tensors, denseTensorsOf(arch));
    const rebuilt = denseArchitectureFromTensors(read.architecture, read.tensors);
    assert.deepEqual(rebuilt, { inputSize: 784, softmaxOutput: true, layers: arch.layers });
  });

  it('int8: gives back the weights within half a channel scale, biases exactly', async () => {
    const arch = twoNn();
    const read = await roundTrip(arch, 'int8');
    assert.equal(read.encoding, 'mixed');
    const original = denseTensorsOf(arch);
    read.tensors.forEach((tensor, t) => {
      const want = original[t]!;
      assert.deepEqual([tensor.name, tensor.dims], [want.name, want.dims]);
      if (tensor.name.endsWith('/bias')) {
        assert.deepEqual(tensor.values, want.values);
        return;
      }
      const units = want.dims[1]!;
      const maxAbs = new Float64Array(units);
      want.values.forEach(
        (v, k) => (maxAbs[k % units] = Math.max(maxAbs[k % units]!, Math.abs(v))),
      );
      let changed = 0;
      tensor.values.forEach((v, k) => {
        const scale = Math.fround(maxAbs[k % units]! / 127);
        assert.ok(
          Math.abs(v - want.values[k]!) <= scale / 2 + scale * 1e-6,
          `${tensor.name}[${k}]`,
        );
        if (v !== want.values[k]) changed++;
      });
      assert.ok(changed > 0, 'int8 rounding changes weights');
    });
  });

  it('runs the accuracy budget like any build (ACCURACY_BUDGET)', async () => {
    // One huge weight per output channel swamps the small ones that decide the class in int8.
    const weights = floats(8 * 4, 0.02);
    for (let c = 0; c < 4; c++) weights[c] = 1000;
    const arch: DenseArchitecture = {
      inputSize: 8,
      softmaxOutput: true,
      layers: [{ units: 4, activation: 'linear', weights, bias: new Float32Array(4) }],
    };
    const data = evalData(8, 200);
    for (let i = 0; i < data.sampleCount; i++) data.features[i * 8] = 0;
    const runner = await createOnnxRunner(encodeOnnx(buildDenseModel(arch)));
    const scores = await runner.run(data.features, data.sampleCount);
    await runner.close();
    const labelled = {
      ...data,
      classCount: 4,
      labels: Uint8Array.from({ length: 200 }, (_, r) => argmaxRow(scores, r, 4)),
    };
    await assert.rejects(
      buildDenseBundle(input(arch, 'int8', { evalData: labelled }), ports),
      (e) => isFleetError(e, 'ACCURACY_BUDGET'),
    );
  });
});

describe('denseArchitectureFromTensors', () => {
  it('refuses tensors that are not the architecture’s, in order (MALFORMED)', () => {
    const arch = twoNn();
    const spec = denseArchitectureSpec(arch);
    const tensors = denseTensorsOf(arch);
    const cases: NamedTensor[][] = [
      tensors.slice(0, 5),
      [tensors[1]!, tensors[0]!, ...tensors.slice(2)],
      tensors.map((t, i) => (i === 2 ? { ...t, dims: [100, 400] } : t)),
    ];
    for (const list of cases) {
      assert.throws(
        () => denseArchitectureFromTensors(spec, list),
        (e) => isFleetError(e, 'MALFORMED'),
      );
    }
  });

  it('copies the values, so later edits of the tensors do not change the model', () => {
    const arch = twoNn();
    const tensors = denseTensorsOf(arch);
    const rebuilt = denseArchitectureFromTensors(denseArchitectureSpec(arch), tensors);
    const before = rebuilt.layers[0]!.weights[0];
    tensors[0]!.values[0] = 42;
    assert.equal(rebuilt.layers[0]!.weights[0], before);
  });
});
