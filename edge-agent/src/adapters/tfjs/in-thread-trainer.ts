/**
 * The trainer on the calling thread: TensorFlow.js loaded here, training run
 * synchronously (the event loop waits for the whole run). For tests,
 * benchmarks and the simulator's many agents in one process; the agent uses
 * the worker pool (training-pool.ts), which runs the same `trainDenseSgd`.
 */
import { agentError } from '../../core/errors.ts';
import type { Trainer, TrainRequest, TrainResult } from '../../core/training/types.ts';
import { FleetError } from '@fleet/protocol';
import { trainDenseSgd } from './dense-sgd.ts';
import { loadTf } from './tf-backend.ts';

export interface InThreadTrainerOptions {
  /** Monotonic milliseconds for `trainMs` (default `performance.now`). */
  perfNowMs?: () => number;
}

/** A `Trainer` that trains on this thread. */
export function createInThreadTrainer(options: InThreadTrainerOptions = {}): Trainer {
  const perfNowMs = options.perfNowMs ?? (() => performance.now());
  return {
    async train(request: TrainRequest): Promise<TrainResult> {
      let tf;
      try {
        ({ tf } = await loadTf());
      } catch (err) {
        throw agentError('TRAIN_FAILED', `TensorFlow.js did not load: ${String(err)}`, {
          cause: err,
        });
      }
      try {
        return trainDenseSgd(tf, request, perfNowMs);
      } catch (err) {
        if (err instanceof FleetError) throw err;
        throw agentError('TRAIN_FAILED', `training failed: ${String(err)}`, { cause: err });
      }
    },
  };
}
