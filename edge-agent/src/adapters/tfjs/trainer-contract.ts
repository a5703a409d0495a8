/**
 * The contract every `Trainer` passes (aedes-persistence `abstract.js`
 * style): `runTrainerContract(name, trainer)` registers the same tests for the
 * in-thread trainer and the worker pool. Results are compared with
 * `trainDenseSgd` on this thread, which both must reproduce bit for bit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isFleetError } from '@fleet/protocol';
import type { NamedTensor, Trainer, TrainRequest } from '../../core/training/types.ts';
import { toyRequest, toySamples } from '../../core/training/__fixtures__/toy-problem.ts';
import { trainDenseSgd } from './dense-sgd.ts';
import { loadTf } from './tf-backend.ts';

const values = (tensors: NamedTensor[]) => tensors.map((t) => [t.name, t.dims, [...t.values]]);

async function reference(request: TrainRequest) {
  const { tf } = await loadTf();
  return trainDenseSgd(tf, request, () => 0);
}

export function runTrainerContract(name: string, trainer: () => Trainer): void {
  test(`${name}: trains the toy problem exactly as trainDenseSgd does`, async () => {
    const request = toyRequest({ proxMu: 0.1, batchSize: 7 });
    const [result, expected] = await Promise.all([trainer().train(request), reference(request)]);
    assert.deepEqual(values(result.weights), values(expected.weights));
    assert.deepEqual(values(result.delta), values(expected.delta));
    const metrics = [
      'sampleCount',
      'lossBefore',
      'lossAfter',
      'accuracyBefore',
      'accuracyAfter',
    ] as const;
    for (const m of metrics) assert.equal(result[m], expected[m], m);
    assert.ok(result.lossAfter < result.lossBefore);
    assert.ok(result.trainMs >= 0 && Number.isFinite(result.trainMs));
  });

  test(`${name}: the caller keeps its arrays, unchanged`, async () => {
    const request = toyRequest();
    const weights = values(request.weights);
    const { features, labels } = request.samples;
    const copies = [features.slice(), labels.slice()];
    await trainer().train(request);
    assert.deepEqual(values(request.weights), weights);
    assert.deepEqual([features, labels], copies);
    assert.equal(features.buffer.byteLength, features.byteLength, 'not detached');
  });

  test(`${name}: concurrent requests each get their own result`, async () => {
    const requests = [1, 2, 3].map((seed) => toyRequest({ seed, epochs: 2 }));
    const results = await Promise.all(requests.map((r) => trainer().train(r)));
    for (const [i, r] of requests.entries())
      assert.deepEqual(values(results[i]!.weights), values((await reference(r)).weights));
  });

  test(`${name}: a bad request is refused with TRAIN_REQUEST`, async () => {
    const labels = toySamples(60).labels.slice();
    labels[0] = 9;
    await assert.rejects(
      trainer().train(toyRequest({ samples: { ...toySamples(60), labels } })),
      (err) => isFleetError(err, 'TRAIN_REQUEST') && /label 9 outside \[0, 3\)/.test(err.message),
    );
  });

  test(`${name}: divergence is TRAIN_DIVERGED`, async () => {
    await assert.rejects(trainer().train(toyRequest({ learningRate: 1e30 })), (err) =>
      isFleetError(err, 'TRAIN_DIVERGED'),
    );
  });
}
