/**
 * The self-test's verdicts on a stand-in model: it passes only when every
 * golden case is within tolerance, and a model that is about other tensors,
 * takes other rows or cannot run fails with the reason, without throwing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { GoldenVectors } from '@fleet/protocol';
import { agentError } from './errors.ts';
import type { LoadedModel } from './loaded-model.ts';
import { runSelfTest } from './self-test.ts';

/** Doubles its 2-number rows' sum into one output: [a, b] -> [2(a + b)]. */
function doubler(overrides: Partial<LoadedModel> = {}): LoadedModel & { batches: number[] } {
  const batches: number[] = [];
  return {
    key: 'k',
    inputName: 'x',
    outputName: 'y',
    inputWidth: 2,
    batches,
    run(input, batch) {
      batches.push(batch);
      const outputs = new Float32Array(batch);
      for (let r = 0; r < batch; r++) outputs[r] = 2 * (input[2 * r]! + input[2 * r + 1]!);
      return Promise.resolve({ outputs, outputWidth: 1 });
    },
    ...overrides,
  };
}

const golden = (overrides: Partial<GoldenVectors> = {}): GoldenVectors => ({
  input: 'x',
  output: 'y',
  tolerance: 1e-3,
  cases: [
    { input: [1, 2], output: [6] },
    { input: [0.5, 0], output: [1] },
    { input: [-1, 1], output: [0] },
  ],
  ...overrides,
});

describe('runSelfTest', () => {
  it('passes a model that reproduces the golden outputs, running them as one batch', async () => {
    const model = doubler();
    const report = await runSelfTest(model, golden());
    assert.deepEqual(model.batches, [3]);
    assert.equal(report.ok, true);
    assert.equal(report.failedCase, null);
    assert.equal(report.worstDiff, 0);
    assert.match(report.message, /passed: 3 golden cases/);
  });

  it('gives every run the golden inputs, even after a model wrote into its input', async () => {
    const g = golden();
    const vandal = doubler({
      run(input, batch) {
        input.fill(0);
        return Promise.resolve({ outputs: new Float32Array(batch), outputWidth: 1 });
      },
    });
    assert.equal((await runSelfTest(vandal, g)).ok, false);
    const report = await runSelfTest(doubler(), g);
    assert.equal(report.ok, true, report.message);
    assert.equal((await runSelfTest(doubler(), g)).ok, true);
  });

  it('fails the first case outside tolerance and says so', async () => {
    const g = golden();
    g.cases[1]!.output = [1.01];
    g.cases[2]!.output = [0.5];
    const report = await runSelfTest(doubler(), g);
    assert.equal(report.ok, false);
    assert.equal(report.failedCase, 1);
    assert.equal(report.worstDiff, 0.5);
    assert.match(report.message, /case 1 is outside tolerance/);
  });

  it('fails when the golden vectors are about other tensors or other rows, without running', async () => {
    const model = doubler();
    for (const [g, reason] of [
      [golden({ input: 'pixels' }), /feed input pixels, the model's input is x/],
      [golden({ output: 'logits' }), /check output logits, the model's output is y/],
      [
        golden({ cases: [{ input: [1, 2, 3], output: [12] }] }),
        /have 3 numbers, the model takes 2/,
      ],
    ] as const) {
      const report = await runSelfTest(model, g);
      assert.deepEqual([report.ok, report.failedCase, report.worstDiff], [false, null, Infinity]);
      assert.match(report.message, reason);
    }
    assert.deepEqual(model.batches, []);
  });

  it('fails a model that cannot run, or answers with the wrong width or NaN', async () => {
    const throwing = doubler({
      run: () => Promise.reject(agentError('INFER_FAILED', 'onnxruntime failed: boom')),
    });
    const report = await runSelfTest(throwing, golden());
    assert.equal(report.ok, false);
    assert.match(
      report.message,
      /cannot run its golden inputs: INFER_FAILED: onnxruntime failed: boom/,
    );

    const wide = doubler({
      run: (_input, batch) =>
        Promise.resolve({ outputs: new Float32Array(batch * 2), outputWidth: 2 }),
    });
    assert.deepEqual((await runSelfTest(wide, golden())).failedCase, 0);

    const nan = doubler({
      run: (_input, batch) =>
        Promise.resolve({ outputs: new Float32Array(batch).fill(NaN), outputWidth: 1 }),
    });
    const nanReport = await runSelfTest(nan, golden());
    assert.deepEqual([nanReport.ok, nanReport.worstDiff], [false, Infinity]);
  });
});
