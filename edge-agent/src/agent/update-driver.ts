/**
 * Drives the pure update machine (core/update-machine.ts): one input at a
 * time, in arrival order. For each input it computes the step, **persists the
 * new state before any action runs** (ARCHITECTURE: each transition persisted
 * before acting), then runs the actions in order. Actions that need a result
 * (check the manifest, stage, activate, judge probation) dispatch it back as
 * a new input; long work (a download) runs in the background and dispatches
 * when it ends.
 *
 * If a save fails (the disk, or a simulated power cut) the driver stops: no
 * action of that step runs, and a new driver on the same stores resumes from
 * the last saved state with `boot`.
 */
import type { StateStore } from '../core/storage.ts';
import { step, type UpdateAction, type UpdateInput } from '../core/update-machine.ts';
import type { AgentState } from '../core/update-state.ts';

export type Dispatch = (input: UpdateInput) => void;

/** Runs one action; may call `dispatch` now or later with its result. */
export type RunAction = (action: UpdateAction, dispatch: Dispatch) => Promise<void>;

export interface UpdateDriverOptions {
  store: StateStore;
  run: RunAction;
  nowMs: () => number;
  /** An action threw instead of dispatching a failure input: a bug, logged, never fatal. */
  onActionError?: (action: UpdateAction, error: unknown) => void;
}

export interface UpdateDriver {
  /** Loads the persisted state and feeds `boot`. */
  start(): Promise<void>;
  /** Queues an input; resolves once it and everything it queued meanwhile are processed. */
  dispatch(input: UpdateInput): Promise<void>;
  /** The last persisted state. */
  state(): AgentState;
  /** Stops processing: queued inputs are dropped (a shutdown, or a crash in tests). */
  stop(): void;
  /** Why the driver stopped on its own (a failed save), or null. */
  failure(): unknown;
}

export function createUpdateDriver(options: UpdateDriverOptions): UpdateDriver {
  const { store, run, nowMs } = options;
  let current: AgentState | null = null;
  let stopped = false;
  let failed: unknown = null;
  const queue: UpdateInput[] = [];
  let pumping: Promise<void> | null = null;

  const dispatch: Dispatch = (input) => {
    if (stopped) return;
    queue.push(input);
    kick();
  };

  function kick(): void {
    if (pumping || stopped) return;
    pumping = pump().finally(() => {
      pumping = null;
      // An input queued after the loop ended but before this ran still gets its turn.
      if (queue.length > 0) kick();
    });
  }

  async function pump(): Promise<void> {
    while (queue.length > 0 && !stopped && current) {
      const input = queue.shift()!;
      const result = step(current, input, nowMs());
      if (result.state !== current) {
        try {
          await store.save(result.state);
        } catch (error) {
          failed = error;
          stopped = true;
          return;
        }
        current = result.state;
      }
      for (const action of result.actions) {
        if (stopped) return;
        if (action.type === 'advance') {
          queue.push({ type: 'advance' });
          continue;
        }
        try {
          await run(action, dispatch);
        } catch (error) {
          options.onActionError?.(action, error);
        }
      }
    }
  }

  async function settle(): Promise<void> {
    while (pumping) await pumping;
  }

  return {
    async start() {
      current = await store.load();
      dispatch({ type: 'boot' });
      await settle();
    },
    async dispatch(input) {
      dispatch(input);
      await settle();
    },
    state() {
      if (!current) throw new Error('update driver not started');
      return current;
    },
    stop() {
      stopped = true;
      queue.length = 0;
    },
    failure: () => failed,
  };
}
