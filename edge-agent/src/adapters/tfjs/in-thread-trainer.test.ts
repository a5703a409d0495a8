import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toyRequest } from '../../core/training/__fixtures__/toy-problem.ts';
import { createInThreadTrainer } from './in-thread-trainer.ts';
import { loadTf } from './tf-backend.ts';
import { runTrainerContract } from './trainer-contract.ts';

const trainer = createInThreadTrainer();
runTrainerContract('in-thread trainer', () => trainer);

test('in-thread trainer: trainMs comes from the injected clock', async () => {
  let now = 1000;
  const timed = createInThreadTrainer({ perfNowMs: () => (now += 5) });
  const result = await timed.train(toyRequest({ epochs: 1 }));
  assert.equal(result.trainMs, 5);
});

test('in-thread trainer: tensors are back to where they started', async () => {
  const { tf } = await loadTf();
  const start = tf.memory().numTensors;
  await trainer.train(toyRequest({ proxMu: 1 }));
  await trainer.train(toyRequest({ learningRate: 1e30 })).catch(() => undefined);
  assert.equal(tf.memory().numTensors, start);
});
