/**
 * Drift monitoring, assembled (ARCHITECTURE "Drift"): the monitor of the
 * serving model (core/drift-monitor.ts) fed by the inference service's
 * observer, its closed windows written to the persistent outbox
 * (core/drift-outbox.ts), and the outbox sent as signed `drift` messages on
 * `dev/{id}/telemetry` at QoS 1.
 *
 *   inference -> monitor.observe -> window closes -> outbox.append (durable)
 *     -> publish (QoS 1) -> PUBACK -> outbox.ack (deleted)
 *
 * Sending: the pending flushes, lowest seq first, at most `maxInFlight` at a
 * time, only while the session is connected. A publish that fails leaves its
 * flush in the outbox; it is sent again on the next connection or tick, still
 * lowest seq first. A publish whose connection drops before its PUBACK is
 * retransmitted by the MQTT client on reconnection (persistent session), so it
 * is not published twice from here. After a restart everything in the outbox
 * is sent again with its own id (the control plane keeps each id once).
 * A flush that cannot be signed (the drift message schema refuses it, e.g.
 * a sketch above the size caps) can never be sent: it is discarded and
 * counted as dropped, and does not block the ones behind it.
 *
 * Counters (`stats()`): written, sent (acknowledged), resent (publishes of a
 * flush published before: in this process, or by an earlier one, which is
 * assumed for everything found in the outbox at start), dropped (the bound,
 * and unsendable ones; persisted), publish and write failures.
 */
import type { BundleModelRef } from '@fleet/protocol';
import type { DriftFlush } from '../core/drift-flush.ts';
import {
  createDriftMonitor,
  type DriftMonitorStats,
  type MonitoredModel,
} from '../core/drift-monitor.ts';
import type { DriftOutbox, DriftOutboxStats } from '../core/drift-outbox.ts';
import type { InferenceObserver } from '../core/inference-service.ts';

export interface DriftReportingOptions {
  outbox: DriftOutbox;
  nowMs: () => number;
  random: () => number;
  /** Flush ids (UUIDs). */
  newId: () => string;
  /** The signed `drift` message of a flush; throws when it can never be sent. */
  encode: (flush: DriftFlush) => Uint8Array;
  /** Publishes on telemetry at QoS 1; resolves on the PUBACK. */
  send: (bytes: Uint8Array) => Promise<void>;
  connected: () => boolean;
  /** Publishes awaiting their PUBACK at once (default 4). */
  maxInFlight?: number;
  onEvent?: (event: DriftEvent) => void;
}

export type DriftEvent =
  /** An outbox file failed its checks and was moved aside. */
  | { type: 'drift-outbox-corrupt'; code: 'AGENT_STATE_CORRUPT'; message: string }
  /** A write, an acknowledgement, a discarded flush, or a profile that cannot be monitored. */
  | { type: 'drift-error'; code: string; message: string };

export interface DriftStats extends DriftOutboxStats {
  sent: number;
  resent: number;
  publishFailures: number;
  writeFailures: number;
  monitor: DriftMonitorStats & { model: BundleModelRef | null };
}

export interface DriftReporting {
  /** Opens the outbox (reporting damaged files) and sends what waits there. Call before any model serves. */
  start(): Promise<void>;
  /** The serving model changed (null: none, or not monitored). */
  setModel(model: MonitoredModel | null): void;
  /** For the inference service (ModelHost.observeInferences). */
  readonly observer: InferenceObserver;
  /** From the agent's timer: the time bound, and another try at sending. */
  tick(): void;
  /** After every (re)connection: send what waits. */
  onConnect(): void;
  stats(): DriftStats;
  /** Waits until every closed window is written and every publish in flight has settled. */
  idle(): Promise<void>;
  /** A clean shutdown: the open window is written to the outbox (it is sent after the restart), sending stops. */
  close(): Promise<void>;
  /** A power cut: nothing more is written or sent. */
  kill(): void;
}

export function createDriftReporting(options: DriftReportingOptions): DriftReporting {
  const { outbox } = options;
  const maxInFlight = options.maxInFlight ?? 4;
  const emit = (event: DriftEvent) => options.onEvent?.(event);
  const counts = { sent: 0, resent: 0, publishFailures: 0, writeFailures: 0 };
  /** Publishes per seq so far; flushes found at start count as published once. */
  const attempts = new Map<number, number>();
  const inFlight = new Map<number, Promise<void>>();
  let writes: Promise<void> = Promise.resolve();
  let stopped = false;

  const monitor = createDriftMonitor({
    nowMs: options.nowMs,
    random: options.random,
    newId: options.newId,
    onFlush: (draft) => {
      if (stopped) return;
      writes = writes.then(async () => {
        try {
          await outbox.append(draft);
        } catch (error) {
          counts.writeFailures++;
          emit({ type: 'drift-error', code: 'DRIFT_WRITE', message: String(error) });
          return;
        }
        pump();
      });
    },
  });

  function pump(): void {
    if (stopped || !options.connected()) return;
    for (const flush of outbox.pending()) {
      if (inFlight.size >= maxInFlight) return;
      if (!inFlight.has(flush.seq)) send(flush);
    }
  }

  function send(flush: DriftFlush): void {
    const { seq } = flush;
    let bytes: Uint8Array;
    try {
      bytes = options.encode(flush);
    } catch (error) {
      emit({
        type: 'drift-error',
        code: 'DRIFT_UNSENDABLE',
        message: `flush ${seq}: ${String(error)}`,
      });
      // In flight until deleted, so it is not tried (and reported) again meanwhile.
      const discarding = outbox.discard(seq).catch(() => undefined);
      inFlight.set(
        seq,
        discarding.then(() => void inFlight.delete(seq)),
      );
      return;
    }
    const attempt = (attempts.get(seq) ?? 0) + 1;
    attempts.set(seq, attempt);
    if (attempt > 1) counts.resent++;
    const publish = options.send(bytes).then(
      async () => {
        counts.sent++;
        attempts.delete(seq);
        // In flight until deleted: the outbox still lists it, and must not send it again.
        await outbox
          .ack(seq)
          .catch((error: unknown) =>
            emit({ type: 'drift-error', code: 'DRIFT_ACK', message: String(error) }),
          );
        inFlight.delete(seq);
        pump();
      },
      () => {
        // Kept in the outbox: tried again on the next connection or tick.
        counts.publishFailures++;
        inFlight.delete(seq);
      },
    );
    inFlight.set(seq, publish);
  }

  return {
    async start() {
      const opening = outbox.open();
      writes = opening.then(() => undefined);
      for (const entry of await opening) {
        emit({
          type: 'drift-outbox-corrupt',
          code: 'AGENT_STATE_CORRUPT',
          message: `${entry.name}: ${entry.reason}; moved to ${entry.movedTo ?? '(nowhere)'}`,
        });
      }
      for (const flush of outbox.pending()) attempts.set(flush.seq, 1);
      pump();
    },
    setModel: (model) => monitor.setModel(model),
    observer: (ref, inputs, outputs, batch) => monitor.observe(ref, inputs, outputs, batch),
    tick() {
      monitor.tick();
      pump();
    },
    onConnect: () => pump(),
    stats: () => ({
      ...outbox.stats(),
      ...counts,
      monitor: { ...monitor.stats(), model: monitor.model() },
    }),
    async idle() {
      for (;;) {
        const before = writes;
        await writes;
        await Promise.all(inFlight.values());
        if (writes === before && inFlight.size === 0) return;
      }
    },
    async close() {
      monitor.setModel(null);
      stopped = true;
      await writes;
    },
    kill() {
      stopped = true;
    },
  };
}
