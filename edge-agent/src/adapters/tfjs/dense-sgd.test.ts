import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isFleetError } from '@fleet/protocol';
import { l2Norm } from '../../core/training/delta.ts';
import type { NamedTensor, TrainRequest } from '../../core/training/types.ts';
import { toyRequest, toySamples } from '../../core/training/__fixtures__/toy-problem.ts';
import { trainDenseSgd } from './dense-sgd.ts';
import { evaluateDense } from './evaluate-dense.ts';
import { loadTf } from './tf-backend.ts';

const { tf } = await loadTf();
const clock = () => 0;
const train = (request: TrainRequest) => trainDenseSgd(tf, request, clock);
const values = (tensors: NamedTensor[]) => tensors.map((t) => [...t.values]);

test('a 4-8-3 net learns the separable toy problem', () => {
  const result = train(toyRequest({ epochs: 10, samples: toySamples(90) }));
  assert.ok(
    result.lossAfter < result.lossBefore / 4,
    `${result.lossBefore} -> ${result.lossAfter}`,
  );
  assert.ok(result.accuracyAfter >= 0.95, `accuracy ${result.accuracyAfter}`);
  assert.ok(result.accuracyAfter > result.accuracyBefore);
  assert.equal(result.sampleCount, 90);
  assert.deepEqual(
    result.weights.map((t) => [t.name, t.dims]),
    toyRequest().weights.map((t) => [t.name, t.dims]),
  );
});

test('delta is exactly trained minus start, and the request is left as it was', () => {
  const request = toyRequest();
  const before = values(request.weights);
  const features = request.samples.features.slice();
  const result = train(request);
  assert.deepEqual(values(request.weights), before);
  assert.deepEqual(request.samples.features, features);
  result.delta.forEach((d, k) => {
    const w = result.weights[k]!.values;
    const s = request.weights[k]!.values;
    assert.equal(d.name, request.weights[k]!.name);
    d.values.forEach((v, i) => assert.equal(v, Math.fround(w[i]! - s[i]!)));
  });
  assert.ok(l2Norm(result.delta) > 0);
});

test('FedProx with a large mu keeps the weights closer to the start', () => {
  const plain = train(toyRequest({ epochs: 10 }));
  const prox = train(toyRequest({ epochs: 10, proxMu: 5 }));
  const [plainNorm, proxNorm] = [l2Norm(plain.delta), l2Norm(prox.delta)];
  assert.ok(proxNorm < plainNorm / 2, `||delta|| ${proxNorm} with mu=5, ${plainNorm} with mu=0`);
  assert.ok(prox.lossAfter < prox.lossBefore, 'still learns');
});

// A 2-input, 2-class linear softmax model on three samples, by hand (float64).
const HAND = {
  x: [
    [1, 0],
    [0, 1],
    [1, 1],
  ],
  y: [0, 1, 1],
  w: [0.1, -0.2, 0.3, 0.05],
  b: [0.01, -0.02],
};
function handRequest(overrides: Partial<TrainRequest>): TrainRequest {
  return {
    architecture: {
      inputSize: 2,
      layers: [{ units: 2, activation: 'linear' }],
      softmaxOutput: true,
    },
    weights: [
      { name: 'dense_0/kernel', dims: [2, 2], values: Float32Array.from(HAND.w) },
      { name: 'dense_0/bias', dims: [2], values: Float32Array.from(HAND.b) },
    ],
    samples: {
      features: Float32Array.from(HAND.x.flat()),
      labels: Int32Array.from(HAND.y),
      count: 3,
      featureCount: 2,
    },
    epochs: 1,
    batchSize: 3,
    learningRate: 0.5,
    proxMu: 0,
    seed: 1,
    ...overrides,
  };
}
/** Mean cross-entropy and its gradient, plus (mu/2)||w - w0||^2, for w = [kernel (row-major), bias]. */
function handStep(
  w: number[],
  b: number[],
  lr: number,
  mu: number,
): { w: number[]; b: number[]; loss: number } {
  const gw = [0, 0, 0, 0];
  const gb = [0, 0];
  let loss = 0;
  HAND.x.forEach((x, n) => {
    const z = [0, 1].map((j) => x[0]! * w[j]! + x[1]! * w[2 + j]! + b[j]!);
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    const p = e.map((v) => v / (e[0]! + e[1]!));
    loss -= Math.log(p[HAND.y[n]!]!) / 3;
    [0, 1].forEach((j) => {
      const g = (p[j]! - (HAND.y[n] === j ? 1 : 0)) / 3;
      gw[j] = gw[j]! + x[0]! * g;
      gw[2 + j] = gw[2 + j]! + x[1]! * g;
      gb[j] = gb[j]! + g;
    });
  });
  return {
    w: w.map((v, i) => v - lr * (gw[i]! + mu * (v - HAND.w[i]!))),
    b: b.map((v, i) => v - lr * (gb[i]! + mu * (v - HAND.b[i]!))),
    loss,
  };
}
const close = (actual: Float32Array, expected: number[]) =>
  expected.forEach((e, i) =>
    assert.ok(Math.abs(actual[i]! - e) < 1e-6, `[${i}] ${actual[i]} vs ${e}`),
  );

test('a full batch is one gradient step per epoch (hand-computed, with and without FedProx)', () => {
  for (const [epochs, mu] of [
    [1, 0],
    [3, 0],
    [3, 0.8],
  ] as const) {
    let w = HAND.w;
    let b = HAND.b;
    for (let e = 0; e < epochs; e++) ({ w, b } = handStep(w, b, 0.5, mu));
    // B >= count: the same as B = count
    for (const batchSize of [3, 100]) {
      const result = train(handRequest({ epochs, proxMu: mu, batchSize }));
      close(result.weights[0]!.values, w);
      close(result.weights[1]!.values, b);
    }
  }
  const first = handStep(HAND.w, HAND.b, 0.5, 0);
  const result = train(handRequest({}));
  assert.ok(Math.abs(result.lossBefore - first.loss) < 1e-6);
  assert.ok(Math.abs(result.lossAfter - handStep(first.w, first.b, 0.5, 0).loss) < 1e-6);
});

test('evaluateDense gives the trainer before/after figures', async () => {
  const request = toyRequest();
  const result = train(request);
  const before = await evaluateDense(request.architecture, request.weights, request.samples);
  const after = await evaluateDense(request.architecture, result.weights, request.samples);
  assert.deepEqual(before, { loss: result.lossBefore, accuracy: result.accuracyBefore });
  assert.deepEqual(after, { loss: result.lossAfter, accuracy: result.accuracyAfter });
  await assert.rejects(
    evaluateDense(request.architecture, request.weights.slice(1), request.samples),
    (err) => isFleetError(err, 'TRAIN_REQUEST'),
  );
});

test('equal seeds give equal weights; another seed another order', () => {
  const a = train(toyRequest({ seed: 5 }));
  const b = train(toyRequest({ seed: 5 }));
  const c = train(toyRequest({ seed: 6 }));
  assert.deepEqual(values(a.weights), values(b.weights));
  assert.deepEqual(a.lossAfter, b.lossAfter);
  assert.notDeepEqual(values(a.weights), values(c.weights));
});

test('no tensor outlives a run: trained, refused or diverged', () => {
  const start = tf.memory().numTensors;
  train(toyRequest({ proxMu: 0.5, batchSize: 7 }));
  assert.equal(tf.memory().numTensors, start);
  assert.throws(
    () => train(toyRequest({ samples: toySamples(0) })),
    (e) => isFleetError(e, 'TRAIN_REQUEST'),
  );
  assert.equal(tf.memory().numTensors, start);
  assert.throws(
    () => train(toyRequest({ learningRate: 1e30 })),
    (e) => isFleetError(e, 'TRAIN_DIVERGED') && /diverged/.test(e.message),
  );
  assert.equal(tf.memory().numTensors, start);
});
