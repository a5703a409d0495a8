/**
 * The activation self-test on real models: the factory's int8 model passes
 * its bundle's golden vectors through onnxruntime, and the same model with
 * its last layer's weights scaled after quantization fails them.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import {
  mnistShapedBundle,
  scaledAfterQuantization,
  type TestBundle,
} from '../../__fixtures__/mnist-shaped-bundle.ts';
import { runSelfTest } from '../../core/self-test.ts';
import { createModelRuntime } from './model-runtime.ts';

let bundle: TestBundle;
before(async () => {
  bundle = await mnistShapedBundle();
});

describe('golden self-test on onnxruntime', () => {
  it('passes the model the factory built, on all its golden cases', async () => {
    assert.equal(bundle.golden.cases.length, 32);
    const runtime = createModelRuntime();
    const model = await runtime.load(bundle.bundleId, bundle.modelBytes, bundle.io);
    const report = await runSelfTest(model, bundle.golden);
    runtime.release(bundle.bundleId);
    assert.equal(report.ok, true, report.message);
    assert.ok(report.worstDiff <= bundle.golden.tolerance);
  });

  it('fails the model with its weights scaled after quantization', async () => {
    for (const factor of [1.05, 0.5]) {
      const sabotaged = scaledAfterQuantization(bundle.modelBytes, factor);
      const runtime = createModelRuntime();
      // Same tensors as the manifest: the io check cannot catch it, the golden vectors must.
      const model = await runtime.load('sabotaged', sabotaged, bundle.io);
      const report = await runSelfTest(model, bundle.golden);
      runtime.release('sabotaged');
      assert.equal(report.ok, false, `factor ${factor}: ${report.message}`);
      assert.equal(report.failedCase, 0);
      assert.ok(report.worstDiff > bundle.golden.tolerance);
      assert.match(report.message, /case 0 is outside tolerance/);
    }
  });
});
