/**
 * When to broadcast a wave's blocks (bundle-distribution `broadcast`).
 *
 * The broadcast goes out once, at QoS 0: a device that has not subscribed to
 * the bundle's block topic yet misses it and must then fetch every block by
 * repair requests, which is slow for it and costly for the broker. Agents
 * report their first `downloading` progress only once that subscription is in
 * place (edge-agent block-downloader), so that report means "ready".
 *
 * A gate opens per bundle when deploys are sent and fires the broadcast at the
 * first of:
 *   - every device sent a deploy has said it is ready;
 *   - readiness has stalled: no device became ready for `quietMs` since the
 *     last one did (some devices are offline or busy; they repair later);
 *   - `maxWaitMs` since the gate opened (nobody answered at all);
 * and never before `minDelayMs` (tests use it to act before the broadcast).
 * Devices sent a deploy while a gate is open join its wait; a device's
 * readiness for a bundle with no open gate is ignored (its broadcast went).
 * While a gate is open its broadcast is `due`: a device asking for blocks
 * then is answered by that broadcast (rollout-service).
 */
export interface BroadcastGateTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface BroadcastGateOptions {
  minDelayMs: number;
  quietMs: number;
  maxWaitMs: number;
  nowMs: () => number;
  timers?: BroadcastGateTimers;
  /** Called once per opened gate. */
  broadcast: (bundleId: string) => void;
}

export interface BroadcastGate {
  /** Deploys for `bundleId` were sent to these devices. */
  expect(bundleId: string, deviceIds: readonly string[]): void;
  /** A device said it is subscribed to `bundleId`'s blocks. */
  ready(bundleId: string, deviceId: string): void;
  /** Devices expected that will not answer after all (their deploy was not sent): no longer waited for. */
  forget(bundleId: string, deviceIds: readonly string[]): void;
  /** Whether `bundleId`'s broadcast is still to come (its gate is open). */
  due(bundleId: string): boolean;
  /** Bundles with an open gate, and how many devices each still waits for. */
  waiting(): Map<string, number>;
  /** Clears every timer; nothing is broadcast afterwards. */
  close(): void;
}

interface Gate {
  waiting: Set<string>;
  openedAtMs: number;
  /** When the last device became ready; null until one has. */
  lastReadyAtMs: number | null;
  timer: unknown;
}

const realTimers: BroadcastGateTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export function createBroadcastGate(options: BroadcastGateOptions): BroadcastGate {
  const timers = options.timers ?? realTimers;
  const gates = new Map<string, Gate>();
  let closed = false;

  /** When the gate fires if nothing else happens, in clock milliseconds. */
  function dueAtMs(gate: Gate): number {
    const earliest = gate.openedAtMs + options.minDelayMs;
    if (gate.waiting.size === 0) return earliest;
    const quietEnd = gate.lastReadyAtMs === null ? Infinity : gate.lastReadyAtMs + options.quietMs;
    return Math.max(earliest, Math.min(quietEnd, gate.openedAtMs + options.maxWaitMs));
  }

  function arm(bundleId: string, gate: Gate): void {
    timers.clearTimeout(gate.timer);
    const delayMs = Math.max(0, dueAtMs(gate) - options.nowMs());
    gate.timer = timers.setTimeout(() => check(bundleId, gate), delayMs);
  }

  function check(bundleId: string, gate: Gate): void {
    if (closed || gates.get(bundleId) !== gate) return;
    if (options.nowMs() < dueAtMs(gate)) return arm(bundleId, gate);
    gates.delete(bundleId);
    options.broadcast(bundleId);
  }

  return {
    expect(bundleId, deviceIds) {
      if (closed || deviceIds.length === 0) return;
      let gate = gates.get(bundleId);
      if (!gate) {
        gate = {
          waiting: new Set(),
          openedAtMs: options.nowMs(),
          lastReadyAtMs: null,
          timer: null,
        };
        gates.set(bundleId, gate);
      }
      for (const id of deviceIds) gate.waiting.add(id);
      arm(bundleId, gate);
    },

    ready(bundleId, deviceId) {
      const gate = gates.get(bundleId);
      if (!gate || !gate.waiting.delete(deviceId)) return;
      gate.lastReadyAtMs = options.nowMs();
      // Re-armed on every report: cheap (one timer), and the quiet period restarts.
      arm(bundleId, gate);
    },

    forget(bundleId, deviceIds) {
      const gate = gates.get(bundleId);
      if (!gate || deviceIds.length === 0) return;
      for (const id of deviceIds) gate.waiting.delete(id);
      arm(bundleId, gate);
    },

    due: (bundleId) => gates.has(bundleId),

    waiting() {
      return new Map([...gates].map(([bundleId, gate]) => [bundleId, gate.waiting.size]));
    },

    close() {
      closed = true;
      for (const gate of gates.values()) timers.clearTimeout(gate.timer);
      gates.clear();
    },
  };
}
