import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isFleetError } from '@fleet/protocol';
import { checkSamples, checkTrainRequest, resolveDenseWeights } from './check-request.ts';
import { l2Norm, tensorDelta } from './delta.ts';
import { shuffleInPlace, xorshift32 } from './random.ts';
import { TOY_ARCHITECTURE, toyRequest, toySamples } from './__fixtures__/toy-problem.ts';
import type { TrainRequest } from './types.ts';

function refused(request: TrainRequest, pattern: RegExp): void {
  assert.throws(
    () => checkTrainRequest(request),
    (err: unknown) => isFleetError(err, 'TRAIN_REQUEST') && pattern.test(err.message),
  );
}

const withWeight = (name: string, change: (v: Float32Array) => Float32Array, dims?: number[]) =>
  toyRequest().weights.map((t) =>
    t.name === name ? { ...t, dims: dims ?? t.dims, values: change(t.values) } : t,
  );

test('a valid request resolves each layer to its kernel and bias', () => {
  const plan = checkTrainRequest(toyRequest());
  assert.equal(plan.outputWidth, 3);
  assert.deepEqual(
    plan.layers.map((l) => [l.inputs, l.units, l.kernel.name, l.bias.name]),
    [
      [4, 8, 'dense_0/kernel', 'dense_0/bias'],
      [8, 3, 'dense_1/kernel', 'dense_1/bias'],
    ],
  );
});

test('weights that do not fit the architecture are refused, naming the tensor', () => {
  refused(
    toyRequest({ weights: withWeight('dense_1/kernel', (v) => v.slice(0, 24), [8, 3]).slice(1) }),
    /dense_0\/kernel is missing/,
  );
  refused(
    toyRequest({ weights: withWeight('dense_1/kernel', (v) => v, [3, 8]) }),
    /dense_1\/kernel: dims \[3,8\] but the architecture needs \[8,3\]/,
  );
  refused(
    toyRequest({ weights: withWeight('dense_0/bias', (v) => v.slice(0, 7)) }),
    /dense_0\/bias: 7 values/,
  );
  const extra = toyRequest().weights;
  extra.push({ name: 'dense_2/kernel', dims: [3, 1], values: new Float32Array(3) });
  refused(toyRequest({ weights: extra }), /not in the architecture: dense_2\/kernel/);
  const twice = toyRequest().weights;
  twice.push(twice[0]!);
  refused(toyRequest({ weights: twice }), /dense_0\/kernel appears twice/);
});

test('non-finite weights are refused', () => {
  for (const bad of [NaN, Infinity, -Infinity]) {
    const weights = withWeight('dense_1/bias', (v) => {
      const c = v.slice();
      c[2] = bad;
      return c;
    });
    refused(toyRequest({ weights }), /dense_1\/bias: value 2 is not finite/);
  }
});

test('samples that do not fit are refused: no samples, wrong width, labels out of range, NaN features', () => {
  const samples = toySamples(6);
  refused(
    toyRequest({
      samples: { ...samples, count: 0, features: new Float32Array(0), labels: new Int32Array(0) },
    }),
    /count must be a positive integer, got 0/,
  );
  refused(
    toyRequest({ samples: { ...samples, featureCount: 3 } }),
    /3 features, the model takes 4/,
  );
  refused(
    toyRequest({ samples: { ...samples, count: 7 } }),
    /Float32Array of count x featureCount = 28/,
  );
  for (const label of [3, -1]) {
    const labels = samples.labels.slice();
    labels[4] = label;
    refused(
      toyRequest({ samples: { ...samples, labels } }),
      new RegExp(`sample 4: label ${label} outside \\[0, 3\\)`),
    );
  }
  const features = samples.features.slice();
  features[4 * 5 + 1] = NaN;
  refused(toyRequest({ samples: { ...samples, features } }), /sample 5, feature 1 is not finite/);
});

test('bad hyperparameters are refused', () => {
  refused(toyRequest({ epochs: 0 }), /epochs/);
  refused(toyRequest({ epochs: 1.5 }), /epochs/);
  refused(toyRequest({ epochs: 1001 }), /epochs/);
  refused(toyRequest({ batchSize: 0 }), /batchSize/);
  refused(toyRequest({ learningRate: 0 }), /learningRate/);
  refused(toyRequest({ learningRate: NaN }), /learningRate/);
  refused(toyRequest({ proxMu: -1 }), /proxMu/);
  refused(toyRequest({ proxMu: Infinity }), /proxMu/);
  refused(toyRequest({ seed: 0.5 }), /seed/);
});

test('a bad architecture is refused', () => {
  const weights = toyRequest().weights;
  assert.throws(
    () => resolveDenseWeights({ ...TOY_ARCHITECTURE, layers: [] }, weights),
    /at least one layer/,
  );
  assert.throws(
    () =>
      resolveDenseWeights(
        {
          ...TOY_ARCHITECTURE,
          layers: [{ units: 8, activation: 'tanh' as 'relu' }, TOY_ARCHITECTURE.layers[1]!],
        },
        weights,
      ),
    /layer 0: activation must be relu or linear, got tanh/,
  );
  assert.doesNotThrow(() => checkSamples(TOY_ARCHITECTURE, 3, toySamples(3)));
});

test('tensorDelta is trained minus start in float32; l2Norm is the global norm', () => {
  const start = [
    { name: 'a', dims: [2], values: Float32Array.of(1, 0.1) },
    { name: 'b', dims: [1], values: Float32Array.of(-2) },
  ];
  const trained = [
    { name: 'a', dims: [2], values: Float32Array.of(4, 0.3) },
    { name: 'b', dims: [1], values: Float32Array.of(2) },
  ];
  const delta = tensorDelta(trained, start);
  assert.deepEqual(
    delta.map((t) => [t.name, t.dims, [...t.values]]),
    [
      ['a', [2], [3, Math.fround(Math.fround(0.3) - Math.fround(0.1))]],
      ['b', [1], [4]],
    ],
  );
  assert.ok(
    Math.abs(l2Norm([{ name: 'x', dims: [2], values: Float32Array.of(3, 4) }]) - 5) < 1e-12,
  );
  assert.throws(() => tensorDelta(trained, [start[1]!, start[0]!]), /does not match/);
});

test('the seeded shuffle is a permutation and repeats for equal seeds', () => {
  const a = shuffleInPlace(
    Int32Array.from({ length: 50 }, (_, i) => i),
    xorshift32(9),
  );
  const b = shuffleInPlace(
    Int32Array.from({ length: 50 }, (_, i) => i),
    xorshift32(9),
  );
  const c = shuffleInPlace(
    Int32Array.from({ length: 50 }, (_, i) => i),
    xorshift32(10),
  );
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  assert.deepEqual(
    [...a].sort((x, y) => x - y),
    Array.from({ length: 50 }, (_, i) => i),
  );
});
