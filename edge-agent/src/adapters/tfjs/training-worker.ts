/**
 * A training pool worker's body: loads TensorFlow.js once, then trains each
 * job it is sent with `trainDenseSgd` (the in-thread trainer's code) and
 * answers with the result's buffers transferred, or with the error's code.
 * Started by the pool's boot code, which registers the TypeScript loader first.
 */
import { parentPort } from 'node:worker_threads';
import { isFleetError } from '@fleet/protocol';
import { trainDenseSgd } from './dense-sgd.ts';
import { loadTf } from './tf-backend.ts';
import { resultBuffers, type TrainJobMessage, type TrainReplyMessage } from './worker-messages.ts';

const port = parentPort;
if (!port) throw new Error('training-worker.ts runs in a worker thread only');
const ready = loadTf();
// Jobs run one after another, in the order they came (the pool sends one at a time).
let chain: Promise<void> = Promise.resolve();

port.on('message', (job: TrainJobMessage) => {
  chain = chain.then(() => run(job));
});

async function run(job: TrainJobMessage): Promise<void> {
  let reply: TrainReplyMessage;
  try {
    const { tf } = await ready;
    const result = trainDenseSgd(tf, job.request, () => performance.now());
    port!.postMessage(
      { id: job.id, ok: true, result } satisfies TrainReplyMessage,
      resultBuffers(result),
    );
    return;
  } catch (err) {
    reply = isFleetError(err)
      ? { id: job.id, ok: false, code: err.code, message: err.message }
      : {
          id: job.id,
          ok: false,
          code: 'TRAIN_FAILED',
          message: `training failed: ${String(err)}`,
        };
  }
  port!.postMessage(reply);
}
