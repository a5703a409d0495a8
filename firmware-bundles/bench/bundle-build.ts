/**
 * The bundle factory's figures, end to end on the reference model.
 *
 *   npm run bench:bundles
 *
 * Trains the MNIST 2NN on the fixed split, builds its int8 bundle against the
 * 2,000 test digits, and prints progress, then (last line) one JSON object:
 * float vs int8 bytes and compressed bytes, accuracy, onnxruntime p50 latency
 * for one input and per input in a batch of 64, training and build time, and
 * the training part (`weights.ftns`): the bundle carries it int8, and the
 * float32 part of the same weights is measured beside it.
 */
import { generateKeyPair, keyIdOf } from '@fleet/protocol';
import { mnistSplit } from '../src/adapters/mnist/mnist-split.ts';
import { trainReferenceModel } from '../src/adapters/tfjs/train-reference.ts';
import { decodeOnnx, encodeOnnx } from '../src/adapters/onnx/onnx-codec.ts';
import { createOnnxRunner } from '../src/adapters/onnx/runtime.ts';
import { buildDenseModel } from '../src/core/onnx/dense-builder.ts';
import { buildBundle } from '../src/core/build/build-bundle.ts';
import { trainingPart } from '../src/core/build/training-part.ts';
import { quantizeWeights } from '../src/core/quantize/quantize-weights.ts';

const log = (line: string) => process.stderr.write(`${line}\n`);

const { train, test } = await mnistSplit();
log('training the reference model...');
const t0 = performance.now();
const trained = await trainReferenceModel({
  train,
  test,
  onEpoch: (r) =>
    log(`  epoch ${r.epoch}/${r.epochs} test accuracy ${(r.testAccuracy * 100).toFixed(2)}%`),
});
const trainingMs = performance.now() - t0;
const floatGraph = buildDenseModel(trained.architecture);
const floatModel = encodeOnnx(floatGraph);
const pair = generateKeyPair();
const signer = { keyId: await keyIdOf(pair.publicKey), secretKey: pair.secretKey };
log('building the bundle...');
const t1 = performance.now();
const result = await buildBundle(
  {
    floatModel,
    evalData: test,
    signers: [signer],
    manifest: {
      name: 'mnist-2nn',
      version: '1.0.0',
      release: 1,
      hardware: ['bench'],
      minAgentVersion: '0.1.0',
      issuedAt: new Date().toISOString(),
      expires: new Date(Date.now() + 86_400_000).toISOString(),
      lineage: { producer: { kind: 'train-reference' } },
    },
    training: { architecture: trained.architecture, weights: 'int8' },
  },
  { decode: decodeOnnx, encode: encodeOnnx, createRunner: createOnnxRunner },
);
const buildMs = performance.now() - t1;
const t2 = performance.now();
const float32Part = trainingPart(floatGraph, quantizeWeights(floatGraph).model, {
  architecture: trained.architecture,
  weights: 'float32',
});
const float32PartMs = performance.now() - t2;
const { float, int8 } = result.evaluation;
console.log(
  JSON.stringify({
    bench: 'bundles.reference-build',
    backend: trained.backend,
    float: {
      bytes: result.sizes.floatBytes,
      compressedBytes: result.sizes.floatCompressedBytes,
      ...float,
    },
    int8: {
      bytes: result.sizes.int8Bytes,
      compressedBytes: result.sizes.int8CompressedBytes,
      ...int8,
    },
    int8ToFloatBytes: +(result.sizes.int8Bytes / result.sizes.floatBytes).toFixed(3),
    top1Agreement: result.evaluation.top1Agreement,
    bundleBytes: result.bundle.length,
    training: {
      part: result.training!.part,
      parameters: result.training!.parameters,
      int8PartBytes: result.training!.partBytes,
      float32PartBytes: float32Part.report.partBytes,
      float32PartMs: Math.round(float32PartMs),
    },
    trainingMs: Math.round(trainingMs),
    buildMs: Math.round(buildMs),
  }),
);
