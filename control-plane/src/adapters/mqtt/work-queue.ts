/**
 * A bounded queue of asynchronous work run a few at a time: where the
 * control plane applies what devices send (both broker links), so a burst of
 * messages neither opens unbounded database work nor grows memory without
 * limit. Written here because it is a few dozen lines, and p-limit or p-queue
 * have no "replace the waiting one with the same key".
 *
 * A device's `state` and `evt` messages are never dropped: each carries the
 * device's whole current state or update progress, so past the bound the
 * newest replaces the one of its topic still waiting (`pushLatest`,
 * `supersedingKey`); below it every message is applied, as before. Before,
 * past `IN_PROCESS_MAX_QUEUED` waiting they were dropped like any other: in a
 * rollout to 3,000 simulated agents, whose process releases its messages in
 * bursts, 553-691 devices committed but stayed `probation` at the control
 * plane, their commit report dropped. Other messages (telemetry, FL updates,
 * repair requests) are still refused past the bound.
 */
import { parseTopic } from '@fleet/protocol';

/** How many device messages the control plane applies at once, and may hold waiting. */
export const IN_PROCESS_CONCURRENCY = 16;
export const IN_PROCESS_MAX_QUEUED = 10_000;

/**
 * The key under which a message to `handler` supersedes the waiting one
 * before it: its topic, for a device's `state` and `evt` channels; null
 * for any other topic. `subscription` tells apart handlers of one topic.
 */
export function supersedingKey(subscription: number, topic: string): string | null {
  const parsed = parseTopic(topic);
  if (parsed?.kind !== 'device') return null;
  if (parsed.channel !== 'state' && parsed.channel !== 'evt') return null;
  return `${subscription} ${topic}`;
}

export interface WorkQueue {
  /** Queues `work`; false (and nothing queued) when `maxQueued` are already waiting. */
  push(work: () => Promise<void>): boolean;
  /**
   * Queues `work` under `key`, never refused: below `maxQueued` waiting, as
   * `push` does; at the bound, it replaces the newest work of the same key
   * still waiting (in its place in line), or, if none waits, joins past the
   * bound. So past the bound at most one more waits per key, and the keys
   * bound it (a device's `state` and `evt` topics, which only that device
   * may publish on). For messages where the newest supersedes the ones
   * before it.
   */
  pushLatest(key: string, work: () => Promise<void>): void;
  /** Resolves once nothing is waiting or running (for shutdown, after intake has stopped). */
  drain(): Promise<void>;
}

interface Waiting {
  work: () => Promise<void>;
  /** Set for work queued by `pushLatest`. */
  key?: string;
  /** Counted against `maxQueued` (false: joined past the bound). */
  counted: boolean;
}

export function createWorkQueue(options: {
  concurrency: number;
  maxQueued: number;
  onError: (error: unknown) => void;
}): WorkQueue {
  const waiting: Waiting[] = [];
  /** The newest waiting entry of each key (`pushLatest`). */
  const latest = new Map<string, Waiting>();
  /** Waiting entries counted against `maxQueued` (all but those past the bound). */
  let bounded = 0;
  let running = 0;
  let idle: (() => void)[] = [];
  const next = () => {
    if (running === 0 && waiting.length === 0) {
      for (const resolve of idle) resolve();
      idle = [];
    }
    while (running < options.concurrency && waiting.length > 0) {
      const entry = waiting.shift()!;
      if (entry.counted) bounded--;
      if (entry.key !== undefined && latest.get(entry.key) === entry) latest.delete(entry.key);
      running++;
      entry
        .work()
        .catch(options.onError)
        .finally(() => {
          running--;
          next();
        });
    }
  };
  return {
    push(work) {
      if (bounded >= options.maxQueued) return false;
      bounded++;
      waiting.push({ work, counted: true });
      next();
      return true;
    },
    pushLatest(key, work) {
      const full = bounded >= options.maxQueued;
      const queued = latest.get(key);
      if (full && queued) {
        queued.work = work;
        return;
      }
      if (!full) bounded++;
      const entry: Waiting = { work, key, counted: !full };
      latest.set(key, entry);
      waiting.push(entry);
      next();
    },
    drain() {
      if (running === 0 && waiting.length === 0) return Promise.resolve();
      return new Promise((resolve) => idle.push(resolve));
    },
  };
}
