/**
 * A training worker for the pool's crash tests: a job with seed 666 throws an
 * uncaught error in the worker, one with seed 667 exits it; any other job
 * reaches the real worker. The hook is added after the real worker's listener
 * (a port delivers only to the listeners it has when a message comes) and
 * runs synchronously, before the real worker's asynchronous job starts.
 */
import { parentPort } from 'node:worker_threads';
import type { TrainJobMessage } from '../worker-messages.ts';
import '../training-worker.ts';

parentPort!.on('message', (job: TrainJobMessage) => {
  if (job.request.seed === 666) throw new Error('boom (test crash)');
  if (job.request.seed === 667) process.exit(7);
});
