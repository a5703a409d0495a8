/**
 * A KLL quantile sketch of float64 values (Karnin, Lang, Liberty 2016), as in
 * Apache DataSketches' `KllDoublesSketch`: a few hundred retained values
 * answer rank, quantile, CDF and PMF queries over millions, within
 * `kllNormalizedRankError(k, ...)` (1.33% of n for a rank at k = 200, 99%
 * confidence), and sketches of separate streams merge into a sketch of their
 * union with the same guarantee. The agent feeds one per monitored numeric
 * signal; the control plane merges them and compares the result with the
 * training baseline (ARCHITECTURE "Drift").
 *
 * Written here: no JavaScript KLL implementation exists in the npm registry.
 * Level capacities, compaction and the error constants follow DataSketches;
 * the wire format is this project's own (kll-format.ts), not DataSketches'.
 *
 * Semantics (DataSketches' INCLUSIVE search criterion):
 * - `rank(v)` estimates the fraction of values <= v;
 * - `quantile(r)` is the smallest retained value whose estimated inclusive
 *   rank is at least r; `quantile(0)` is the exact min, `quantile(1)` the exact max;
 * - `cdf([s0, ..., sm])` is [rank(s0), ..., rank(sm), 1]: the buckets are
 *   (-inf, s0], (s0, s1], ..., (sm, +inf), and `pmf` gives their masses.
 * Non-finite values (NaN, +-Infinity) are not added: `update` skips them and
 * returns false, and they are not in n. Count them with `SummaryCounters`
 * (counters.ts), which the signal sketch (signal-sketch.ts) feeds alongside.
 * Queries of an empty sketch return NaN.
 *
 * @example
 *   const sketch = new KllSketch({ k: 200 });
 *   for (const x of confidences) sketch.update(x);
 *   sketch.quantile(0.5); // the median, within 1.33% in rank
 *   const union = KllSketch.deserialize(bytesFromDeviceA);
 *   union.merge(KllSketch.deserialize(bytesFromDeviceB));
 */
import { FleetError } from '../errors.ts';
import { decodeKll, encodeKll, KLL_MAX_SERIALIZED_BYTES } from './kll-format.ts';
import {
  compactLevel,
  KLL_DEFAULT_K,
  KLL_MAX_K,
  KLL_MIN_K,
  kllNormalizedRankError,
  levelCapacities,
  mergeSorted,
} from './kll-levels.ts';
import type { RandomSource } from './random.ts';

export interface KllOptions {
  /** Accuracy parameter, KLL_MIN_K (8) to KLL_MAX_K (65535); default 200. */
  k?: number;
  /** Chooses which half of a compacted level survives; default Math.random. */
  random?: RandomSource;
}

export interface KllDeserializeOptions {
  random?: RandomSource;
  /** Refuse (TOO_LARGE) more bytes than this; default KLL_MAX_SERIALIZED_BYTES. */
  maxBytes?: number;
}

/** Retained values in ascending order with their cumulative weights. */
interface SortedView {
  values: Float64Array;
  /** cumulative[i] = total weight of values[0..i]; the last is n. */
  cumulative: Float64Array;
}

export class KllSketch {
  #k: number;
  readonly #random: RandomSource;
  /** levels[h]: items of weight 2^h; level 0 unsorted, the others ascending. */
  #levels: number[][] = [[]];
  #n = 0;
  #min = NaN;
  #max = NaN;
  #retained = 0;
  #capacities: number[] = [];
  #totalCapacity = 0;
  #view: SortedView | undefined;

  constructor(options: KllOptions = {}) {
    const k = options.k ?? KLL_DEFAULT_K;
    if (!Number.isInteger(k) || k < KLL_MIN_K || k > KLL_MAX_K) {
      throw new FleetError(
        'MALFORMED',
        `KLL k is an integer from ${KLL_MIN_K} to ${KLL_MAX_K}, not ${k}`,
      );
    }
    this.#k = k;
    this.#random = options.random ?? Math.random;
    this.#refreshCapacities();
  }

  /** The accuracy parameter; after a merge, the smaller of the two. */
  get k(): number {
    return this.#k;
  }

  /** How many (finite) values the sketch has seen. */
  get n(): number {
    return this.#n;
  }

  get isEmpty(): boolean {
    return this.#n === 0;
  }

  /** The exact smallest value seen; NaN when empty. */
  get min(): number {
    return this.#min;
  }

  /** The exact largest value seen; NaN when empty. */
  get max(): number {
    return this.#max;
  }

  /** How many values the sketch holds (at most about 3k + 8 x levels). */
  get numRetained(): number {
    return this.#retained;
  }

  get numLevels(): number {
    return this.#levels.length;
  }

  /** This sketch's error bound: `kllNormalizedRankError(k, pmf)`. */
  normalizedRankError(pmf = false): number {
    return kllNormalizedRankError(this.#k, pmf);
  }

  /** Adds a value; returns false (and changes nothing) for NaN and +-Infinity. */
  update(value: number): boolean {
    if (!Number.isFinite(value)) return false;
    if (this.#n >= Number.MAX_SAFE_INTEGER) {
      throw new FleetError('TOO_LARGE', 'a KLL sketch counts at most 2^53 - 1 values');
    }
    const item = value === 0 ? 0 : value; // -0 is stored as 0
    if (this.#retained >= this.#totalCapacity) this.#compactLowestFullLevel();
    this.#levels[0]!.push(item);
    this.#retained++;
    this.#n++;
    if (this.#n === 1) {
      this.#min = item;
      this.#max = item;
    } else if (item < this.#min) this.#min = item;
    else if (item > this.#max) this.#max = item;
    this.#view = undefined;
    return true;
  }

  /**
   * Adds everything `other` has seen. The result has the smaller k of the two
   * (and that k's error bound), as in DataSketches. `other` is not changed;
   * merging a sketch into itself counts its values twice.
   */
  merge(other: KllSketch): void {
    if (other.isEmpty) return;
    if (this.#n + other.#n > Number.MAX_SAFE_INTEGER) {
      throw new FleetError('TOO_LARGE', 'a merged KLL sketch would count 2^53 values or more');
    }
    const incoming = other.#levels.map((level) => level.slice());
    while (this.#levels.length < incoming.length) this.#levels.push([]);
    const level0 = this.#levels[0]!;
    for (const item of incoming[0]!) level0.push(item);
    for (let h = 1; h < incoming.length; h++) {
      this.#levels[h] = mergeSorted(this.#levels[h]!, incoming[h]!);
    }
    this.#min = this.isEmpty ? other.#min : Math.min(this.#min, other.#min);
    this.#max = this.isEmpty ? other.#max : Math.max(this.#max, other.#max);
    this.#n += other.#n;
    this.#retained += other.#retained;
    this.#k = Math.min(this.#k, other.#k);
    this.#refreshCapacities();
    while (this.#retained > this.#totalCapacity) this.#compactLowestFullLevel();
    this.#view = undefined;
  }

  /**
   * The value at normalized rank `rank` (0 to 1): the smallest retained value
   * whose estimated fraction of values <= it is at least `rank`.
   */
  quantile(rank: number): number {
    if (!(rank >= 0 && rank <= 1)) {
      throw new FleetError('MALFORMED', `a normalized rank is from 0 to 1, not ${rank}`);
    }
    if (this.isEmpty) return NaN;
    if (rank === 0) return this.#min;
    if (rank === 1) return this.#max;
    const { values, cumulative } = this.#sortedView();
    // ceil(rank x n), forgiving the rounding of the product (0.3 x 10 is 3.0000000000000004).
    const target = Math.max(1, Math.ceil(rank * this.#n * (1 - 4 * Number.EPSILON)));
    let lo = 0;
    let hi = values.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cumulative[mid]! >= target) hi = mid;
      else lo = mid + 1;
    }
    return values[lo]!;
  }

  /** Estimated fraction of the values that are <= `value` (inclusive). */
  rank(value: number): number {
    if (Number.isNaN(value)) throw new FleetError('MALFORMED', 'the rank of NaN is undefined');
    if (this.isEmpty) return NaN;
    return this.#weightAtOrBelow(value) / this.#n;
  }

  /**
   * [rank(s0), ..., rank(sm), 1] for split points that are finite and
   * strictly increasing: entry i is the estimated fraction <= s_i.
   */
  cdf(splitPoints: readonly number[]): number[] {
    checkSplitPoints(splitPoints);
    if (this.isEmpty) return new Array<number>(splitPoints.length + 1).fill(NaN);
    const out = splitPoints.map((point) => this.#weightAtOrBelow(point) / this.#n);
    out.push(1);
    return out;
  }

  /**
   * Estimated mass of each bucket (-inf, s0], (s0, s1], ..., (sm, +inf):
   * splitPoints.length + 1 fractions that sum to 1 (up to float rounding).
   */
  pmf(splitPoints: readonly number[]): number[] {
    checkSplitPoints(splitPoints);
    if (this.isEmpty) return new Array<number>(splitPoints.length + 1).fill(NaN);
    const out: number[] = [];
    let below = 0;
    for (const point of splitPoints) {
      const weight = this.#weightAtOrBelow(point);
      out.push((weight - below) / this.#n);
      below = weight;
    }
    out.push((this.#n - below) / this.#n);
    return out;
  }

  /** The sketch in the binary format of kll-format.ts. */
  serialize(): Uint8Array {
    return encodeKll({
      k: this.#k,
      n: this.#n,
      min: this.#min,
      max: this.#max,
      levels: this.#levels,
    });
  }

  /**
   * Reads a serialized sketch, validating all of it first; throws a
   * FleetError (MALFORMED, TRUNCATED, TRAILING_DATA, TOO_LARGE) otherwise.
   */
  static deserialize(bytes: Uint8Array, options: KllDeserializeOptions = {}): KllSketch {
    const state = decodeKll(bytes, options.maxBytes ?? KLL_MAX_SERIALIZED_BYTES);
    const sketch = new KllSketch({ k: state.k, random: options.random ?? Math.random });
    sketch.#levels = state.levels;
    sketch.#n = state.n;
    sketch.#min = state.min;
    sketch.#max = state.max;
    sketch.#retained = state.levels.reduce((sum, level) => sum + level.length, 0);
    sketch.#refreshCapacities();
    return sketch;
  }

  #refreshCapacities(): void {
    this.#capacities = levelCapacities(this.#k, this.#levels.length);
    this.#totalCapacity = this.#capacities.reduce((sum, c) => sum + c, 0);
  }

  /** One KLL compaction of the lowest level at or above its capacity. */
  #compactLowestFullLevel(): void {
    let level = 0;
    while (this.#levels[level]!.length < this.#capacities[level]!) level++;
    if (level === this.#levels.length - 1) {
      this.#levels.push([]);
      this.#refreshCapacities();
    }
    this.#retained -= compactLevel(this.#levels, level, this.#random() < 0.5);
  }

  /** Total weight of the retained values <= value. */
  #weightAtOrBelow(value: number): number {
    const { values, cumulative } = this.#sortedView();
    let lo = 0;
    let hi = values.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (values[mid]! <= value) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? 0 : cumulative[lo - 1]!;
  }

  #sortedView(): SortedView {
    if (this.#view) return this.#view;
    const values = new Float64Array(this.#retained);
    const weights = new Float64Array(this.#retained);
    let i = 0;
    this.#levels.forEach((level, h) => {
      for (const item of level) {
        values[i] = item;
        weights[i++] = 2 ** h;
      }
    });
    const order = new Uint32Array(values.length).map((_, j) => j);
    order.sort((a, b) => values[a]! - values[b]!);
    const view: SortedView = {
      values: new Float64Array(values.length),
      cumulative: new Float64Array(values.length),
    };
    let total = 0;
    order.forEach((index, j) => {
      total += weights[index]!;
      view.values[j] = values[index]!;
      view.cumulative[j] = total;
    });
    this.#view = view;
    return view;
  }
}

function checkSplitPoints(splitPoints: readonly number[]): void {
  splitPoints.forEach((point, i) => {
    if (!Number.isFinite(point)) {
      throw new FleetError('MALFORMED', `split point ${i} is ${point}; split points are finite`);
    }
    if (i > 0 && !(point > splitPoints[i - 1]!)) {
      throw new FleetError(
        'MALFORMED',
        `split points must be strictly increasing: ${splitPoints[i - 1]} then ${point} at ${i}`,
      );
    }
  });
}
