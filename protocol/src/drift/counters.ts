/**
 * Summary counters of one numeric signal: how many values were finite, NaN,
 * infinite or missing, and the min, max, mean and M2 (sum of squared
 * deviations, for the variance) of the finite ones. Updates use Welford's
 * method and merges Chan et al.'s parallel formula, both in forms that do not
 * overflow for finite inputs: the mean stays finite and within [min, max];
 * only M2 can reach +Infinity, when the variance itself exceeds float64.
 *
 * Format, version 1 (72 bytes, big-endian):
 *
 *   offset  size  field
 *   0       4     magic "FCNT"
 *   4       1     version, 1
 *   5       3     zero
 *   8       8     count (finite values), u64
 *   16      8     nullCount (null or undefined), u64
 *   24      8     nanCount, u64
 *   32      8     infinityCount (+-Infinity), u64
 *   40      8     min, f64 \
 *   48      8     max, f64  | all 0 when count = 0
 *   56      8     mean, f64 |
 *   64      8     m2, f64  /
 *
 * @example
 *   const counters = new SummaryCounters();
 *   for (const x of [1, 2, NaN, null, 4]) counters.update(x);
 *   counters.count; // 3
 *   counters.mean; // 2.333...
 */
import { FleetError } from '../errors.ts';
import { utf8 } from '../encoding/bytes.ts';
import { ByteReader, magicMismatch, setU64 } from './byte-reader.ts';

export const COUNTERS_FORMAT_MAGIC = 'FCNT';
export const COUNTERS_FORMAT_VERSION = 1;
export const COUNTERS_SERIALIZED_BYTES = 72;

const MAGIC = utf8(COUNTERS_FORMAT_MAGIC);
const WHAT = 'a counters record';

export class SummaryCounters {
  #count = 0;
  #nullCount = 0;
  #nanCount = 0;
  #infinityCount = 0;
  #min = 0;
  #max = 0;
  #mean = 0;
  #m2 = 0;

  /** Finite values seen. */
  get count(): number {
    return this.#count;
  }

  /** Missing values (null or undefined) seen. */
  get nullCount(): number {
    return this.#nullCount;
  }

  get nanCount(): number {
    return this.#nanCount;
  }

  /** +Infinity and -Infinity seen. */
  get infinityCount(): number {
    return this.#infinityCount;
  }

  /** Every update: finite, NaN, infinite and missing. */
  get total(): number {
    return this.#count + this.#nullCount + this.#nanCount + this.#infinityCount;
  }

  /** Smallest finite value; NaN when there is none. */
  get min(): number {
    return this.#count === 0 ? NaN : this.#min;
  }

  get max(): number {
    return this.#count === 0 ? NaN : this.#max;
  }

  get mean(): number {
    return this.#count === 0 ? NaN : this.#mean;
  }

  /** Sum of squared deviations from the mean. */
  get m2(): number {
    return this.#m2;
  }

  /** Population variance, M2 / count; NaN when count = 0. */
  get variance(): number {
    return this.#count === 0 ? NaN : this.#m2 / this.#count;
  }

  /** Sample variance, M2 / (count - 1); NaN when count < 2. */
  get sampleVariance(): number {
    return this.#count < 2 ? NaN : this.#m2 / (this.#count - 1);
  }

  update(value: number | null | undefined): void {
    if (this.total >= Number.MAX_SAFE_INTEGER) {
      throw new FleetError('TOO_LARGE', 'counters count at most 2^53 - 1 updates');
    }
    if (value === null || value === undefined) this.#nullCount++;
    else if (Number.isNaN(value)) this.#nanCount++;
    else if (!Number.isFinite(value)) this.#infinityCount++;
    else this.#addFinite(value);
  }

  /** Adds everything `other` counted (Chan et al.'s parallel update). */
  merge(other: SummaryCounters): void {
    if (this.total + other.total > Number.MAX_SAFE_INTEGER) {
      throw new FleetError('TOO_LARGE', 'merged counters would count 2^53 updates or more');
    }
    this.#nullCount += other.#nullCount;
    this.#nanCount += other.#nanCount;
    this.#infinityCount += other.#infinityCount;
    if (other.#count === 0) return;
    if (this.#count === 0) {
      this.#count = other.#count;
      this.#min = other.#min;
      this.#max = other.#max;
      this.#mean = other.#mean;
      this.#m2 = other.#m2;
      return;
    }
    const a = this.#count;
    const b = other.#count;
    const n = a + b;
    // The mean difference can overflow (1e308 - -1e308); halving both first cannot.
    const halfDelta = other.#mean / 2 - this.#mean / 2;
    this.#m2 = this.#m2 + other.#m2 + 4 * halfDelta * halfDelta * ((a / n) * b);
    this.#count = n;
    this.#min = Math.min(this.#min, other.#min);
    this.#max = Math.max(this.#max, other.#max);
    this.#mean = this.#clampMean(this.#mean * (a / n) + other.#mean * (b / n));
  }

  serialize(): Uint8Array {
    const out = new Uint8Array(COUNTERS_SERIALIZED_BYTES);
    const view = new DataView(out.buffer);
    out.set(MAGIC, 0);
    view.setUint8(4, COUNTERS_FORMAT_VERSION);
    setU64(view, 8, this.#count);
    setU64(view, 16, this.#nullCount);
    setU64(view, 24, this.#nanCount);
    setU64(view, 32, this.#infinityCount);
    view.setFloat64(40, this.#min);
    view.setFloat64(48, this.#max);
    view.setFloat64(56, this.#mean);
    view.setFloat64(64, this.#m2);
    return out;
  }

  /** Reads a serialized record, validating all of it first (a FleetError otherwise). */
  static deserialize(bytes: Uint8Array): SummaryCounters {
    const reader = new ByteReader(bytes, WHAT);
    reader.need(COUNTERS_SERIALIZED_BYTES, 'fields');
    if (magicMismatch(reader.bytes(4, 'magic'), MAGIC)) {
      throw new FleetError('MALFORMED', `not ${WHAT} (bad magic bytes)`);
    }
    const version = reader.u8('version');
    if (version !== COUNTERS_FORMAT_VERSION) {
      throw new FleetError(
        'MALFORMED',
        `${WHAT} of format version ${version}; this code reads ${COUNTERS_FORMAT_VERSION}`,
      );
    }
    if (reader.bytes(3, 'reserved bytes').some((b) => b !== 0)) {
      throw new FleetError('MALFORMED', `${WHAT}'s reserved bytes are not zero`);
    }
    const counters = new SummaryCounters();
    counters.#count = reader.u64('count');
    counters.#nullCount = reader.u64('null count');
    counters.#nanCount = reader.u64('NaN count');
    counters.#infinityCount = reader.u64('infinity count');
    if (counters.total > Number.MAX_SAFE_INTEGER) {
      throw new FleetError('TOO_LARGE', `${WHAT} counts 2^53 updates or more`);
    }
    counters.#min = reader.f64('min');
    counters.#max = reader.f64('max');
    counters.#mean = reader.f64('mean');
    counters.#m2 = reader.f64('m2');
    checkMoments(counters.#count, counters.#min, counters.#max, counters.#mean, counters.#m2);
    reader.end();
    return counters;
  }

  #addFinite(value: number): void {
    const x = value === 0 ? 0 : value; // -0 is counted as 0
    const n = this.#count + 1;
    this.#count = n;
    if (n === 1) {
      this.#min = x;
      this.#max = x;
      this.#mean = x;
      return;
    }
    if (x < this.#min) this.#min = x;
    if (x > this.#max) this.#max = x;
    const previous = this.#mean;
    // mean + (x - mean) / n, with each term divided first so it cannot overflow.
    this.#mean = this.#clampMean(previous + (x / n - previous / n));
    this.#m2 += (x - previous) * (x - this.#mean);
  }

  /** Rounding must not carry the mean outside [min, max]. */
  #clampMean(mean: number): number {
    return Math.min(this.#max, Math.max(this.#min, mean));
  }
}

function checkMoments(count: number, min: number, max: number, mean: number, m2: number): void {
  if (count === 0) {
    if (min !== 0 || max !== 0 || mean !== 0 || m2 !== 0) {
      throw new FleetError(
        'MALFORMED',
        `${WHAT} of no finite value has min, max, mean and m2 of 0`,
      );
    }
    return;
  }
  if (!Number.isFinite(min) || !Number.isFinite(max) || min > max) {
    throw new FleetError(
      'MALFORMED',
      `${WHAT} has min ${min} and max ${max}: both finite, min <= max`,
    );
  }
  if (!(mean >= min && mean <= max)) {
    throw new FleetError('MALFORMED', `${WHAT} has mean ${mean} outside [min ${min}, max ${max}]`);
  }
  // M2 may be +Infinity (a variance beyond float64), never negative or NaN.
  if (!(m2 >= 0) || (count === 1 && m2 !== 0)) {
    throw new FleetError('MALFORMED', `${WHAT} has m2 ${m2}: 0 or more, and 0 for one value`);
  }
}
