/**
 * The reference model end to end: trained with TensorFlow.js on the fixed
 * split, exported to ONNX, and scored by onnxruntime on the 2,000 held-out
 * digits. Takes about a minute on two cores.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { mnistSplit } from '../mnist/mnist-split.ts';
import { buildDenseModel } from '../../core/onnx/dense-builder.ts';
import { encodeOnnx } from '../onnx/onnx-codec.ts';
import { createOnnxRunner } from '../onnx/runtime.ts';
import { trainReferenceModel } from './train-reference.ts';
import { quantizeWeights } from '../../core/quantize/quantize-weights.ts';
import { evaluatePair } from '../../core/build/evaluate-pair.ts';

it('the reference 2NN reaches >= 95% on held-out digits as ONNX; int8 loses <= 0.5 points at <= 30% of the bytes', async () => {
  const { train, test } = await mnistSplit();
  const reports: number[] = [];
  const trained = await trainReferenceModel({
    train,
    test,
    onEpoch: (r) => reports.push(r.testAccuracy),
  });
  assert.equal(reports.length, 15);
  const floatModel = buildDenseModel(trained.architecture);
  const floatBytes = encodeOnnx(floatModel);
  const int8Bytes = encodeOnnx(quantizeWeights(floatModel).model);
  const runner = await createOnnxRunner(floatBytes);
  const int8Runner = await createOnnxRunner(int8Bytes);
  const pair = await evaluatePair(runner, int8Runner, test);
  await Promise.all([runner.close(), int8Runner.close()]);
  const [accuracy, int8Accuracy, agreement] = [
    pair.float.accuracy!,
    pair.int8.accuracy!,
    pair.top1Agreement,
  ];
  assert.ok(accuracy - int8Accuracy <= 0.005, `float ${accuracy}, int8 ${int8Accuracy}`);
  assert.ok(agreement >= 0.99, `top-1 agreement ${agreement}`);
  assert.ok(
    int8Bytes.length <= 0.3 * floatBytes.length,
    `${int8Bytes.length} vs ${floatBytes.length} bytes`,
  );
  assert.ok(accuracy >= 0.95, `ONNX test accuracy ${accuracy}`);
  // The export computes what TensorFlow.js computed.
  assert.ok(
    Math.abs(accuracy - reports.at(-1)!) <= 0.001,
    `onnx ${accuracy} vs tfjs ${reports.at(-1)}`,
  );
});
