/**
 * What training costs the event loop: the MNIST 2NN (784-200-200-10) on 600
 * samples, E=1, B=10, trained in the worker pool and on this thread, while
 * `perf_hooks.monitorEventLoopDelay` watches this thread's event loop.
 *
 *   node --import tsx edge-agent/src/adapters/tfjs/training-bench.ts [runs]
 *
 * Synthetic MNIST-shaped data (seeded); the first run of each trainer warms
 * it up (backend start-up, worker start) and is not counted.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import {
  MNIST_2NN,
  mnistShapedSamples,
  randomWeights,
} from '../../core/training/__fixtures__/toy-problem.ts';
import type { Trainer, TrainRequest } from '../../core/training/types.ts';
import { createInThreadTrainer } from './in-thread-trainer.ts';
import { loadTf } from './tf-backend.ts';
import { createTrainingPool } from './training-pool.ts';

const runs = Number(process.argv[2] ?? 5);
const request: TrainRequest = {
  architecture: MNIST_2NN,
  weights: randomWeights(MNIST_2NN),
  samples: mnistShapedSamples(600),
  epochs: 1,
  batchSize: 10,
  learningRate: 0.05,
  proxMu: 0,
  seed: 1,
};

async function measure(name: string, trainer: Trainer): Promise<void> {
  await trainer.train(request); // warm-up
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  const wall: number[] = [];
  const train: number[] = [];
  histogram.enable();
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    const result = await trainer.train(request);
    wall.push(performance.now() - started);
    train.push(result.trainMs);
    await new Promise((resolve) => setTimeout(resolve, 20)); // lets the monitor's timer fire
  }
  histogram.disable();
  const ms = (ns: number) => (ns / 1e6).toFixed(1);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!.toFixed(0);
  console.log(
    `${name.padEnd(10)} trainMs median ${median(train)}, wall median ${median(wall)} ms; ` +
      `event-loop delay mean ${ms(histogram.mean)} p99 ${ms(histogram.percentile(99))} max ${ms(histogram.max)} ms`,
  );
}

console.log(`backend ${(await loadTf()).backend}, ${runs} runs each`);
const pool = createTrainingPool({ size: 1 });
await measure('pool', pool);
await pool.close();
await measure('in-thread', createInThreadTrainer());
