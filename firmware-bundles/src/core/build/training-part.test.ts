/**
 * The bundle's training part: exactly the shipped int8 numbers (or the float
 * weights), the manifest field, refusals of a graph that is not the declared
 * architecture, and the control plane's reading side. Real codec, onnxruntime
 * and bundle verification.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import {
  decodeTensorSet,
  encodeTensorSet,
  isFleetError,
  manifestTrainingSchema,
  verifyBundle,
  type VerifiedBundle,
} from '@fleet/protocol';
import { IN_A_YEAR, NOW_MS, testTrust, type TestTrust } from '@fleet/protocol/testing';
import { decodeOnnx, encodeOnnx } from '../../adapters/onnx/onnx-codec.ts';
import { createOnnxRunner } from '../../adapters/onnx/runtime.ts';
import type { EvalData } from '../data/eval-data.ts';
import { buildDenseModel, type DenseArchitecture } from '../onnx/dense-builder.ts';
import { quantizeWeights } from '../quantize/quantize-weights.ts';
import { xorshift32 } from '../random.ts';
import { buildBundle, type BuildInput } from './build-bundle.ts';
import {
  readTrainingWeights,
  TENSOR_SET_MEDIA_TYPE,
  TRAINING_WEIGHTS_PART,
  type TrainingWeightsEncoding,
} from './training-part.ts';

const ports = { decode: decodeOnnx, encode: encodeOnnx, createRunner: createOnnxRunner };
const next = xorshift32(11);
const floats = (n: number, scale: number) =>
  Float32Array.from({ length: n }, () => (next() / 2 ** 32 - 0.5) * scale);

let trust: TestTrust;
before(async () => {
  trust = await testTrust();
});

const manifest = {
  name: 'unit',
  version: '1.0.0',
  release: 1,
  hardware: ['rpi4'],
  minAgentVersion: '0.1.0',
  issuedAt: '2026-11-26T00:00:00Z',
  expires: IN_A_YEAR,
  lineage: { producer: { kind: 'import' as const } },
};

const twoLayer = (): DenseArchitecture => ({
  inputSize: 16,
  softmaxOutput: true,
  layers: [
    { units: 12, activation: 'relu', weights: floats(16 * 12, 1), bias: floats(12, 0.2) },
    { units: 4, activation: 'linear', weights: floats(12 * 4, 3), bias: floats(4, 0.2) },
  ],
});

const unlabelled = (features: number, samples = 40): EvalData => ({
  sampleCount: samples,
  featureCount: features,
  classCount: 0,
  features: floats(samples * features, 2),
  labels: null,
});

function input(
  arch: DenseArchitecture,
  weights: TrainingWeightsEncoding,
  extra: Partial<BuildInput> = {},
): BuildInput {
  return {
    floatModel: encodeOnnx(buildDenseModel(arch)),
    evalData: unlabelled(arch.inputSize),
    manifest,
    signers: trust.bundleKeys.slice(0, 2),
    training: { architecture: arch, weights },
    ...extra,
  };
}

async function build(arch: DenseArchitecture, weights: TrainingWeightsEncoding) {
  const result = await buildBundle(input(arch, weights), ports);
  const verified = await verifyBundle(result.bundle, {
    root: trust.root,
    nowMs: NOW_MS,
    installedRelease: 0,
    hardwareClass: 'rpi4',
  });
  return { result, verified };
}

function floatInitializer(model: ReturnType<typeof buildDenseModel>, name: string) {
  return model.initializers.find((t) => t.name === name)!.data as Float32Array;
}

describe('buildBundle with training weights', () => {
  it('int8: the part holds the quantized model’s own int8 kernels and scales, float32 biases', async () => {
    const arch = twoLayer();
    const { result, verified } = await build(arch, 'int8');
    const entry = verified.manifest.parts.find((p) => p.name === TRAINING_WEIGHTS_PART)!;
    assert.equal(entry.mediaType, TENSOR_SET_MEDIA_TYPE);
    assert.deepEqual(verified.manifest.training, {
      architecture: {
        kind: 'dense',
        inputSize: 16,
        softmaxOutput: true,
        layers: [
          { units: 12, activation: 'relu' },
          { units: 4, activation: 'linear' },
        ],
      },
      weightsPart: TRAINING_WEIGHTS_PART,
    });
    assert.ok(manifestTrainingSchema.safeParse(verified.manifest.training).success);
    const part = verified.parts.get(TRAINING_WEIGHTS_PART)!;
    assert.deepEqual(result.training, {
      part: TRAINING_WEIGHTS_PART,
      encoding: 'int8',
      partBytes: part.length,
      tensors: 4,
      parameters: 16 * 12 + 12 + 12 * 4 + 4,
    });

    const decoded = decodeTensorSet(part);
    assert.equal(decoded.encoding, 'mixed');
    // The quantized model's initializers, as the factory makes them: q x scale per output channel.
    const quantized = quantizeWeights(buildDenseModel(arch)).model;
    const init = new Map(quantized.initializers.map((t) => [t.name, t.data]));
    arch.layers.forEach((layer, i) => {
      const q = init.get(`dense_${i}/kernel/int8`) as Int8Array;
      const scales = init.get(`dense_${i}/kernel/scale`) as Float32Array;
      const expected = Float32Array.from(q, (v, k) => v * scales[k % layer.units]!);
      assert.deepEqual(decoded.quantization[2 * i], {
        name: `dense_${i}/kernel`,
        dtype: 'int8',
        scales,
      });
      assert.deepEqual(decoded.tensors[2 * i]!.values, expected, `dense_${i}/kernel`);
      assert.deepEqual(decoded.tensors[2 * i + 1]!.values, layer.bias, `dense_${i}/bias`);
      assert.equal(decoded.quantization[2 * i + 1]!.dtype, 'float32');
    });
  });

  it('int8: dequantized kernels equal onnxruntime’s DequantizeLinear outputs in the shipped model', async () => {
    const { verified } = await build(twoLayer(), 'int8');
    const shipped = decodeOnnx(verified.parts.get('model.onnx')!);
    const { tensors } = readTrainingWeights(verified);
    for (const [i, name] of ['dense_0/kernel', 'dense_1/kernel'].entries()) {
      // The shipped DequantizeLinear node and its initializers, its output read through `+ 0`.
      const dq = shipped.nodes.find(
        (n) => n.opType === 'DequantizeLinear' && n.outputs[0] === name,
      )!;
      const dims = tensors[2 * i]!.dims;
      const probe = {
        ...shipped,
        inputs: [{ name: 'zero', dataType: 'float32' as const, shape: dims }],
        outputs: [{ name: 'out', dataType: 'float32' as const, shape: dims }],
        initializers: shipped.initializers.filter((t) => dq.inputs.includes(t.name)),
        nodes: [
          dq,
          {
            name: 'read',
            opType: 'Add',
            domain: '',
            inputs: [name, 'zero'],
            outputs: ['out'],
            attributes: {},
          },
        ],
      };
      const runner = await createOnnxRunner(encodeOnnx(probe));
      const served = await runner.run(new Float32Array(dims[0]! * dims[1]!), dims[0]!);
      await runner.close();
      assert.deepEqual(tensors[2 * i]!.values, served, name);
    }
  });

  it('float32: the part holds the float weights exactly', async () => {
    const arch = twoLayer();
    const { verified, result } = await build(arch, 'float32');
    const decoded = decodeTensorSet(verified.parts.get(TRAINING_WEIGHTS_PART)!);
    assert.equal(decoded.encoding, 'float32');
    const model = buildDenseModel(arch);
    assert.deepEqual(
      decoded.tensors.map((t) => [t.name, t.dims, t.values]),
      model.initializers.map((t) => [t.name, t.dims, floatInitializer(model, t.name)]),
    );
    assert.equal(result.training!.encoding, 'float32');
  });

  it('without training, no part and no manifest field', async () => {
    const arch = twoLayer();
    const result = await buildBundle({ ...input(arch, 'int8'), training: undefined }, ports);
    assert.equal(result.training, null);
    const verified = await verifyBundle(result.bundle, {
      root: trust.root,
      nowMs: NOW_MS,
      installedRelease: 0,
      hardwareClass: null,
    });
    assert.equal(verified.manifest.training, undefined);
    assert.equal(verified.parts.has(TRAINING_WEIGHTS_PART), false);
  });

  it('refuses an architecture that is not the model’s graph (TRAINING_SPEC), naming the difference', async () => {
    const arch = twoLayer();
    const spec = { inputSize: 16, softmaxOutput: true, layers: arch.layers };
    const cases: [DenseArchitecture | typeof spec, RegExp][] = [
      [{ ...spec, inputSize: 15 }, /input size is 15 in the architecture, 16 in the graph/],
      [{ ...spec, softmaxOutput: false }, /softmaxOutput/],
      [{ ...spec, layers: [arch.layers[0]!] }, /layer count is 1/],
      [
        { ...spec, layers: [{ ...arch.layers[0]!, units: 13 }, arch.layers[1]!] },
        /layer 0's units is 13/,
      ],
      [
        { ...spec, layers: [arch.layers[0]!, { ...arch.layers[1]!, activation: 'relu' }] },
        /layer 1's activation is relu/,
      ],
      [{ ...spec, layers: [] }, /training architecture layers/],
    ];
    for (const [architecture, message] of cases) {
      await assert.rejects(
        buildBundle(input(arch, 'int8', { training: { architecture, weights: 'int8' } }), ports),
        (e) => isFleetError(e, 'TRAINING_SPEC') && message.test(e.message),
        String(message),
      );
    }
  });

  it('refuses training weights for a graph that is not a plain dense one (TRAINING_SPEC)', async () => {
    const arch = twoLayer();
    const graph = buildDenseModel(arch);
    const relu = graph.nodes.findIndex((n) => n.opType === 'Relu');
    graph.nodes[relu] = { ...graph.nodes[relu]!, opType: 'Sigmoid' };
    await assert.rejects(
      buildBundle({ ...input(arch, 'float32'), floatModel: encodeOnnx(graph) }, ports),
      (e) => isFleetError(e, 'TRAINING_SPEC') && /Sigmoid/.test(e.message),
    );
  });
});

describe('readTrainingWeights', () => {
  let verified: VerifiedBundle;
  before(async () => {
    verified = (await build(twoLayer(), 'int8')).verified;
  });

  it('refuses a bundle without a training field or its part (TRAINING_SPEC)', () => {
    const plain = { ...verified.manifest, training: undefined };
    assert.throws(
      () => readTrainingWeights({ ...verified, manifest: plain }),
      (e) => isFleetError(e, 'TRAINING_SPEC') && /no valid training field/.test(e.message),
    );
    assert.throws(
      () => readTrainingWeights({ manifest: verified.manifest, parts: new Map() }),
      (e) => isFleetError(e, 'TRAINING_SPEC') && /no part weights.ftns/.test(e.message),
    );
  });

  it('refuses a part that is not exactly the architecture’s tensors (MALFORMED)', () => {
    const good = readTrainingWeights(verified).tensors;
    const swapped = encodeTensorSet([good[1]!, good[0]!, good[2]!, good[3]!], {
      encoding: 'float32',
    });
    const other = (bytes: Uint8Array) => ({
      manifest: verified.manifest,
      parts: new Map([[TRAINING_WEIGHTS_PART, bytes]]),
    });
    assert.throws(
      () => readTrainingWeights(other(swapped)),
      (e) => isFleetError(e, 'MALFORMED') && /expected dense_0\/kernel/.test(e.message),
    );
    const short = encodeTensorSet(good.slice(0, 2), { encoding: 'float32' });
    assert.throws(
      () => readTrainingWeights(other(short)),
      (e) => isFleetError(e, 'MALFORMED'),
    );
    assert.throws(
      () => readTrainingWeights(other(new Uint8Array([1, 2, 3]))),
      (e) => isFleetError(e, 'MALFORMED'),
    );
  });
});
