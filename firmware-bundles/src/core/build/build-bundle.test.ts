/**
 * The factory's refusals and its product, with the real codec and onnxruntime.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { generateKeyPair, isFleetError, keyIdOf, type Signer } from '@fleet/protocol';
import { decodeOnnx, encodeOnnx } from '../../adapters/onnx/onnx-codec.ts';
import { createOnnxRunner } from '../../adapters/onnx/runtime.ts';
import type { EvalData } from '../data/eval-data.ts';
import { buildDenseModel, type DenseArchitecture } from '../onnx/dense-builder.ts';
import { xorshift32 } from '../random.ts';
import { buildBundle, type BuildInput } from './build-bundle.ts';
import { argmaxRow } from '../evaluation/classifier-accuracy.ts';

const ports = { decode: decodeOnnx, encode: encodeOnnx, createRunner: createOnnxRunner };
const next = xorshift32(5);
const floats = (n: number, scale: number) =>
  Float32Array.from({ length: n }, () => (next() / 2 ** 32 - 0.5) * scale);

let signer: Signer;
before(async () => {
  const pair = generateKeyPair();
  signer = { keyId: await keyIdOf(pair.publicKey), secretKey: pair.secretKey };
});

const manifest = {
  name: 'unit',
  version: '1.0.0',
  release: 1,
  hardware: ['rpi4'],
  minAgentVersion: '0.1.0',
  issuedAt: '2026-11-26T00:00:00Z',
  expires: '2027-11-26T00:00:00Z',
  lineage: { producer: { kind: 'import' as const } },
};

/** Random evaluation data labelled with the float model's own predictions (float accuracy 100%). */
function selfLabelled(model: Uint8Array, features: number, samples = 200): Promise<EvalData> {
  const x = floats(samples * features, 2);
  return selfLabelledFrom(model, {
    sampleCount: samples,
    featureCount: features,
    classCount: 4,
    features: x,
    labels: null,
  });
}

const sturdy = (): DenseArchitecture => ({
  inputSize: 16,
  softmaxOutput: true,
  layers: [
    { units: 32, activation: 'relu', weights: floats(16 * 32, 1), bias: floats(32, 0.2) },
    { units: 4, activation: 'linear', weights: floats(32 * 4, 4), bias: floats(4, 0.2) },
  ],
});

/** One huge weight per output channel: int8 scales swamp the small weights that decide the class. */
function fragile(): DenseArchitecture {
  const weights = floats(8 * 4, 0.02);
  for (let c = 0; c < 4; c++) weights[c] = 1000; // row 0 of each column; feature 0 is always 0 below
  return {
    inputSize: 8,
    softmaxOutput: true,
    layers: [{ units: 4, activation: 'linear', weights, bias: new Float32Array(4) }],
  };
}

function input(
  floatModel: Uint8Array,
  evalData: EvalData,
  extra: Partial<BuildInput> = {},
): BuildInput {
  return { floatModel, evalData, manifest, signers: [signer], ...extra };
}

describe('buildBundle', () => {
  it('builds a signed bundle with the int8 model, golden vectors and the report', async () => {
    const model = encodeOnnx(buildDenseModel(sturdy()));
    const data = await selfLabelled(model, 16);
    const result = await buildBundle(input(model, data), ports);
    assert.equal(result.evaluation.float.accuracy, 1);
    assert.ok(result.evaluation.int8.accuracy! >= 0.99);
    assert.ok(result.sizes.int8Bytes < result.sizes.floatBytes);
    assert.ok(result.evaluation.float.p50LatencyMs > 0);
    assert.ok(result.bundle.length > 0);
  });

  it('refuses a model that breaks the accuracy budget (ACCURACY_BUDGET)', async () => {
    const model = encodeOnnx(buildDenseModel(fragile()));
    const data = await selfLabelled(model, 8);
    for (let i = 0; i < data.sampleCount; i++) data.features[i * 8] = 0;
    const relabelled = await selfLabelledFrom(model, data);
    await assert.rejects(buildBundle(input(model, relabelled), ports), (e) =>
      isFleetError(e, 'ACCURACY_BUDGET'),
    );
    // and the same model passes when the budget allows the loss
    await buildBundle(input(model, relabelled, { maxAccuracyDropPoints: 100 }), ports);
  });

  it('refuses a corrupt ONNX file (MODEL_MALFORMED)', async () => {
    const model = encodeOnnx(buildDenseModel(sturdy()));
    const data = await selfLabelled(model, 16);
    await assert.rejects(buildBundle(input(model.subarray(0, 200), data), ports), (e) =>
      isFleetError(e, 'MODEL_MALFORMED'),
    );
  });

  it('refuses an unsupported op, naming it (MODEL_UNSUPPORTED)', async () => {
    const graph = buildDenseModel(sturdy());
    graph.nodes.push({
      name: 'odd',
      opType: 'NonMaxSuppression',
      domain: '',
      inputs: ['probabilities'],
      outputs: ['odd'],
      attributes: {},
    });
    const data = await selfLabelled(encodeOnnx(buildDenseModel(sturdy())), 16);
    await assert.rejects(
      buildBundle(input(encodeOnnx(graph), data), ports),
      (e) => isFleetError(e, 'MODEL_UNSUPPORTED') && /NonMaxSuppression/.test(e.message),
    );
  });

  it('refuses evaluation data whose shape does not fit the model input (EVAL_DATA_MISMATCH)', async () => {
    const model = encodeOnnx(buildDenseModel(sturdy()));
    const data = await selfLabelled(encodeOnnx(buildDenseModel(fragile())), 8);
    await assert.rejects(
      buildBundle(input(model, data), ports),
      (e) => isFleetError(e, 'EVAL_DATA_MISMATCH') && /16/.test(e.message),
    );
  });
});

/** `data` relabelled with the model's predictions (4 classes). */
async function selfLabelledFrom(model: Uint8Array, data: EvalData): Promise<EvalData> {
  const runner = await createOnnxRunner(model);
  const scores = await runner.run(data.features, data.sampleCount);
  await runner.close();
  const labels = Uint8Array.from({ length: data.sampleCount }, (_, r) => argmaxRow(scores, r, 4));
  return { ...data, labels };
}
