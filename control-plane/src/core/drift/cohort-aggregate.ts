/**
 * Merging flushes into per-cohort views: each flush's signal sketches are
 * merged into the view of every cohort its device was in (`cohortsOf`), so
 * a view is the sketch of the union of what those devices sampled. Windows
 * build views from scratch; the cumulative view keeps merging into the one
 * it has.
 *
 * Accumulators start empty with the baseline's parameters (KLL k, the
 * frequent-items map size): merging keeps the accumulator's, so every view
 * is as precise as the baseline it is compared with.
 */
import {
  createCategoricalSignal,
  createNumericSignal,
  mergeSignal,
  type RandomSource,
  type SignalSketch,
} from '@fleet/protocol';
import { cohortsOf } from './cohorts.ts';
import type { DriftBaseline } from './drift-baselines.ts';

/** A stored flush with its sketches decoded. */
export interface FlushSketches {
  deviceId: string;
  /** The device's tags when the flush arrived. */
  tags: Readonly<Record<string, string>>;
  sampled: number;
  inferences: number;
  sketches: ReadonlyMap<string, SignalSketch>;
}

/** The merged view of one cohort. */
export interface CohortAggregate {
  cohort: string;
  flushes: number;
  /** Distinct devices; null where they are not tracked (the cumulative view). */
  devices: Set<string> | null;
  sampled: number;
  inferences: number;
  /** One merged sketch per profile signal, in the profile's order. */
  signals: Map<string, SignalSketch>;
}

export interface AggregateOptions {
  cohortTags: readonly string[];
  /** For KLL compactions (tests replay with a seeded source); default Math.random. */
  random?: RandomSource;
  /** Whether to count distinct devices (windows do; the cumulative view does not). */
  trackDevices?: boolean;
}

/** An empty sketch shaped like `baseline`. */
export function emptyLike(baseline: SignalSketch, random?: RandomSource): SignalSketch {
  return baseline.kind === 'numeric'
    ? createNumericSignal({ k: baseline.kll.k, ...(random ? { random } : {}) })
    : createCategoricalSignal({ maxMapSize: baseline.items.maxMapSize });
}

export function emptyAggregate(
  cohort: string,
  profile: DriftBaseline,
  options: Pick<AggregateOptions, 'random' | 'trackDevices'> = {},
): CohortAggregate {
  const signals = new Map<string, SignalSketch>();
  for (const { name } of profile.signals) {
    signals.set(name, emptyLike(profile.baselines.get(name)!, options.random));
  }
  return {
    cohort,
    flushes: 0,
    devices: options.trackDevices === false ? null : new Set(),
    sampled: 0,
    inferences: 0,
    signals,
  };
}

/** Merges one flush into one view. Signals the view does not hold are ignored (checked at receipt). */
export function addFlush(view: CohortAggregate, flush: FlushSketches): void {
  view.flushes += 1;
  view.devices?.add(flush.deviceId);
  view.sampled += flush.sampled;
  view.inferences += flush.inferences;
  for (const [name, sketch] of flush.sketches) {
    const into = view.signals.get(name);
    if (into) mergeSignal(into, sketch);
  }
}

/**
 * Merges `flushes` into per-cohort views: into those of `into` (the
 * cumulative view), with new cohorts started empty. Returns `into`.
 */
export function aggregateFlushes(
  flushes: Iterable<FlushSketches>,
  profile: DriftBaseline,
  options: AggregateOptions,
  into = new Map<string, CohortAggregate>(),
): Map<string, CohortAggregate> {
  for (const flush of flushes) {
    for (const cohort of cohortsOf(flush.tags, options.cohortTags)) {
      let view = into.get(cohort);
      if (!view) {
        view = emptyAggregate(cohort, profile, options);
        into.set(cohort, view);
      }
      addFlush(view, flush);
    }
  }
  return into;
}
