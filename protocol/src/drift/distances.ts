/**
 * Drift distances between a baseline distribution (the sketch shipped in the
 * model bundle) and a current one (sketches merged over a cohort and a time
 * window), and the drift verdict the control plane takes from them
 * (ARCHITECTURE "Drift"). At the sample sizes of a fleet every p-value is
 * "significant", so drift is a distance passing a threshold.
 *
 * Numbers are read through `QuantileView`, which a KLL sketch and raw samples
 * (`createSampleDistribution`) both satisfy; categories through
 * `CategoryCounts`, which a frequent-items sketch's estimates fill.
 *
 * Error of a sketch-based distance. A sketch's CDF values are off by at most
 * ε and its bin masses by at most η ≤ 2ε (for KLL at k = 200 DataSketches
 * quotes ε = 1.33% and η = 1.65%, the 99th percentile of the maximum error):
 * - KS: at most ε_a + ε_b + 1/grid (`ksDistance`), and nearly reached.
 * - W1: at most (1/grid)·Σ_j (Q(r_j + ε) − Q(r_j − ε)) per view, ≤ 2ε·range
 *   (`wasserstein1`).
 * - Hellinger and JS distance are metrics, so the error is at most each
 *   view's distance to its exact pmf on the same split points, bounded bin
 *   by bin: Hellinger ≤ Σ_view √(½ Σ_i (√p_i − √max(0, p_i − η))²), JS
 *   likewise with each bin's JS term at p_i ± η. PSI is not a metric: bound
 *   each bin's (convex) term over the box p_i ± η_a, q_i ± η_b.
 * The binned bounds let every bin err by η its worst way and are loose (at
 * the KLL figures: Hellinger 0.12–0.14, JS 0.27–0.30, PSI 0.29–0.61). With
 * rank errors of the KLL size injected (distances.test.ts) the largest
 * errors seen were KS 0.027, W1/IQR 0.18, Hellinger 0.09, JS 0.11, PSI 0.17;
 * taking the split points from a sketch rather than the exact baseline
 * changed PSI, JS and Hellinger by under 0.01.
 *
 * @example
 *   const score = scoreNumericSignal(baselineSketch, mergedSketch);
 *   if (!score.insufficient && score.drifted) alert(score.tripped); // ['ks', 'wasserstein']
 */
import { FleetError } from '../errors.ts';

/** A one-dimensional numeric distribution read through its CDF and quantile function. */
export interface QuantileView {
  /** Items summarised; a view with n = 0 is empty and cannot be scored. */
  readonly n: number;
  /** Smallest and largest item (exact in a KLL sketch). */
  readonly min: number;
  readonly max: number;
  /**
   * Inclusive CDF at strictly increasing, finite `splitPoints`: an array of
   * length `splitPoints.length + 1` whose entry i is the fraction of items
   * `<= splitPoints[i]`, and whose last entry is 1.
   */
  cdf(splitPoints: readonly number[]): number[];
  /** The smallest item x with cdf(x) >= rank, for rank in [0, 1]: quantile(0) = min, quantile(1) = max. */
  quantile(rank: number): number;
}

/**
 * Category frequencies. `n` counts every item, including those of categories
 * `counts` does not list (a frequent-items sketch keeps only the frequent
 * ones); the unlisted remainder goes to the "other" bucket. Counts may not
 * add up to more than n: from a frequent-items sketch take lower bounds.
 */
export interface CategoryCounts {
  readonly n: number;
  readonly counts: ReadonlyMap<string, number>;
}

/** Baseline quantile bins, as in the credit-scoring PSI convention of deciles. */
export const DEFAULT_BINS = 10;
/** Ranks per view in the KS grid and cells in the W1 integral (error ≤ 1/grid for KS). */
export const DEFAULT_GRID = 1000;
/** PSI smoothing: about one item in ten thousand (see `psi`). */
export const DEFAULT_PSI_EPSILON = 1e-4;
/** Categories kept by name in categorical pmfs; the rest share "other". */
export const DEFAULT_MAX_CATEGORIES = 50;
/** How far a pmf's sum may be from 1 (float error of cdf differences, sketch weights). */
export const PMF_SUM_TOLERANCE = 1e-6;

const CDF_TOLERANCE = 1e-9;
const MAX_BINS = 1000;
const MAX_GRID = 100_000;

function malformed(message: string): FleetError {
  return new FleetError('MALFORMED', message);
}

/** Throws MALFORMED unless `splitPoints` are finite and strictly increasing (for view implementations). */
export function assertSplitPoints(splitPoints: readonly number[]): void {
  for (let i = 0; i < splitPoints.length; i++) {
    const s = splitPoints[i]!;
    if (!Number.isFinite(s)) throw malformed(`split point ${i} is ${s}: split points are finite`);
    if (i > 0 && !(s > splitPoints[i - 1]!)) {
      throw malformed(`split point ${i} (${s}) does not increase: split points strictly increase`);
    }
  }
}

function checkView(view: QuantileView, name: string): void {
  if (!(Number.isFinite(view.n) && view.n > 0)) {
    throw malformed(`${name} is empty (n = ${view.n}): a distance needs items on both sides`);
  }
  if (!(Number.isFinite(view.min) && Number.isFinite(view.max) && view.min <= view.max)) {
    throw malformed(`${name} has min ${view.min} and max ${view.max}: both finite, min <= max`);
  }
}

function viewQuantile(view: QuantileView, rank: number, name: string): number {
  const value = view.quantile(rank);
  if (!Number.isFinite(value)) throw malformed(`${name} quantile at rank ${rank} is ${value}`);
  return value;
}

/** The view's CDF at `points`, checked: right length, finite, in [0, 1], non-decreasing, ending at 1. */
function viewCdf(view: QuantileView, points: readonly number[], name: string): number[] {
  const cdf = view.cdf(points);
  if (cdf.length !== points.length + 1) {
    throw malformed(`${name} cdf has ${cdf.length} entries for ${points.length} split points`);
  }
  let previous = 0;
  const out = cdf.map((value, i) => {
    if (!(value >= previous - CDF_TOLERANCE && value <= 1 + CDF_TOLERANCE)) {
      throw malformed(`${name} cdf entry ${i} is ${value}: cdf values rise from 0 to 1`);
    }
    previous = Math.max(previous, value);
    return Math.min(1, previous);
  });
  if (Math.abs(cdf[cdf.length - 1]! - 1) > CDF_TOLERANCE) {
    throw malformed(`${name} cdf ends at ${cdf[cdf.length - 1]}, not 1`);
  }
  return out;
}

function sortedUnique(values: number[]): number[] {
  values.sort((a, b) => a - b);
  return values.filter((v, i) => i === 0 || v !== values[i - 1]);
}

/** The largest double below `x` (so that a split at it puts exactly the items below `x` left of it). */
function nextDown(x: number): number {
  if (x === 0) return -Number.MIN_VALUE;
  const float = new Float64Array([x]);
  const bits = new BigInt64Array(float.buffer);
  bits[0] = bits[0]! + (x > 0 ? -1n : 1n);
  return float[0]!;
}

function checkIntegerIn(value: number, low: number, high: number, what: string): void {
  if (!(Number.isInteger(value) && value >= low && value <= high)) {
    throw malformed(`${what} is ${value}: an integer from ${low} to ${high}`);
  }
}

/**
 * Split points from the baseline: just below its min, its quantiles at ranks
 * 1/bins … (bins−1)/bins, and its max, with equal quantiles merged (discrete
 * data). The bins are then: below the baseline's range (baseline mass 0),
 * up to `bins` quantile bins, and above its range (baseline mass 0), so values
 * outside what the model was trained on show up as their own bins.
 */
export function baselineSplitPoints(baseline: QuantileView, bins = DEFAULT_BINS): number[] {
  checkView(baseline, 'baseline');
  checkIntegerIn(bins, 2, MAX_BINS, 'the bin count');
  const points = [baseline.max];
  const below = nextDown(baseline.min);
  if (Number.isFinite(below)) points.push(below);
  for (let i = 1; i < bins; i++) points.push(viewQuantile(baseline, i / bins, 'baseline'));
  return sortedUnique(points);
}

/** The pmf of the bins between CDF values: entry i is cdf[i] − cdf[i−1] (cdf[−1] = 0). */
export function pmfFromCdf(cdf: readonly number[]): number[] {
  return cdf.map((value, i) => Math.max(0, value - (i === 0 ? 0 : cdf[i - 1]!)));
}

/** Baseline and current pmfs over the baseline's bins (`baselineSplitPoints`). */
export function numericPmfs(
  baseline: QuantileView,
  current: QuantileView,
  bins = DEFAULT_BINS,
): { splitPoints: number[]; baseline: number[]; current: number[] } {
  const splitPoints = baselineSplitPoints(baseline, bins);
  checkView(current, 'current');
  return {
    splitPoints,
    baseline: pmfFromCdf(viewCdf(baseline, splitPoints, 'baseline')),
    current: pmfFromCdf(viewCdf(current, splitPoints, 'current')),
  };
}

/** Checks two pmfs of equal length, non-negative and summing to 1 ± PMF_SUM_TOLERANCE; returns them renormalised. */
function checkPmfs(p: readonly number[], q: readonly number[]): [number[], number[]] {
  if (p.length === 0 || p.length !== q.length) {
    throw malformed(
      `pmfs of ${p.length} and ${q.length} bins: two pmfs of the same, non-zero length`,
    );
  }
  const check = (pmf: readonly number[], name: string): number[] => {
    let sum = 0;
    pmf.forEach((v, i) => {
      if (!(Number.isFinite(v) && v >= 0)) throw malformed(`${name} pmf bin ${i} is ${v}`);
      sum += v;
    });
    if (!(Math.abs(sum - 1) <= PMF_SUM_TOLERANCE)) {
      throw malformed(`${name} pmf sums to ${sum}, not 1`);
    }
    return pmf.map((v) => v / sum);
  };
  return [check(p, 'baseline'), check(q, 'current')];
}

/**
 * Population stability index Σ (q_i − p_i)·ln(q_i / p_i) (natural log; it is
 * KL(p‖q) + KL(q‖p), so PSI(p, q) = PSI(q, p)). Every bin of both pmfs is
 * smoothed additively and renormalised, p_i ← (p_i + ε) / (1 + Bε), so an
 * empty bin gives a large finite term instead of infinity: with ε = 1e-4 an
 * empty bin against one of mass 0.1 adds about 0.69.
 */
export function psi(
  baselinePmf: readonly number[],
  currentPmf: readonly number[],
  options: { epsilon?: number } = {},
): number {
  const epsilon = options.epsilon ?? DEFAULT_PSI_EPSILON;
  if (!(epsilon > 0 && epsilon < 1)) throw malformed(`PSI epsilon is ${epsilon}: in (0, 1)`);
  const [p, q] = checkPmfs(baselinePmf, currentPmf);
  const norm = 1 + p.length * epsilon;
  let total = 0;
  for (let i = 0; i < p.length; i++) {
    const a = (p[i]! + epsilon) / norm;
    const b = (q[i]! + epsilon) / norm;
    total += (b - a) * Math.log(b / a);
  }
  return total;
}

/**
 * Jensen-Shannon DISTANCE, base 2: √JSD with JSD = ½KL(p‖m) + ½KL(q‖m),
 * m = (p + q)/2. In [0, 1]: 0 for equal pmfs, 1 for disjoint ones. Unlike
 * the divergence it is a metric (triangle inequality). Square it for the divergence.
 */
export function jensenShannonDistance(
  baselinePmf: readonly number[],
  currentPmf: readonly number[],
): number {
  const [p, q] = checkPmfs(baselinePmf, currentPmf);
  let divergence = 0;
  let overlap = 0; // Σ ((a+b)/2 − term) = 1 − JSD, exact where JSD is near 1
  for (let i = 0; i < p.length; i++) {
    const term = jsTerm(p[i]!, q[i]!);
    divergence += term;
    overlap += (p[i]! + q[i]!) / 2 - term;
  }
  return Math.sqrt(divergence < 0.5 ? divergence : Math.max(0, 1 - overlap));
}

/** Bin i's share of the JS divergence (bits), from 0 (a = b) to (a + b)/2 (one of them 0). */
export function jsTerm(a: number, b: number): number {
  if (a === 0 || b === 0) return (a + b) / 2;
  const d = (a - b) / (a + b);
  // a·log2(2a/(a+b)) + b·log2(2b/(a+b)); with log1p(±d) near a = b, where the logs cancel
  const sum =
    Math.abs(d) < 0.5
      ? (a * Math.log1p(d) + b * Math.log1p(-d)) / Math.LN2
      : a * Math.log2((2 * a) / (a + b)) + b * Math.log2((2 * b) / (a + b));
  return Math.min((a + b) / 2, Math.max(0, sum / 2));
}

/** Hellinger distance √(1 − Σ √(p_i q_i)) = √(½ Σ (√p_i − √q_i)²), in [0, 1]; a metric. */
export function hellinger(baselinePmf: readonly number[], currentPmf: readonly number[]): number {
  const [p, q] = checkPmfs(baselinePmf, currentPmf);
  let affinity = 0;
  let squares = 0;
  for (let i = 0; i < p.length; i++) {
    affinity += Math.sqrt(p[i]! * q[i]!);
    squares += (Math.sqrt(p[i]!) - Math.sqrt(q[i]!)) ** 2;
  }
  // each form where it does not cancel: 1 − affinity far apart, the squares close together
  const squared = affinity < 0.5 ? 1 - affinity : squares / 2;
  return Math.sqrt(Math.min(1, Math.max(0, squared)));
}

function checkGrid(grid: number): void {
  checkIntegerIn(grid, 2, MAX_GRID, 'the grid size');
}

/**
 * Kolmogorov-Smirnov distance max_x |F_a(x) − F_b(x)|, in [0, 1], evaluated
 * at both views' min, max and quantiles at ranks j/grid, j = 0 … grid.
 * Between two such points neither CDF rises by 1/grid or more (else a
 * quantile would lie between them), so the result is below the views' true
 * maximum gap by less than 1/grid. For sketches with rank errors ε_a, ε_b the
 * error against the exact distributions is at most ε_a + ε_b + 1/grid: 2.8%
 * for two KLL sketches at k = 200 (1.33% each; 3.4% taking 1.65% each).
 */
export function ksDistance(
  baseline: QuantileView,
  current: QuantileView,
  options: { grid?: number } = {},
): number {
  const grid = options.grid ?? DEFAULT_GRID;
  checkView(baseline, 'baseline');
  checkView(current, 'current');
  checkGrid(grid);
  const points = [baseline.min, baseline.max, current.min, current.max];
  for (let j = 0; j <= grid; j++) {
    points.push(viewQuantile(baseline, j / grid, 'baseline'));
    points.push(viewQuantile(current, j / grid, 'current'));
  }
  const splitPoints = sortedUnique(points);
  const fa = viewCdf(baseline, splitPoints, 'baseline');
  const fb = viewCdf(current, splitPoints, 'current');
  let gap = 0;
  for (let i = 0; i < splitPoints.length; i++) gap = Math.max(gap, Math.abs(fa[i]! - fb[i]!));
  return gap;
}

/**
 * Wasserstein-1 distance ∫₀¹ |Q_a(r) − Q_b(r)| dr, in the signal's units, by
 * the midpoint rule on `grid` rank cells. Integration error: at most
 * (range_a + range_b)/grid; about 1e-4 for 50,000 normal samples. A sketch's
 * Q̂(r) lies between Q(r − ε) and Q(r + ε), so each view adds at most
 * (1/grid)·Σ_j (Q(r_j + ε) − Q(r_j − ε)) ≤ 2ε·range. That is a lot: two
 * views off by 1.33% in opposite directions moved W1/IQR by 0.13 on normal
 * data and by 0.18 with a 5% far tail; KS is the precise one of the two.
 */
export function wasserstein1(
  a: QuantileView,
  b: QuantileView,
  options: { grid?: number } = {},
): number {
  const grid = options.grid ?? DEFAULT_GRID;
  checkView(a, 'baseline');
  checkView(b, 'current');
  checkGrid(grid);
  let total = 0;
  for (let j = 0; j < grid; j++) {
    const r = (j + 0.5) / grid;
    total += Math.abs(viewQuantile(a, r, 'baseline') - viewQuantile(b, r, 'current'));
  }
  return total / grid;
}

/**
 * The baseline's scale for W1: its interquartile range Q(0.75) − Q(0.25);
 * when that is 0 (over half the mass on one value), its range; when the
 * baseline is a single value, 1 (W1 then stays in the signal's units).
 * The IQR rather than p99 − p1: it is robust to outliers, and a sketch gets
 * it right, since mid ranks sit where the density is high and a rank error
 * of ε moves the value little, whereas with ε = 1.33% a sketch's p1 can be
 * any value from the min to the true p2.33. For a normal baseline IQR = 1.349σ,
 * so W1/IQR = 0.2 is a mean shift of 0.27σ.
 */
export function wassersteinScale(baseline: QuantileView): number {
  checkView(baseline, 'baseline');
  const iqr = viewQuantile(baseline, 0.75, 'baseline') - viewQuantile(baseline, 0.25, 'baseline');
  if (iqr > 0) return iqr;
  const range = baseline.max - baseline.min;
  return range > 0 ? range : 1;
}

/** W1 divided by the baseline's `wassersteinScale`. */
export function wassersteinNormalized(
  baseline: QuantileView,
  current: QuantileView,
  options: { grid?: number } = {},
): number {
  return wasserstein1(baseline, current, options) / wassersteinScale(baseline);
}

function checkCounts(view: CategoryCounts, name: string): void {
  if (!(Number.isFinite(view.n) && view.n > 0)) {
    throw malformed(`${name} is empty (n = ${view.n}): a distance needs items on both sides`);
  }
  let sum = 0;
  for (const [category, count] of view.counts) {
    if (!(Number.isFinite(count) && count >= 0)) {
      throw malformed(`${name} count of "${category}" is ${count}`);
    }
    sum += count;
  }
  if (sum > view.n * (1 + PMF_SUM_TOLERANCE)) {
    throw malformed(`${name} counts add up to ${sum}, more than its n = ${view.n}`);
  }
}

/**
 * Baseline and current pmfs over the baseline's `maxCategories` most frequent
 * categories (ties by name), then one "other" bucket: the baseline's rarer and
 * unlisted categories, and every category the baseline does not name (a new
 * class shows up there).
 */
export function categoricalPmfs(
  baseline: CategoryCounts,
  current: CategoryCounts,
  maxCategories = DEFAULT_MAX_CATEGORIES,
): { categories: string[]; baseline: number[]; current: number[] } {
  checkCounts(baseline, 'baseline');
  checkCounts(current, 'current');
  checkIntegerIn(maxCategories, 1, 100_000, 'the category limit');
  const categories = [...baseline.counts]
    .filter(([, count]) => count > 0)
    .sort(([a, ca], [b, cb]) => cb - ca || (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, maxCategories)
    .map(([category]) => category);
  const pmf = (view: CategoryCounts): number[] => {
    const listed = categories.map((c) => Math.min(1, (view.counts.get(c) ?? 0) / view.n));
    const sum = listed.reduce((s, v) => s + v, 0);
    return [...listed.map((v) => v / Math.max(1, sum)), Math.max(0, 1 - sum)];
  };
  return { categories, baseline: pmf(baseline), current: pmf(current) };
}

/** The distances a drift verdict looks at. */
export type DriftMetric = 'psi' | 'jensenShannon' | 'hellinger' | 'ks' | 'wasserstein';

/** A distance at or above its threshold trips (Infinity: never); `minCount` is the fewest current items scored. */
export interface DriftThresholds {
  readonly psi: number;
  readonly jensenShannon: number;
  readonly hellinger: number;
  readonly ks: number;
  readonly wasserstein: number;
  readonly minCount: number;
}

/**
 * Defaults, each a distance at or above which a signal counts as drifted
 * (figures for normals: a mean shift of d·σ; "trials": 400 unchanged windows
 * scored against a 20,000-sample baseline):
 * - `psi` 0.2: credit scoring reads PSI < 0.1 as stable, 0.1–0.2 as a
 *   moderate and ≥ 0.2 as a significant shift; an alert may start a
 *   federated round, so it takes "significant" (moderate stays visible in the
 *   value). An unchanged signal has PSI ≈ χ²(B−1)/n: ≥ 0.1 in 38% of trials
 *   at n = 100. Trips at d ≈ 0.47.
 * - `jensenShannon` 0.19, `hellinger` 0.16: PSI = 0.2 restated, since for
 *   small shifts JSD ≈ PSI/(8 ln 2) bits and Hellinger² ≈ PSI/8; the three
 *   trip together (all at d ≈ 0.47) instead of the loosest deciding.
 * - `ks` 0.1: a tenth of the mass on the other side of some value; d ≈ 0.25.
 *   Two KLL k = 200 sketches add at most 2.8% (3.4% at 1.65% each), so 0.1 is
 *   three times the sketch error, and an unchanged signal at n = 500 passes
 *   it with probability ≤ 2·exp(−2·500·0.1²) ≈ 1e-4 (DKW).
 * - `wasserstein` 0.2, W1 over the baseline's IQR: the mass moved a fifth of
 *   the IQR on average; d ≈ 0.27, in line with KS. Not lower, since sketch
 *   error alone can move it by 0.13–0.18 (`wasserstein1`).
 * - `minCount` 500: below it an unchanged signal often trips (at n = 100 KS
 *   in 27% of trials, PSI in 3%; at n = 200 KS in 4%; at 500, none of 400),
 *   so the answer is "insufficient" rather than a score.
 */
export const DEFAULT_DRIFT_THRESHOLDS: DriftThresholds = Object.freeze({
  psi: 0.2,
  jensenShannon: 0.19,
  hellinger: 0.16,
  ks: 0.1,
  wasserstein: 0.2,
  minCount: 500,
});

/** Too few current items to score. */
export interface InsufficientData {
  readonly insufficient: true;
  readonly drifted: false;
  readonly n: number;
  readonly minCount: number;
}

/** Distances of a categorical signal and the verdict; `tripped` lists the metrics at or above threshold. */
export interface CategoricalDriftScore {
  readonly insufficient: false;
  readonly n: number;
  readonly psi: number;
  readonly jensenShannon: number;
  readonly hellinger: number;
  readonly drifted: boolean;
  readonly tripped: DriftMetric[];
}

/** Distances of a numeric signal (wasserstein over `wassersteinScale`) and the verdict. */
export interface NumericDriftScore extends CategoricalDriftScore {
  readonly ks: number;
  readonly wasserstein: number;
}

/** Options of the scoring functions; defaults DEFAULT_BINS, DEFAULT_GRID, DEFAULT_PSI_EPSILON, DEFAULT_MAX_CATEGORIES. */
export interface DriftOptions {
  bins?: number;
  grid?: number;
  epsilon?: number;
  maxCategories?: number;
}

function mergeThresholds(overrides: Partial<DriftThresholds>): DriftThresholds {
  const given = Object.entries(overrides).filter(([, value]) => value !== undefined);
  const merged: DriftThresholds = { ...DEFAULT_DRIFT_THRESHOLDS, ...Object.fromEntries(given) };
  for (const [name, value] of Object.entries(merged)) {
    if (!(typeof value === 'number' && value >= 0 && !Number.isNaN(value))) {
      throw malformed(`drift threshold ${name} is ${String(value)}: a number >= 0`);
    }
  }
  return merged;
}

function verdict<D extends Partial<Record<DriftMetric, number>>>(
  distances: D,
  thresholds: DriftThresholds,
  n: number,
): D & { insufficient: false; n: number; drifted: boolean; tripped: DriftMetric[] } {
  const tripped = (Object.keys(distances) as DriftMetric[]).filter(
    (metric) => distances[metric]! >= thresholds[metric],
  );
  return { insufficient: false, n, ...distances, drifted: tripped.length > 0, tripped };
}

function insufficient(n: number, minCount: number): InsufficientData | undefined {
  return n < minCount ? { insufficient: true, drifted: false, n, minCount } : undefined;
}

/**
 * Every numeric distance of `current` against `baseline`, and whether any
 * reached its threshold. With fewer than `thresholds.minCount` current items
 * (an empty window included) the answer is `insufficient: true`.
 *
 * @example
 *   scoreNumericSignal(baseline, current, { ks: 0.05 }); // a stricter KS, other defaults kept
 */
export function scoreNumericSignal(
  baseline: QuantileView,
  current: QuantileView,
  thresholds: Partial<DriftThresholds> = {},
  options: DriftOptions = {},
): NumericDriftScore | InsufficientData {
  const limits = mergeThresholds(thresholds);
  checkView(baseline, 'baseline');
  const short = insufficient(current.n, limits.minCount);
  if (short) return short;
  const pmfs = numericPmfs(baseline, current, options.bins);
  const grid = { grid: options.grid ?? DEFAULT_GRID };
  const distances = {
    psi: psi(pmfs.baseline, pmfs.current, { epsilon: options.epsilon ?? DEFAULT_PSI_EPSILON }),
    jensenShannon: jensenShannonDistance(pmfs.baseline, pmfs.current),
    hellinger: hellinger(pmfs.baseline, pmfs.current),
    ks: ksDistance(baseline, current, grid),
    wasserstein: wassersteinNormalized(baseline, current, grid),
  };
  return verdict(distances, limits, current.n);
}

/** PSI, JS distance and Hellinger of category frequencies (see `categoricalPmfs`), and the verdict. */
export function scoreCategoricalSignal(
  baseline: CategoryCounts,
  current: CategoryCounts,
  thresholds: Partial<DriftThresholds> = {},
  options: DriftOptions = {},
): CategoricalDriftScore | InsufficientData {
  const limits = mergeThresholds(thresholds);
  checkCounts(baseline, 'baseline');
  const short = insufficient(current.n, limits.minCount);
  if (short) return short;
  const pmfs = categoricalPmfs(baseline, current, options.maxCategories);
  const distances = {
    psi: psi(pmfs.baseline, pmfs.current, { epsilon: options.epsilon ?? DEFAULT_PSI_EPSILON }),
    jensenShannon: jensenShannonDistance(pmfs.baseline, pmfs.current),
    hellinger: hellinger(pmfs.baseline, pmfs.current),
  };
  return verdict(distances, limits, current.n);
}
