/**
 * The reference model end to end: trained with TensorFlow.js on the fixed
 * split, exported to ONNX, and scored by onnxruntime on the 2,000 held-out
 * digits. Takes about a minute on two cores.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { mnistSplit } from '../mnist/mnist-split.ts';
import { buildDenseModel } from '../../core/onnx/dense-builder.ts';
import { classifierAccuracy } from '../../core/evaluation/classifier-accuracy.ts';
import { encodeOnnx } from '../onnx/onnx-codec.ts';
import { createOnnxRunner } from '../onnx/runtime.ts';
import { trainReferenceModel } from './train-reference.ts';

it('the reference 2NN reaches at least 95% on the held-out digits, measured on its ONNX export', async () => {
  const { train, test } = mnistSplit();
  const reports: number[] = [];
  const trained = await trainReferenceModel({
    train,
    test,
    onEpoch: (r) => reports.push(r.testAccuracy),
  });
  assert.equal(reports.length, 15);
  const runner = await createOnnxRunner(encodeOnnx(buildDenseModel(trained.architecture)));
  const accuracy = await classifierAccuracy(runner, test);
  await runner.close();
  assert.ok(accuracy >= 0.95, `ONNX test accuracy ${accuracy}`);
  // The export computes what TensorFlow.js computed.
  assert.ok(
    Math.abs(accuracy - reports.at(-1)!) <= 0.001,
    `onnx ${accuracy} vs tfjs ${reports.at(-1)}`,
  );
});
