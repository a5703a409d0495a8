/**
 * A bounded queue of asynchronous work run a few at a time: where the
 * control plane applies what devices send (both broker links), so a burst of
 * messages neither opens unbounded database work nor grows memory without
 * limit. Written here because it is a dozen lines; a library (p-limit,
 * p-queue) would add a dependency for no more than this.
 */
/** How many device messages the control plane applies at once, and may hold waiting. */
export const IN_PROCESS_CONCURRENCY = 16;
export const IN_PROCESS_MAX_QUEUED = 10_000;

export interface WorkQueue {
  /** Queues `work`; false (and nothing queued) when `maxQueued` are already waiting. */
  push(work: () => Promise<void>): boolean;
  /** Resolves once nothing is waiting or running (for shutdown, after intake has stopped). */
  drain(): Promise<void>;
}

export function createWorkQueue(options: {
  concurrency: number;
  maxQueued: number;
  onError: (error: unknown) => void;
}): WorkQueue {
  const waiting: (() => Promise<void>)[] = [];
  let running = 0;
  let idle: (() => void)[] = [];
  const next = () => {
    if (running === 0 && waiting.length === 0) {
      for (const resolve of idle) resolve();
      idle = [];
    }
    while (running < options.concurrency && waiting.length > 0) {
      const work = waiting.shift()!;
      running++;
      work()
        .catch(options.onError)
        .finally(() => {
          running--;
          next();
        });
    }
  };
  return {
    push(work) {
      if (waiting.length >= options.maxQueued) return false;
      waiting.push(work);
      next();
      return true;
    },
    drain() {
      if (running === 0 && waiting.length === 0) return Promise.resolve();
      return new Promise((resolve) => idle.push(resolve));
    },
  };
}
