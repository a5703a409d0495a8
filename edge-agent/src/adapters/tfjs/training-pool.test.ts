import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { isFleetError } from '@fleet/protocol';
import { toyRequest } from '../../core/training/__fixtures__/toy-problem.ts';
import type { NamedTensor } from '../../core/training/types.ts';
import { createInThreadTrainer } from './in-thread-trainer.ts';
import {
  createTrainingPool,
  defaultTrainingPoolSize,
  MAX_TRAINING_POOL_SIZE,
  sharedTrainingPool,
} from './training-pool.ts';
import { runTrainerContract } from './trainer-contract.ts';

const values = (tensors: NamedTensor[]) => tensors.map((t) => [...t.values]);
const pool = createTrainingPool({ size: 2 });
after(() => pool.close());
runTrainerContract('training pool', () => pool);

test('training pool: same result as the in-thread trainer; at most size workers', async () => {
  const requests = [7, 8, 9, 10].map((seed) => toyRequest({ seed, epochs: 3, proxMu: 0.2 }));
  const pooled = await Promise.all(requests.map((r) => pool.train(r)));
  const inThread = createInThreadTrainer();
  for (const [i, r] of requests.entries()) {
    const expected = await inThread.train(r);
    assert.deepEqual(values(pooled[i]!.weights), values(expected.weights));
    assert.equal(pooled[i]!.lossAfter, expected.lossAfter);
  }
  const stats = pool.stats();
  assert.ok(stats.workersStarted <= 2, `started ${stats.workersStarted}`);
  assert.deepEqual([stats.busy, stats.queued, stats.workerCrashes], [0, 0, 0]);
});

test('training pool: a crashed worker fails its job with TRAIN_FAILED and is replaced', async () => {
  const crashing = createTrainingPool({
    size: 1,
    workerEntry: new URL('./__fixtures__/crashing-training-worker.ts', import.meta.url),
  });
  try {
    // Queued behind the crash: served by the replacement worker.
    const [thrown, queued] = await Promise.allSettled([
      crashing.train(toyRequest({ seed: 666 })),
      crashing.train(toyRequest({ seed: 1 })),
    ]);
    assert.equal(thrown.status, 'rejected');
    const reason: unknown = thrown.status === 'rejected' ? thrown.reason : undefined;
    assert.ok(
      isFleetError(reason, 'TRAIN_FAILED') && /worker crashed: boom/.test(reason.message),
      String(reason),
    );
    assert.equal(queued.status, 'fulfilled');
    await assert.rejects(
      crashing.train(toyRequest({ seed: 667 })),
      (err) => isFleetError(err, 'TRAIN_FAILED') && /exited with code 7/.test(err.message),
    );
    const ok = await crashing.train(toyRequest({ seed: 2 }));
    assert.ok(ok.lossAfter < ok.lossBefore);
    assert.deepEqual(
      [crashing.stats().workerCrashes, crashing.stats().workersStarted, crashing.stats().workers],
      [2, 3, 1],
    );
  } finally {
    await crashing.close();
  }
});

test('training pool: close fails running and queued jobs, and later ones', async () => {
  const closing = createTrainingPool({ size: 1 });
  const jobs = [closing.train(toyRequest()), closing.train(toyRequest({ seed: 3 }))].map((job) =>
    assert.rejects(job, (err) => isFleetError(err, 'TRAIN_FAILED') && /closed/.test(err.message)),
  );
  await closing.close();
  await Promise.all(jobs);
  await assert.rejects(closing.train(toyRequest()), (err) => isFleetError(err, 'TRAIN_FAILED'));
  assert.equal(closing.stats().workers, 0);
});

test('training pool: sizes are bounded; the shared pool is one per process', async () => {
  assert.ok(defaultTrainingPoolSize() >= 1 && defaultTrainingPoolSize() <= MAX_TRAINING_POOL_SIZE);
  for (const size of [0, MAX_TRAINING_POOL_SIZE + 1, 1.5])
    assert.throws(
      () => createTrainingPool({ size }),
      (err) => isFleetError(err, 'TRAIN_REQUEST'),
    );
  const shared = sharedTrainingPool();
  assert.equal(sharedTrainingPool(), shared);
  assert.equal(shared.stats().workers, 0, 'workers start on demand');
  await shared.close();
  assert.notEqual(sharedTrainingPool(), shared);
  await sharedTrainingPool().close();
});
