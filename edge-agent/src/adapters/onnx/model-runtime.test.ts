/**
 * The onnxruntime model runtime on a real int8 bundle: batches run, sessions
 * are shared and reference-counted by key, and a model whose tensors are not
 * its manifest's io is refused before anything can serve it.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import ort from 'onnxruntime-node';
import { isFleetError } from '@fleet/protocol';
import {
  denseModel,
  MNIST_CLASSES,
  MNIST_WIDTH,
  mnistShapedBundle,
  type TestBundle,
} from '../../__fixtures__/mnist-shaped-bundle.ts';
import type { ManifestIo } from '../../core/loaded-model.ts';
import { createModelRuntime } from './model-runtime.ts';

let bundle: TestBundle;
before(async () => {
  bundle = await mnistShapedBundle();
});

/** A runtime whose sessions are real, with counts of creations and releases. */
function countingRuntime() {
  const counts = { created: 0, released: 0 };
  const runtime = createModelRuntime({
    createSession: async (bytes) => {
      counts.created++;
      const session = await ort.InferenceSession.create(bytes);
      const release = session.release.bind(session);
      session.release = () => {
        counts.released++;
        return release();
      };
      return session;
    },
  });
  return { runtime, counts };
}

const rejectsWith = (promise: Promise<unknown>, code: string, message?: RegExp) =>
  assert.rejects(promise, (e: unknown) => {
    assert.ok(isFleetError(e, code), `expected ${code}, got ${String(e)}`);
    if (message) assert.match(e.message, message);
    return true;
  });

/** `count` rows of the golden inputs (they are real MNIST digits). */
function goldenRows(count: number): Float32Array {
  return Float32Array.from(bundle.golden.cases.slice(0, count).flatMap((c) => c.input));
}

describe('createModelRuntime', () => {
  it('runs a batch of the real int8 model: 10 probabilities a row', async () => {
    const runtime = createModelRuntime();
    const model = await runtime.load(bundle.bundleId, bundle.modelBytes, bundle.io);
    assert.deepEqual(
      [model.inputName, model.outputName, model.inputWidth],
      ['input', 'probabilities', MNIST_WIDTH],
    );
    const { outputs, outputWidth } = await model.run(goldenRows(5), 5);
    assert.equal(outputWidth, MNIST_CLASSES);
    assert.equal(outputs.length, 5 * MNIST_CLASSES);
    for (let r = 0; r < 5; r++) {
      const row = outputs.subarray(r * 10, r * 10 + 10);
      assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-5);
      // the same numbers the factory recorded for this digit
      row.forEach((v, j) => assert.ok(Math.abs(v - bundle.golden.cases[r]!.output[j]!) < 1e-6));
    }
    runtime.release(bundle.bundleId);
  });

  it('shares one session per key and closes it when the last reference goes', async () => {
    const { runtime, counts } = countingRuntime();
    const a = await runtime.load(bundle.bundleId, bundle.modelBytes, bundle.io);
    const b = await runtime.load(bundle.bundleId, bundle.modelBytes, bundle.io);
    assert.equal(counts.created, 1);
    assert.equal(runtime.references(bundle.bundleId), 2);

    runtime.release(bundle.bundleId);
    assert.equal(counts.released, 0);
    await a.run(goldenRows(1), 1); // still open for the other holder

    runtime.release(bundle.bundleId);
    assert.equal(runtime.references(bundle.bundleId), 0);
    await waitFor(() => counts.released === 1);
    await rejectsWith(b.run(goldenRows(1), 1), 'MODEL_RELEASED');
    runtime.release(bundle.bundleId); // unknown now: ignored
    assert.equal(counts.released, 1);

    // Loading again opens a fresh session.
    const c = await runtime.load(bundle.bundleId, bundle.modelBytes, bundle.io);
    assert.equal(counts.created, 2);
    await c.run(goldenRows(1), 1);
    runtime.release(bundle.bundleId);
  });

  it('1,000 agents loading the same bundle at once hold one session', async () => {
    const { runtime, counts } = countingRuntime();
    const models = await Promise.all(
      Array.from({ length: 1000 }, () =>
        runtime.load(bundle.bundleId, bundle.modelBytes, bundle.io),
      ),
    );
    assert.equal(counts.created, 1);
    assert.equal(runtime.references(bundle.bundleId), 1000);
    const results = await Promise.all(models.slice(0, 50).map((m) => m.run(goldenRows(2), 2)));
    assert.deepEqual(results[49]!.outputs, results[0]!.outputs);
    for (let i = 0; i < 1000; i++) runtime.release(bundle.bundleId);
    await waitFor(() => counts.released === 1);
  });

  it('keeps different keys in different sessions', async () => {
    const { runtime, counts } = countingRuntime();
    await runtime.load('bundle-a', bundle.modelBytes, bundle.io);
    await runtime.load('bundle-b', bundle.modelBytes, bundle.io);
    assert.equal(counts.created, 2);
    runtime.release('bundle-a');
    await waitFor(() => counts.released === 1);
    assert.equal(runtime.references('bundle-b'), 1);
    runtime.release('bundle-b');
    await waitFor(() => counts.released === 2);
  });

  it('closes a released session only after the run in flight on it finishes', async () => {
    const { runtime, counts } = countingRuntime();
    const model = await runtime.load(bundle.bundleId, bundle.modelBytes, bundle.io);
    const running = model.run(goldenRows(32), 32);
    runtime.release(bundle.bundleId);
    const { outputs } = await running;
    assert.equal(outputs.length, 32 * MNIST_CLASSES);
    await waitFor(() => counts.released === 1);
  });

  it('refuses a model whose tensors are not the manifest io (MODEL_IO_MISMATCH), keeping nothing', async () => {
    const { runtime, counts } = countingRuntime();
    const other = denseModel([16, 8, 4], 3); // input [batch, 16], output [batch, 4]
    await rejectsWith(
      runtime.load('other', other, bundle.io),
      'MODEL_IO_MISMATCH',
      /input input has shape \[batch, 16\], the manifest declares \[batch, 784\]/,
    );
    assert.equal(runtime.references('other'), 0);
    await waitFor(() => counts.released === 1);
  });

  it('refuses manifests that differ from the model in any tensor detail', async () => {
    const { runtime } = countingRuntime();
    const io = bundle.io;
    const input = io.inputs[0]!;
    const output = io.outputs[0]!;
    const variants: [string, ManifestIo, RegExp][] = [
      [
        'output name',
        { ...io, outputs: [{ ...output, name: 'logits' }] },
        /outputs are \[probabilities\]/,
      ],
      [
        'input dtype',
        { ...io, inputs: [{ ...input, dtype: 'int8' }] },
        /input input is float32, the manifest declares int8/,
      ],
      [
        'output width',
        { ...io, outputs: [{ ...output, shape: ['batch', 11] }] },
        /\[batch, 10\].*\[batch, 11\]/,
      ],
      [
        'fixed batch',
        { ...io, inputs: [{ ...input, shape: [1, 784] }] },
        /\[batch, 784\].*\[1, 784\]/,
      ],
      ['extra input', { ...io, inputs: [input, { ...input, name: 'mask' }] }, /\[input, mask\]/],
      [
        'extra output',
        { ...io, outputs: [output, { ...output, name: 'x' }] },
        /\[probabilities, x\]/,
      ],
      ['no output', { ...io, outputs: [] }, /the manifest declares \[\]/],
    ];
    for (const [what, variant, message] of variants) {
      await rejectsWith(
        runtime.load(what, bundle.modelBytes, variant),
        'MODEL_IO_MISMATCH',
        message,
      );
      assert.equal(runtime.references(what), 0, what);
    }
  });

  it('refuses bytes onnxruntime cannot load (MODEL_LOAD), and the key can load good bytes after', async () => {
    const { runtime } = countingRuntime();
    const corrupt = bundle.modelBytes.slice(0, 300);
    await rejectsWith(runtime.load('k', corrupt, bundle.io), 'MODEL_LOAD', /onnxruntime/);
    assert.equal(runtime.references('k'), 0);
    const model = await runtime.load('k', bundle.modelBytes, bundle.io);
    await model.run(goldenRows(1), 1);
    runtime.release('k');
  });

  it('refuses a batch that does not fit the input (INFER_INPUT)', async () => {
    const runtime = createModelRuntime();
    const model = await runtime.load(bundle.bundleId, bundle.modelBytes, bundle.io);
    await rejectsWith(
      model.run(new Float32Array(783), 1),
      'INFER_INPUT',
      /783 numbers are not 1 rows of 784/,
    );
    await rejectsWith(model.run(new Float32Array(0), 0), 'INFER_INPUT', /positive integer/);
    await rejectsWith(model.run(goldenRows(2), 1.5), 'INFER_INPUT');
    assert.equal((await model.run(goldenRows(2), 2)).outputs.length, 20); // and still serves
    runtime.release(bundle.bundleId);
  });
});

/** Polls `condition` (session release is asynchronous) for at most 2 s. */
async function waitFor(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail('condition not met within 2 s');
    await new Promise((resolve) => setImmediate(resolve));
  }
}
