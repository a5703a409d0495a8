/**
 * The two scoring decisions the drift store runs inside its transactions,
 * as pure functions of stored records:
 *
 * - `scoreWindowFlushes`: a closed window's flushes -> per-cohort scores and
 *   the alerts they open or clear (cohort-score.ts `decideAlerts`).
 * - `mergeCumulative`: the cumulative views so far plus the next flushes ->
 *   the new views (their merged sketches and scores). Late flushes reach
 *   the cumulative view like any other, so none is lost.
 */
import {
  deserializeSignal,
  serializeSignal,
  type RandomSource,
  type SignalSketch,
} from '@fleet/protocol';
import {
  aggregateFlushes,
  emptyAggregate,
  type CohortAggregate,
  type FlushSketches,
} from './cohort-aggregate.ts';
import { decideAlerts, scoreCohort, type CohortScore, type ScorePolicy } from './cohort-score.ts';
import type { DriftBaseline } from './drift-baselines.ts';
import { cohortsOf } from './cohorts.ts';
import { decodeSignals, encodeSignals } from './signal-codec.ts';

/** A stored flush as the scorer reads it. */
export interface FlushRecord {
  deviceId: string;
  labels: Record<string, string>;
  sampled: number;
  inferences: number;
  /** signal-codec bytes. */
  signals: Uint8Array;
}

/** A drifted signal as an alert names it. */
export interface AlertSignal {
  name: string;
  tripped: string[];
  distances: Record<string, number>;
}

/** A cohort's score as stored (windows and the cumulative view). */
export interface StoredScore {
  cohort: string;
  verdict: CohortScore['verdict'];
  flushes: number;
  sampled: number;
  inferences: number;
  driftedShare: number;
  driftedSignals: string[];
  signalScores: CohortScore['signals'];
}

export interface WindowDecision {
  windows: Array<StoredScore & { devices: number }>;
  open: Array<{ id: string; cohort: string; driftedShare: number; signals: AlertSignal[] }>;
  /** Cohorts whose open alert this window clears, with the clean window's share. */
  clear: Array<{ cohort: string; driftedShare: number }>;
}

/** A cumulative view as stored: its score and merged sketches. */
export interface CumulativeRecord extends StoredScore {
  /** signal-codec bytes of the merged sketches. */
  sketches: Uint8Array;
}

export interface ScoringOptions extends ScorePolicy {
  cohortTags: readonly string[];
  random?: RandomSource;
}

function decodeSketches(bytes: Uint8Array, random?: RandomSource): Map<string, SignalSketch> {
  return new Map(
    decodeSignals(bytes).map(([name, sketch]) => [
      name,
      deserializeSignal(sketch, random ? { random } : {}),
    ]),
  );
}

/** A stored flush with its sketches decoded. */
export function decodeFlush(record: FlushRecord, random?: RandomSource): FlushSketches {
  return {
    deviceId: record.deviceId,
    tags: record.labels,
    sampled: record.sampled,
    inferences: record.inferences,
    sketches: decodeSketches(record.signals, random),
  };
}

function stored(score: CohortScore): StoredScore {
  return {
    cohort: score.cohort,
    verdict: score.verdict,
    flushes: score.flushes,
    sampled: score.sampled,
    inferences: score.inferences,
    driftedShare: score.driftedShare,
    driftedSignals: score.driftedSignals,
    signalScores: score.signals,
  };
}

/** The drifted signals of a score, as an alert names them. */
export function alertSignals(score: CohortScore): AlertSignal[] {
  return score.signals
    .filter((s) => s.drifted)
    .map((s) => ({
      name: s.name,
      tripped: s.tripped,
      distances: s.distances,
    }));
}

/** Scores a closed window's flushes per cohort and decides its alerts. */
export function scoreWindowFlushes(
  records: readonly FlushRecord[],
  openCohorts: ReadonlySet<string>,
  profile: DriftBaseline,
  options: ScoringOptions,
  newId: () => string,
): WindowDecision {
  const flushes = records.map((r) => decodeFlush(r, options.random));
  const views = aggregateFlushes(flushes, profile, { ...options, trackDevices: true });
  const scores = [...views.values()].map((view) => scoreCohort(view, profile, options));
  const alerts = decideAlerts(scores, openCohorts);
  return {
    windows: scores.map((score) => ({ ...stored(score), devices: score.devices ?? 0 })),
    open: alerts.open.map((score) => ({
      id: newId(),
      cohort: score.cohort,
      driftedShare: score.driftedShare,
      signals: alertSignals(score),
    })),
    clear: alerts.clear.map((score) => ({
      cohort: score.cohort,
      driftedShare: score.driftedShare,
    })),
  };
}

function viewOf(
  record: CumulativeRecord,
  profile: DriftBaseline,
  random?: RandomSource,
): CohortAggregate {
  const view = emptyAggregate(record.cohort, profile, {
    trackDevices: false,
    ...(random ? { random } : {}),
  });
  const sketches = decodeSketches(record.sketches, random);
  for (const name of view.signals.keys()) {
    const sketch = sketches.get(name);
    if (sketch) view.signals.set(name, sketch);
  }
  view.flushes = record.flushes;
  view.sampled = record.sampled;
  view.inferences = record.inferences;
  return view;
}

/** Merges the next flushes into the cumulative views and scores every view they touched. */
export function mergeCumulative(
  current: readonly CumulativeRecord[],
  records: readonly FlushRecord[],
  profile: DriftBaseline,
  options: ScoringOptions,
): CumulativeRecord[] {
  const views = new Map(current.map((r) => [r.cohort, viewOf(r, profile, options.random)]));
  const touched = new Set(records.flatMap((r) => cohortsOf(r.labels, options.cohortTags)));
  aggregateFlushes(
    records.map((r) => decodeFlush(r, options.random)),
    profile,
    { ...options, trackDevices: false },
    views,
  );
  return [...touched].map((cohort) => {
    const view = views.get(cohort)!;
    const sketches = encodeSignals(
      [...view.signals].map(([name, sketch]) => [name, serializeSignal(sketch)] as const),
    );
    return { ...stored(scoreCohort(view, profile, options)), sketches };
  });
}
