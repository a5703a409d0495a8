/**
 * The in-process inference API on a stand-in model and fake clocks: answers
 * with predictions and confidences, refuses bad input naming where it is bad
 * (before the model sees it), and records every request in the health window
 * of the model that served it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isFleetError, type BundleModelRef } from '@fleet/protocol';
import type { LoadedModel, ModelRunResult } from './loaded-model.ts';
import { createInferenceService } from './inference-service.ts';

const T0 = Date.parse('2026-11-26T12:00:00Z');

const refA: BundleModelRef = {
  name: 'mnist-2nn',
  version: '1.0.0',
  release: 1,
  bundleId: 'a'.repeat(64),
};
const refB: BundleModelRef = { ...refA, version: '1.1.0', release: 2, bundleId: 'b'.repeat(64) };

/**
 * A 3-class "model" over rows of 3: its output is the row itself, so a test
 * chooses the probabilities. Each run advances the fake monotonic clock by
 * `runMs`, and may be held open with `gate`.
 */
function echoModel(
  clock: { perf: number },
  options: { runMs?: number; gate?: Promise<void> } = {},
) {
  const calls: number[] = [];
  const model: LoadedModel = {
    key: 'echo',
    inputName: 'input',
    outputName: 'probabilities',
    inputWidth: 3,
    async run(input, batch): Promise<ModelRunResult> {
      calls.push(batch);
      await options.gate;
      clock.perf += options.runMs ?? 4;
      return { outputs: input.slice(), outputWidth: 3 };
    },
  };
  return { model, calls };
}

function setup(runMs = 4) {
  const clock = { wall: T0, perf: 1000 };
  const service = createInferenceService({ nowMs: () => clock.wall, perfNowMs: () => clock.perf });
  const { model, calls } = echoModel(clock, { runMs });
  service.setActive(model, refA);
  return { clock, service, model, calls };
}

const rejectsWith = (promise: Promise<unknown>, code: string, message?: RegExp) =>
  assert.rejects(promise, (e: unknown) => {
    assert.ok(isFleetError(e, code), `expected ${code}, got ${String(e)}`);
    if (message) assert.match(e.message, message);
    return true;
  });

describe('createInferenceService', () => {
  it('answers rows with outputs, argmax predictions, max confidences, the model and the latency', async () => {
    const { service } = setup(4);
    const result = await service.infer([
      [0.1, 0.7, 0.2],
      [0.5, 0.25, 0.25],
    ]);
    assert.match(result.id, /^[A-Za-z0-9_-]{16,}$/);
    assert.deepEqual(result.predictions, [1, 0]);
    assert.deepEqual(result.confidences, [Math.fround(0.7), 0.5]);
    assert.equal(result.outputs.length, 2);
    assert.deepEqual(result.outputs[1], [0.5, 0.25, 0.25]);
    assert.deepEqual(result.model, refA);
    assert.equal(result.latencyMs, 4);
  });

  it('gives every inference its own id', async () => {
    const { service } = setup();
    const ids = new Set<string>();
    for (let i = 0; i < 200; i++) ids.add((await service.infer([[1, 0, 0]])).id);
    assert.equal(ids.size, 200);
  });

  it('takes a flat Float32Array, splitting it into rows or by the batch asked for', async () => {
    const { service, calls } = setup();
    const flat = Float32Array.from([0, 0, 1, 0, 1, 0]);
    assert.deepEqual((await service.infer(flat)).predictions, [2, 1]);
    assert.deepEqual((await service.infer(flat, { batch: 2 })).predictions, [2, 1]);
    assert.deepEqual(calls, [2, 2]);
    await rejectsWith(
      service.infer(flat, { batch: 3 }),
      'INFER_INPUT',
      /6 numbers are not 3 rows of 3/,
    );
    await rejectsWith(
      service.infer(flat.subarray(0, 5)),
      'INFER_INPUT',
      /5 numbers do not split into rows of 3/,
    );
  });

  it('picks the first of equal outputs, and clamps confidences into [0, 1]', async () => {
    const { service } = setup();
    const result = await service.infer([
      [0.4, 0.4, 0.2],
      [2, 1, 0],
      [-3, -2, -1],
    ]);
    assert.deepEqual(result.predictions, [0, 0, 2]);
    assert.deepEqual(result.confidences, [Math.fround(0.4), 1, 0]);
  });

  it('refuses bad input naming what is wrong, without running the model', async () => {
    const { service, calls } = setup();
    const cases: [unknown, RegExp][] = [
      [[[1, 2]], /row 0 has 2 numbers, the model takes 3/],
      [
        [
          [1, 2, 3],
          [1, 2, 3, 4],
        ],
        /row 1 has 4 numbers/,
      ],
      [[[1, '2', 3]], /row 0, column 1 is not a finite number: "2"/],
      [[[1, 2, null]], /row 0, column 2 is not a finite number: null/],
      [[[1, NaN, 3]], /row 0, column 1 is not a finite number: NaN/],
      [[[Infinity, 2, 3]], /column 0 is not a finite number: Infinity/],
      [[[1, 2, 3], 'row'], /row 1 is not an array of numbers/],
      [Float32Array.from([1, 2, 3, 4, NaN, 6]), /row 1, column 1 is NaN/],
      [[], /no rows/],
      [new Float32Array(0), /no rows/],
      ['1,2,3', /array of rows or a Float32Array/],
      [{ inputs: [[1, 2, 3]] }, /array of rows or a Float32Array/],
    ];
    for (const [input, message] of cases) {
      await rejectsWith(service.infer(input as number[][]), 'INFER_INPUT', message);
    }
    assert.deepEqual(calls, []);
    // and the model still serves
    assert.deepEqual((await service.infer([[0, 1, 0]])).predictions, [1]);
  });

  it('refuses a batch above maxBatch', async () => {
    const clock = { wall: T0, perf: 0 };
    const service = createInferenceService({ nowMs: () => clock.wall, maxBatch: 2 });
    service.setActive(echoModel(clock).model, refA);
    await rejectsWith(
      service.infer([
        [1, 0, 0],
        [1, 0, 0],
        [1, 0, 0],
      ]),
      'INFER_INPUT',
      /3 rows is above the limit of 2/,
    );
    assert.equal(
      (
        await service.infer([
          [1, 0, 0],
          [1, 0, 0],
        ])
      ).predictions.length,
      2,
    );
  });

  it('answers NO_MODEL before a model is active and after it is cleared', async () => {
    const clock = { wall: T0, perf: 0 };
    const service = createInferenceService({ nowMs: () => clock.wall });
    assert.equal(service.active(), null);
    await rejectsWith(service.infer([[1, 0, 0]]), 'NO_MODEL');
    service.setActive(echoModel(clock).model, refA);
    assert.deepEqual(service.active(), refA);
    service.clearActive();
    assert.equal(service.active(), null);
    await rejectsWith(service.infer([[1, 0, 0]]), 'NO_MODEL');
  });

  it('fails (INFER_FAILED) a model that throws or answers NaN, and counts it as an error', async () => {
    const { clock, service } = setup();
    const broken: LoadedModel = {
      ...echoModel(clock).model,
      run: () => Promise.reject(new Error('native crash')),
    };
    service.setActive(broken, refA);
    await rejectsWith(service.infer([[1, 0, 0]]), 'INFER_FAILED', /native crash/);
    const nan: LoadedModel = {
      ...broken,
      run: (_input, batch) =>
        Promise.resolve({ outputs: new Float32Array(batch * 3).fill(NaN), outputWidth: 3 }),
    };
    service.setActive(nan, refA);
    await rejectsWith(
      service.infer([[1, 0, 0]]),
      'INFER_FAILED',
      /answered NaN at row 0, output 0/,
    );
    const health = service.takeHealth(clock.wall);
    assert.deepEqual([health.requests, health.errors, health.meanConfidence], [1, 1, null]);
  });

  it('records every request, errors too, and takeHealth returns the window and starts the next', async () => {
    const { clock, service } = setup(10);
    await service.infer([[0.2, 0.8, 0]]);
    await service.infer([
      [0.6, 0.4, 0],
      [0.6, 0.4, 0],
      [0.6, 0.4, 0],
    ]);
    await assert.rejects(service.infer([[1, 2]]));
    clock.wall += 60_000;
    const health = service.takeHealth(clock.wall);
    assert.deepEqual(health.model, refA);
    assert.equal(health.windowStart, '2026-11-26T12:00:00.000Z');
    assert.equal(health.windowEnd, '2026-11-26T12:01:00.000Z');
    assert.deepEqual([health.requests, health.errors], [3, 1]);
    // confidence is the mean over rows: (0.8 + 3 * 0.6) / 4
    assert.ok(Math.abs(health.meanConfidence! - 0.65) < 1e-6, String(health.meanConfidence));
    assert.ok(health.latencyMs.p99 >= 10 / 2 ** (1 / 16));

    clock.wall += 30_000;
    const next = service.takeHealth(clock.wall);
    assert.equal(next.windowStart, '2026-11-26T12:01:00.000Z');
    assert.deepEqual([next.requests, next.errors, next.meanConfidence], [0, 0, null]);
  });

  it('starts a fresh window on setActive; a request in flight counts for the model that serves it', async () => {
    const clock = { wall: T0, perf: 0 };
    const service = createInferenceService({
      nowMs: () => clock.wall,
      perfNowMs: () => clock.perf,
    });
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    service.setActive(echoModel(clock, { gate }).model, refA);
    const inFlight = service.infer([[0, 0, 1]]);

    clock.wall += 1000;
    service.setActive(echoModel(clock).model, refB);
    open();
    assert.deepEqual((await inFlight).model, refA);
    const health = service.takeHealth(clock.wall + 1000);
    assert.deepEqual(health.model, refB);
    assert.equal(health.windowStart, '2026-11-26T12:00:01.000Z');
    assert.equal(health.requests, 0); // A's request is not B's probation traffic
  });

  it('reports an empty window without a model', () => {
    const clock = { wall: T0, perf: 0 };
    const service = createInferenceService({ nowMs: () => clock.wall });
    const health = service.takeHealth(T0 + 5000);
    assert.deepEqual(
      [health.model, health.requests, health.windowStart, health.windowEnd],
      [null, 0, '2026-11-26T12:00:00.000Z', '2026-11-26T12:00:05.000Z'],
    );
  });
});

describe('inference observer', () => {
  it('sees each successful inference with the model that answered, its rows and outputs; never a failed one', async () => {
    const { service } = setup();
    const seen: Array<[string, number[], number[], number]> = [];
    service.observe((ref, inputs, outputs, batch) =>
      seen.push([ref.bundleId, [...inputs], [...outputs], batch]),
    );
    await service.infer([
      [0.1, 0.7, 0.2],
      [0.5, 0.25, 0.25],
    ]);
    await assert.rejects(service.infer([[0.1, 0.2]]));
    assert.deepEqual(
      seen.map(([id, inputs, outputs, batch]) => [
        id,
        inputs.map((v) => Math.round(v * 100)),
        outputs.length,
        batch,
      ]),
      [[refA.bundleId, [10, 70, 20, 50, 25, 25], 6, 2]],
    );
  });

  it('an observer that throws does not fail the inference; null removes it', async () => {
    const { service } = setup();
    let calls = 0;
    service.observe(() => {
      calls++;
      throw new Error('observer bug');
    });
    assert.deepEqual((await service.infer([[0.1, 0.7, 0.2]])).predictions, [1]);
    service.observe(null);
    await service.infer([[0.1, 0.7, 0.2]]);
    assert.equal(calls, 1);
  });
});
