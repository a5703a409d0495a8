/**
 * Drives the pure drift core (core/drift/) against the database, the
 * bundles' drift profiles and the clock:
 *
 *   in      a verified `drift` message (rollout-service's onDeviceMessage
 *           hands it over: device known, not revoked, signed, schema and
 *           size caps held), checked in order by core/drift/flush-checks.ts,
 *           then stored unless it replays a flush id or a device's seq
 *           (drift-store.ts). Every outcome is counted in
 *           `fleet_drift_flushes_total{result}`; refusals are logged with
 *           the reason and change nothing.
 *   timer   `tick()`: for each bundle with work, merge new flushes into the
 *           cumulative views, then score every window past its grace
 *           (merge per cohort, score against the baselines, open or clear
 *           alerts with audit entries), one transaction per window.
 *   out     scrape-time gauges (`gauges()`), alert counters, logs, and
 *           `onAlert` for each alert opened, after its window's transaction
 *           committed (cohorts before the whole fleet `*`, so a cohort's
 *           round goes first); a failing callback is logged, never thrown
 *           into the tick, and the alert stays opened.
 *
 * No state lives in the process: replicas share the work through the
 * store's per-bundle locks.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import {
  isFleetError,
  type DriftReportMessage,
  type ModelRef,
  type RandomSource,
} from '@fleet/protocol';
import type { Metrics } from '../adapters/http/metrics.ts';
import type { DriftStore } from '../adapters/db/drift-store.ts';
import type { ModelStore } from '../adapters/db/model-store.ts';
import type { DriftBaseline, DriftBaselines } from '../core/drift/drift-baselines.ts';
import { checkDriftPolicy, type DriftPolicy } from '../core/drift/drift-policy.ts';
import { FLEET_COHORT } from '../core/drift/cohorts.ts';
import { checkFlush, type FlushResult } from '../core/drift/flush-checks.ts';
import { encodeSignals } from '../core/drift/signal-codec.ts';
import { windowOf } from '../core/drift/windows.ts';
import {
  mergeCumulative,
  scoreWindowFlushes,
  type ScoringOptions,
  type WindowDecision,
} from '../core/drift/window-scoring.ts';

/** An alert the drift service opened (committed), as `onAlert` gets it. */
export interface DriftAlertOpened {
  alertId: string;
  bundleId: string;
  /** The model version the alert is about (the bundle's). */
  model: ModelRef;
  /** `*` (the whole fleet) or `KEY=VALUE`. */
  cohort: string;
  /** ISO times. */
  window: { start: string; end: string };
  driftedShare: number;
}

export interface DriftServiceOptions {
  store: DriftStore;
  baselines: DriftBaselines;
  models: Pick<ModelStore, 'getByBundleId'>;
  /** The device's tags now (its cohorts); {} for a device without any. */
  deviceTags: (deviceId: string) => Promise<Record<string, string>>;
  policy: DriftPolicy;
  nowMs: () => number;
  logger: Logger;
  metrics: Pick<Metrics, 'driftFlushes' | 'driftLateFlushes' | 'driftAlerts'>;
  /** For KLL compactions while merging (tests pass a seeded one). */
  random?: RandomSource;
  newId?: () => string;
  /** Called for each alert opened, after it is committed; awaited, its failure logged. */
  onAlert?: (alert: DriftAlertOpened) => Promise<void> | void;
}

export interface DriftService {
  /** A verified drift flush from `deviceId`: stored or refused (never thrown for a refusal). */
  onFlush(deviceId: string, message: DriftReportMessage): Promise<FlushResult>;
  /** Merges new flushes into the cumulative views and scores the windows past their grace. */
  tick(): Promise<void>;
  start(): void;
  close(): Promise<void>;
}

/** Flushes merged into a cumulative view per transaction. */
const CUMULATIVE_BATCH = 500;
/** Batches per bundle per tick; the rest waits for the next tick. */
const CUMULATIVE_BATCHES_PER_TICK = 20;

export function createDriftService(options: DriftServiceOptions): DriftService {
  const { store, baselines, models, logger, metrics, nowMs } = options;
  const policy = checkDriftPolicy(options.policy);
  const newId = options.newId ?? randomUUID;
  const scoring: ScoringOptions = {
    cohortTags: policy.cohortTags,
    driftedShare: policy.driftedShare,
    minSamples: policy.minSamples,
    thresholds: policy.thresholds,
    ...(options.random ? { random: options.random } : {}),
  };
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;

  async function profileOf(bundleId: string): Promise<DriftBaseline | null> {
    try {
      return await baselines.forBundle(bundleId);
    } catch (error) {
      if (!isFleetError(error)) throw error;
      logger.error(
        { bundleId, code: error.code, reason: error.message },
        'drift profile unreadable',
      );
      return null;
    }
  }

  async function receive(
    deviceId: string,
    message: DriftReportMessage,
    now: number,
  ): Promise<{ result: FlushResult; reason?: string; late?: boolean }> {
    const row = await models.getByBundleId(message.model.bundleId);
    const bundle: ModelRef | null = row
      ? { name: row.name, version: row.version, release: row.release }
      : null;
    const profile = bundle ? await profileOf(message.model.bundleId) : null;
    const checked = checkFlush(message, {
      bundle,
      profile,
      nowMs: now,
      maxClockSkewMs: policy.maxClockSkewMs,
    });
    if (!checked.ok) return checked;
    const window = windowOf(Date.parse(message.window.end), policy.windowMs);
    const outcome = await store.insertFlush({
      id: message.id,
      deviceId,
      seq: message.seq,
      bundleId: message.model.bundleId,
      modelName: message.model.name,
      modelVersion: message.model.version,
      modelRelease: message.model.release,
      rolloutId: message.rolloutId ?? null,
      labels: await options.deviceTags(deviceId),
      flushStart: new Date(message.window.start),
      flushEnd: new Date(message.window.end),
      windowEnd: new Date(window.endMs),
      inferences: message.inferences,
      sampled: message.sampled,
      signals: encodeSignals(checked.sketches.map((s) => [s.name, s.bytes] as const)),
      receivedAt: new Date(now),
    });
    if (outcome.result === 'replayed') {
      return { result: 'replayed', reason: `flush ${message.id} was received before` };
    }
    if (outcome.result === 'seq_reused') {
      return {
        result: 'seq_reused',
        reason: `device ${deviceId} sent seq ${message.seq} before, under another flush id`,
      };
    }
    return outcome;
  }

  async function scoreBundle(bundleId: string, now: number): Promise<void> {
    const row = await models.getByBundleId(bundleId);
    const profile = row ? await profileOf(bundleId) : null;
    if (!row || !profile) {
      logger.warn({ bundleId }, 'drift: flushes of a bundle without a readable profile wait');
      return;
    }
    const model = { name: row.name, version: row.version, release: row.release };
    const at = new Date(now);
    // Cumulative first: late flushes, and the flushes of windows not yet closed.
    for (let i = 0; i < CUMULATIVE_BATCHES_PER_TICK; i++) {
      const merged = await store.updateCumulative(
        bundleId,
        CUMULATIVE_BATCH,
        (current, flushes) => mergeCumulative(current, flushes, profile, scoring),
        at,
      );
      if (merged < CUMULATIVE_BATCH) break;
    }
    for (const end of await store.dueWindows(bundleId, now - policy.graceMs)) {
      const window = { start: new Date(end.getTime() - policy.windowMs), end };
      let decision: WindowDecision | null = null;
      const scored = await store.scoreWindow(
        bundleId,
        model,
        window,
        (flushes, open) => (decision = scoreWindowFlushes(flushes, open, profile, scoring, newId)),
        at,
      );
      if (scored && decision) {
        reportWindow(model, window.end, decision);
        await announce(bundleId, model, window, decision);
      }
    }
  }

  async function announce(
    bundleId: string,
    model: ModelRef,
    window: { start: Date; end: Date },
    decision: WindowDecision,
  ): Promise<void> {
    if (!options.onAlert) return;
    const fleetLast = [...decision.open].sort(
      (a, b) => Number(a.cohort === FLEET_COHORT) - Number(b.cohort === FLEET_COHORT),
    );
    for (const alert of fleetLast) {
      const opened: DriftAlertOpened = {
        alertId: alert.id,
        bundleId,
        model,
        cohort: alert.cohort,
        window: { start: window.start.toISOString(), end: window.end.toISOString() },
        driftedShare: alert.driftedShare,
      };
      try {
        await options.onAlert(opened);
      } catch (error) {
        logger.error(
          { err: error, bundleId, alertId: alert.id, cohort: alert.cohort },
          'drift onAlert failed; the alert stays opened',
        );
      }
    }
  }

  function reportWindow(model: ModelRef, end: Date, decision: WindowDecision): void {
    const where = { model: model.name, version: model.version, windowEnd: end.toISOString() };
    for (const alert of decision.open) {
      metrics.driftAlerts.inc({ event: 'opened' });
      logger.warn(
        {
          ...where,
          cohort: alert.cohort,
          driftedShare: alert.driftedShare,
          signals: alert.signals.map((s) => s.name),
        },
        'drift alert: cohort drifted',
      );
    }
    for (const cleared of decision.clear) {
      metrics.driftAlerts.inc({ event: 'cleared' });
      logger.info({ ...where, cohort: cleared.cohort }, 'drift alert cleared');
    }
  }

  async function tick(): Promise<void> {
    const now = nowMs();
    for (const bundleId of await store.bundlesWithWork()) {
      try {
        await scoreBundle(bundleId, now);
      } catch (error) {
        logger.error({ err: error, bundleId }, 'drift scoring failed; retried next tick');
      }
    }
  }

  return {
    async onFlush(deviceId, message) {
      const outcome = await receive(deviceId, message, nowMs());
      metrics.driftFlushes.inc({ result: outcome.result });
      const fields = {
        deviceId,
        flushId: message.id,
        seq: message.seq,
        bundleId: message.model.bundleId,
        result: outcome.result,
      };
      if (outcome.result === 'accepted') {
        if (outcome.late) metrics.driftLateFlushes.inc();
        logger.debug({ ...fields, late: outcome.late }, 'drift flush stored');
      } else if (outcome.result === 'replayed') {
        logger.info({ ...fields, reason: outcome.reason }, 'drift flush refused'); // QoS 1 redelivers
      } else {
        logger.warn({ ...fields, reason: outcome.reason }, 'drift flush refused');
      }
      return outcome.result;
    },

    tick() {
      // One pass at a time; a tick asked for during one waits for it and runs after.
      const next = (running ?? Promise.resolve()).then(tick);
      running = next.finally(() => {
        if (running === next) running = null;
      });
      return next;
    },

    start() {
      if (timer) return;
      timer = setInterval(() => {
        void this.tick().catch((error: unknown) =>
          logger.error({ err: error }, 'drift tick failed'),
        );
      }, policy.tickIntervalMs);
      timer.unref();
    },

    async close() {
      if (timer) clearInterval(timer);
      timer = null;
      await running?.catch(() => undefined);
    },
  };
}
