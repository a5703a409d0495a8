/**
 * Local training off the event loop: a pool of `worker_threads`, each loading
 * TensorFlow.js once and running `trainDenseSgd` (the in-thread trainer's
 * code), so inference, MQTT and timers keep running while a device trains.
 * Jobs queue FIFO; workers start on demand up to `size`; a request is checked
 * in the caller's thread first (a bad one never reaches a worker), and its
 * arrays are copied and the copies transferred. A worker that crashes fails
 * its job with `TRAIN_FAILED` and is replaced by the next job. Idle workers
 * do not keep the process alive.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { AGENT_ERROR_CODES, agentError, type AgentErrorCode } from '../../core/errors.ts';
import { checkTrainRequest } from '../../core/training/check-request.ts';
import type { Trainer, TrainRequest, TrainResult } from '../../core/training/types.ts';
import { copyForTransfer, type TrainReplyMessage } from './worker-messages.ts';

/**
 * A worker's first code. Worker threads do not inherit a loader registered
 * with tsx's `register()` (the fleet-agent bin), and a `.ts` worker entry
 * fails even when `--import tsx` is inherited through execArgv (node --test,
 * Node 20): so each worker registers tsx itself (harmless when it is already
 * there), then imports its TypeScript entry. Both by absolute URL: an eval
 * worker resolves from the working directory.
 */
const WORKER_BOOT = `const { workerData } = require('node:worker_threads');
import(workerData.tsxApi)
  .then(({ register }) => { register(); return import(workerData.entry); });`;

/** The most workers a pool may have (each holds a TensorFlow.js and a model). */
export const MAX_TRAINING_POOL_SIZE = 4;

export interface TrainingPoolOptions {
  /** Workers, 1..MAX_TRAINING_POOL_SIZE; default max(1, availableParallelism() - 1), capped. */
  size?: number;
  /** The module a worker runs (tests substitute one); default ./training-worker.ts. */
  workerEntry?: URL;
}

export interface TrainingPoolStats {
  size: number;
  workers: number;
  busy: number;
  queued: number;
  workersStarted: number;
  workerCrashes: number;
}

export interface TrainingPool extends Trainer {
  readonly size: number;
  stats(): TrainingPoolStats;
  /** Fails queued and running jobs with `TRAIN_FAILED`, stops the workers; later `train` calls fail too. */
  close(): Promise<void>;
}

interface Job {
  id: number;
  request: TrainRequest;
  transfer: ArrayBuffer[];
  resolve: (result: TrainResult) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  job: Job | undefined;
}

/** The default size: one worker per spare core, at least one, at most the cap. */
export function defaultTrainingPoolSize(): number {
  return Math.min(MAX_TRAINING_POOL_SIZE, Math.max(1, availableParallelism() - 1));
}

/** A pool of training workers behind the `Trainer` interface. */
export function createTrainingPool(options: TrainingPoolOptions = {}): TrainingPool {
  const size = options.size ?? defaultTrainingPoolSize();
  if (!Number.isInteger(size) || size < 1 || size > MAX_TRAINING_POOL_SIZE)
    throw agentError(
      'TRAIN_REQUEST',
      `pool size must be 1..${MAX_TRAINING_POOL_SIZE}, got ${size}`,
    );
  const workerData = {
    tsxApi: import.meta.resolve('tsx/esm/api'),
    entry: (options.workerEntry ?? new URL('./training-worker.ts', import.meta.url)).href,
  };
  const slots = new Set<Slot>();
  const queue: Job[] = [];
  let nextId = 1;
  let closed = false;
  let workersStarted = 0;
  let workerCrashes = 0;

  function spawn(): Slot {
    const slot: Slot = {
      worker: new Worker(WORKER_BOOT, { eval: true, workerData }),
      job: undefined,
    };
    workersStarted++;
    slot.worker.unref();
    slot.worker.on('message', (reply: TrainReplyMessage) => settle(slot, reply));
    slot.worker.on('error', (err) => crashed(slot, err));
    slot.worker.on('exit', (code) => crashed(slot, new Error(`exited with code ${code}`)));
    slots.add(slot);
    return slot;
  }

  function pump(): void {
    while (queue.length > 0 && !closed) {
      let slot = [...slots].find((s) => s.job === undefined);
      if (!slot && slots.size < size) slot = spawn();
      if (!slot) return;
      const job = queue.shift()!;
      slot.job = job;
      slot.worker.ref(); // a running job keeps the process alive
      slot.worker.postMessage({ id: job.id, request: job.request }, job.transfer);
    }
  }

  function settle(slot: Slot, reply: TrainReplyMessage): void {
    const job = slot.job;
    if (!job || job.id !== reply.id) return;
    slot.job = undefined;
    slot.worker.unref();
    if (reply.ok) job.resolve(reply.result);
    else job.reject(replyError(reply.code, reply.message));
    pump();
  }

  function crashed(slot: Slot, err: Error): void {
    if (!slots.delete(slot)) return; // 'error' and then 'exit': handled once
    workerCrashes++;
    void slot.worker.terminate();
    slot.job?.reject(
      agentError('TRAIN_FAILED', `training worker crashed: ${err.message}`, { cause: err }),
    );
    pump(); // queued jobs get a new worker
  }

  return {
    size,
    async train(request: TrainRequest): Promise<TrainResult> {
      if (closed) throw agentError('TRAIN_FAILED', 'the training pool is closed');
      checkTrainRequest(request); // a bad request never reaches a worker
      const { request: copy, transfer } = copyForTransfer(request);
      return new Promise<TrainResult>((resolve, reject) => {
        queue.push({ id: nextId++, request: copy, transfer, resolve, reject });
        pump();
      });
    },
    stats: () => ({
      size,
      workers: slots.size,
      busy: [...slots].filter((s) => s.job !== undefined).length,
      queued: queue.length,
      workersStarted,
      workerCrashes,
    }),
    async close(): Promise<void> {
      closed = true;
      const closing = agentError('TRAIN_FAILED', 'the training pool was closed');
      for (const job of queue.splice(0)) job.reject(closing);
      const stopping = [...slots].map((slot) => {
        slots.delete(slot);
        slot.job?.reject(closing);
        return slot.worker.terminate();
      });
      await Promise.all(stopping);
    },
  };
}

function replyError(code: string, message: string): Error {
  const text = message.startsWith(`${code}: `) ? message.slice(code.length + 2) : message;
  return (AGENT_ERROR_CODES as readonly string[]).includes(code)
    ? agentError(code as AgentErrorCode, text)
    : agentError('TRAIN_FAILED', `${code}: ${text}`);
}

let shared: TrainingPool | undefined;

/**
 * The process's pool (default size), created on first use. Its idle workers
 * do not keep the process alive; `close()` it to stop them at once.
 */
export function sharedTrainingPool(): TrainingPool {
  if (!shared) {
    const pool = createTrainingPool();
    shared = {
      ...pool,
      close: () => {
        shared = undefined;
        return pool.close();
      },
    };
  }
  return shared;
}
