/**
 * Scoring a cohort's merged view against the bundle's baselines, and the
 * alert decisions that follow from a window's scores.
 *
 * Each signal is scored with the protocol's `scoreNumericSignal` or
 * `scoreCategoricalSignal` (distances with thresholds; "insufficient" below
 * the minimum count). A cohort's verdict:
 *
 *   insufficient  fewer than `minSamples` sampled inferences, or no signal
 *                 had enough values to score: no verdict, alerts unchanged
 *   drifted       drifted signals / the profile's signals >= `driftedShare`
 *   clean         otherwise
 *
 * The share is over every signal of the profile, so a cohort whose signals
 * are mostly unscorable does not alert on one.
 *
 * Alerts follow the windows, in order: a drifted window opens an alert for
 * the cohort unless one is open (raised once, not per window); a clean
 * window closes an open one; an insufficient window (or none) changes
 * nothing.
 */
import {
  scoreCategoricalSignal,
  scoreNumericSignal,
  type CategoryCounts,
  type CategoricalSignalSketch,
  type DriftMetric,
  type DriftThresholds,
  type SignalSketch,
} from '@fleet/protocol';
import type { CohortAggregate } from './cohort-aggregate.ts';
import type { DriftBaseline, SignalKind } from './drift-baselines.ts';

export interface SignalScore {
  name: string;
  kind: SignalKind;
  /** Values scored (finite numbers; categories without missing values). */
  n: number;
  insufficient: boolean;
  drifted: boolean;
  /** The distances at or above their threshold. */
  tripped: DriftMetric[];
  /** Empty when insufficient. */
  distances: Partial<Record<DriftMetric, number>>;
  /** Set when the distances could not be computed (the signal then counts as not drifted). */
  error?: string;
}

export type CohortVerdict = 'drifted' | 'clean' | 'insufficient';

export interface CohortScore {
  cohort: string;
  flushes: number;
  /** Distinct devices, or null where not tracked. */
  devices: number | null;
  sampled: number;
  inferences: number;
  verdict: CohortVerdict;
  /** Drifted signals over the profile's signals (0 when insufficient). */
  driftedShare: number;
  driftedSignals: string[];
  signals: SignalScore[];
}

export interface ScorePolicy {
  driftedShare: number;
  minSamples: number;
  thresholds: Partial<DriftThresholds>;
}

const METRICS: readonly DriftMetric[] = ['psi', 'jensenShannon', 'hellinger', 'ks', 'wasserstein'];

/** Category counts of a categorical sketch: every tracked item at its lower bound (what it surely saw). */
export function categoryCounts(sketch: CategoricalSignalSketch): CategoryCounts {
  const rows = sketch.items.frequentItems('noFalseNegatives', 0);
  return { n: sketch.items.n, counts: new Map(rows.map((r) => [r.item, r.lowerBound])) };
}

/** One signal's distances and verdict. */
export function scoreSignal(
  name: string,
  baseline: SignalSketch,
  current: SignalSketch,
  thresholds: Partial<DriftThresholds>,
): SignalScore {
  const n = current.kind === 'numeric' ? current.kll.n : current.items.n;
  const base = { name, kind: baseline.kind, n };
  try {
    const score =
      baseline.kind === 'numeric' && current.kind === 'numeric'
        ? scoreNumericSignal(baseline.kll, current.kll, thresholds)
        : baseline.kind === 'categorical' && current.kind === 'categorical'
          ? scoreCategoricalSignal(categoryCounts(baseline), categoryCounts(current), thresholds)
          : null;
    if (!score) throw new Error(`a ${current.kind} sketch for a ${baseline.kind} baseline`);
    if (score.insufficient) {
      return { ...base, insufficient: true, drifted: false, tripped: [], distances: {} };
    }
    const distances: Partial<Record<DriftMetric, number>> = {};
    for (const metric of METRICS) {
      const value = (score as Partial<Record<DriftMetric, number>>)[metric];
      if (value !== undefined) distances[metric] = value;
    }
    return {
      ...base,
      insufficient: false,
      drifted: score.drifted,
      tripped: score.tripped,
      distances,
    };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return {
      ...base,
      insufficient: true,
      drifted: false,
      tripped: [],
      distances: {},
      error: message,
    };
  }
}

/** Scores every signal of a cohort's view and gives the cohort's verdict. */
export function scoreCohort(
  view: CohortAggregate,
  profile: DriftBaseline,
  policy: ScorePolicy,
): CohortScore {
  const signals = profile.signals.map(({ name }) =>
    scoreSignal(name, profile.baselines.get(name)!, view.signals.get(name)!, policy.thresholds),
  );
  const scored = signals.filter((s) => !s.insufficient);
  const driftedSignals = scored.filter((s) => s.drifted).map((s) => s.name);
  const enough = view.sampled >= policy.minSamples && scored.length > 0;
  const driftedShare = enough ? driftedSignals.length / profile.signals.length : 0;
  return {
    cohort: view.cohort,
    flushes: view.flushes,
    devices: view.devices ? view.devices.size : null,
    sampled: view.sampled,
    inferences: view.inferences,
    verdict: !enough ? 'insufficient' : driftedShare >= policy.driftedShare ? 'drifted' : 'clean',
    driftedShare,
    driftedSignals: enough ? driftedSignals : [],
    signals,
  };
}

export interface AlertDecisions {
  /** Cohorts that became drifted: raise an alert. */
  open: CohortScore[];
  /** Cohorts with an open alert that are clean again: clear it. */
  clear: CohortScore[];
}

/** What one window's scores do to the alerts, given the cohorts whose alert is open. */
export function decideAlerts(
  scores: readonly CohortScore[],
  openCohorts: ReadonlySet<string>,
): AlertDecisions {
  return {
    open: scores.filter((s) => s.verdict === 'drifted' && !openCohorts.has(s.cohort)),
    clear: scores.filter((s) => s.verdict === 'clean' && openCohorts.has(s.cohort)),
  };
}
