/**
 * How the control plane turns drift flushes into verdicts: windows, cohorts,
 * the share of drifted signals that makes a cohort drifted, and the clock
 * slack it allows devices. One value in `Config.drift`; the defaults and why
 * each is what it is are below.
 */
import type { DriftThresholds } from '@fleet/protocol';
import { controlPlaneError } from '../errors.ts';

export interface DriftPolicy {
  /**
   * Length of the tumbling windows flushes are merged in. A flush belongs to
   * the window that holds its `window.end` (the device's clock, so a window
   * does not depend on broker or outbox delay).
   */
  windowMs: number;
  /** How long after a window's end it is scored: flushes arriving later are counted as late. */
  graceMs: number;
  /** How often the scorer looks for windows past their grace. */
  tickIntervalMs: number;
  /**
   * Device tag keys whose values define cohorts: with `['cohort']`, a device
   * tagged `cohort=b` is in cohort `cohort=b`. The whole fleet is also
   * scored, as cohort `*`. A device without the tag is only in `*`.
   */
  cohortTags: string[];
  /** A cohort is drifted when at least this share of the profile's signals drifted. */
  driftedShare: number;
  /** Fewest sampled inferences a cohort needs in a window (or cumulatively) for a verdict. */
  minSamples: number;
  /** Per-signal thresholds over the protocol's DEFAULT_DRIFT_THRESHOLDS (distances.ts). */
  thresholds: Partial<DriftThresholds>;
  /** A flush whose window ends more than this after the control plane's clock is refused. */
  maxClockSkewMs: number;
}

/**
 * Defaults:
 * - `windowMs` 60 s: agents flush on a count or a time bound (the manifest's
 *   `flush.maxIntervalMs`), so a one-minute window gathers a flush or more
 *   per busy device, and a drifted cohort is flagged about a minute and a
 *   half after it starts (the issue asks for two flush windows).
 * - `graceMs` 30 s: covers publish retries and an outbox catching up after
 *   a short outage; later flushes still count in the cumulative view.
 * - `tickIntervalMs` 5 s: a closed window waits at most this long for its score.
 * - `cohortTags` `['cohort']`: one conventional tag, so a fleet opts in by
 *   tagging devices; name others (`site`, `camera`) per deployment.
 * - `driftedShare` 0.25: one signal alone is not enough to call a cohort
 *   drifted. A single input feature can move for a benign reason (a sensor
 *   offset, a brighter site), and each signal trips by chance now and then
 *   (at n >= 500 about 1e-4 per window for KS, by DKW; see
 *   DEFAULT_DRIFT_THRESHOLDS), while a real covariate shift moves several at
 *   once: the PCA projections and reconstruction error, the confidence, the
 *   class mix. A quarter of a typical profile (8 to 12 signals) is two or
 *   three signals. With 1 to 4 signals it is one.
 * - `minSamples` 500: the distances' own `minCount`; below it each signal
 *   is "insufficient" anyway, and a cohort verdict on fewer samples would
 *   rest on noise.
 * - `maxClockSkewMs` 5 min: device clocks drift and NTP can be late after
 *   boot; a window ending further ahead is not a clock error but a bug or a
 *   forgery, and would sit in a window nobody scores until then.
 */
export const DEFAULT_DRIFT_POLICY: DriftPolicy = {
  windowMs: 60_000,
  graceMs: 30_000,
  tickIntervalMs: 5_000,
  cohortTags: ['cohort'],
  driftedShare: 0.25,
  minSamples: 500,
  thresholds: {},
  maxClockSkewMs: 5 * 60_000,
};

/** Throws INVALID_REQUEST naming the first setting out of range. */
export function checkDriftPolicy(policy: DriftPolicy): DriftPolicy {
  const problems: Array<[keyof DriftPolicy, boolean, string]> = [
    [
      'windowMs',
      Number.isSafeInteger(policy.windowMs) && policy.windowMs >= 1_000,
      'whole ms, at least 1000',
    ],
    [
      'graceMs',
      Number.isSafeInteger(policy.graceMs) && policy.graceMs >= 0,
      'whole ms, at least 0',
    ],
    [
      'tickIntervalMs',
      Number.isSafeInteger(policy.tickIntervalMs) && policy.tickIntervalMs >= 10,
      'whole ms, at least 10',
    ],
    [
      'cohortTags',
      policy.cohortTags.every((t) => t.length > 0 && !t.includes('=')),
      'tag keys, without "="',
    ],
    ['driftedShare', policy.driftedShare > 0 && policy.driftedShare <= 1, 'a share in (0, 1]'],
    [
      'minSamples',
      Number.isSafeInteger(policy.minSamples) && policy.minSamples >= 1,
      'a whole number, at least 1',
    ],
    [
      'maxClockSkewMs',
      Number.isSafeInteger(policy.maxClockSkewMs) && policy.maxClockSkewMs >= 0,
      'whole ms, at least 0',
    ],
  ];
  const bad = problems.find(([, ok]) => !ok);
  if (bad) {
    throw controlPlaneError(
      'INVALID_REQUEST',
      `drift.${bad[0]} is ${JSON.stringify(policy[bad[0]])}: ${bad[2]}`,
    );
  }
  return policy;
}
