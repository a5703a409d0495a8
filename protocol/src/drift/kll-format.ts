/**
 * The binary format of a KLL sketch, version 1. All integers big-endian,
 * floats IEEE 754 binary64 big-endian.
 *
 *   offset  size          field
 *   0       4             magic "FKLL"
 *   4       1             version, 1
 *   5       1             numLevels, 1 to KLL_MAX_LEVELS (1 when n = 0)
 *   6       2             k, u16, KLL_MIN_K to KLL_MAX_K
 *   8       8             n, u64, below 2^53
 *   16      4             numRetained, u32 (0 when n = 0)
 *   -- the empty sketch ends here (20 bytes); otherwise:
 *   20      8             min, finite
 *   28      8             max, finite, >= min
 *   36      4 x (L + 1)   level boundaries, u32: 0, ..., numRetained, non-decreasing
 *   ...     8 x R         items, level 0 first; levels 1 and up ascending
 *
 * Items are float64, so a round trip gives bit-identical quantiles; at k = 200
 * a sketch of a million values is about 5 KB (5,004 bytes in kll.test.ts), so
 * float32 would save about 2.5 KB and cost an error analysis.
 *
 * `decodeKll` checks everything before it returns: the layout, the lengths
 * against the byte count, numRetained against the capacity of (k, numLevels),
 * items finite and within [min, max], sorted levels sorted, the top level not
 * empty, and n equal to the weighted count sum(items at level h x 2^h).
 */
import { FleetError } from '../errors.ts';
import { utf8 } from '../encoding/bytes.ts';
import { ByteReader, magicMismatch, setU64 } from './byte-reader.ts';
import {
  KLL_EMPTY_BYTES,
  KLL_HEADER_BYTES,
  KLL_MAX_K,
  KLL_MAX_LEVELS,
  KLL_MIN_K,
  totalCapacity,
} from './kll-levels.ts';

export const KLL_FORMAT_MAGIC = 'FKLL';
export const KLL_FORMAT_VERSION = 1;

/**
 * The largest sketch of any k (KLL_MAX_K at KLL_MAX_LEVELS levels, about
 * 1.6 MB): the default cap of `KllSketch.deserialize`.
 */
export const KLL_MAX_SERIALIZED_BYTES =
  KLL_HEADER_BYTES + 4 * (KLL_MAX_LEVELS + 1) + 8 * totalCapacity(KLL_MAX_K, KLL_MAX_LEVELS);

const MAGIC = utf8(KLL_FORMAT_MAGIC);
const WHAT = 'a KLL sketch';

/** What the format carries; `levels[h]` holds the items of weight 2^h. */
export interface KllState {
  k: number;
  n: number;
  /** NaN when n = 0. */
  min: number;
  max: number;
  levels: number[][];
}

export function encodeKll(state: KllState): Uint8Array {
  const { k, n, levels } = state;
  let retained = 0;
  for (const level of levels) retained += level.length;
  const size =
    n === 0 ? KLL_EMPTY_BYTES : KLL_HEADER_BYTES + 4 * (levels.length + 1) + 8 * retained;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  view.setUint8(4, KLL_FORMAT_VERSION);
  view.setUint8(5, n === 0 ? 1 : levels.length);
  view.setUint16(6, k);
  setU64(view, 8, n);
  view.setUint32(16, retained);
  if (n === 0) return out;
  view.setFloat64(20, state.min);
  view.setFloat64(28, state.max);
  let offset = KLL_HEADER_BYTES;
  let boundary = 0;
  view.setUint32(offset, 0);
  for (const level of levels) {
    boundary += level.length;
    view.setUint32((offset += 4), boundary);
  }
  offset += 4;
  for (const level of levels) {
    for (const item of level) {
      view.setFloat64(offset, item);
      offset += 8;
    }
  }
  return out;
}

/** Parses and validates a serialized sketch; throws a FleetError naming the fault. */
export function decodeKll(bytes: Uint8Array, maxBytes = KLL_MAX_SERIALIZED_BYTES): KllState {
  if (bytes.length > maxBytes) {
    throw new FleetError('TOO_LARGE', `${WHAT} of ${bytes.length} bytes, the cap is ${maxBytes}`);
  }
  const reader = new ByteReader(bytes, WHAT);
  const header = readHeader(reader);
  const { k, n, numLevels, retained } = header;
  if (n === 0) {
    reader.end();
    return { k, n, min: NaN, max: NaN, levels: [[]] };
  }
  const expected = KLL_HEADER_BYTES + 4 * (numLevels + 1) + 8 * retained;
  if (bytes.length < expected) {
    throw new FleetError('TRUNCATED', `${WHAT} declares ${expected} bytes but has ${bytes.length}`);
  }
  if (bytes.length > expected) {
    throw new FleetError(
      'TRAILING_DATA',
      `${WHAT} of ${expected} bytes is followed by ${bytes.length - expected} more`,
    );
  }
  const min = reader.f64('min');
  const max = reader.f64('max');
  if (!Number.isFinite(min) || !Number.isFinite(max) || min > max) {
    throw new FleetError(
      'MALFORMED',
      `${WHAT} has min ${min} and max ${max}: both finite, min <= max`,
    );
  }
  const sizes = readBoundaries(reader, numLevels, retained);
  const levels = sizes.map((size, level) => readLevel(reader, size, level, min, max));
  checkWeightedCount(sizes, n);
  reader.end();
  return { k, n, min, max, levels };
}

interface Header {
  k: number;
  n: number;
  numLevels: number;
  retained: number;
}

function readHeader(reader: ByteReader): Header {
  reader.need(KLL_EMPTY_BYTES, 'header');
  if (magicMismatch(reader.bytes(4, 'magic'), MAGIC)) {
    throw new FleetError('MALFORMED', `not ${WHAT} (bad magic bytes)`);
  }
  const version = reader.u8('version');
  if (version !== KLL_FORMAT_VERSION) {
    throw new FleetError(
      'MALFORMED',
      `${WHAT} of format version ${version}; this code reads ${KLL_FORMAT_VERSION}`,
    );
  }
  const numLevels = reader.u8('level count');
  const k = reader.u16('k');
  const n = reader.u64('n');
  const retained = reader.u32('retained item count');
  if (k < KLL_MIN_K) {
    throw new FleetError('MALFORMED', `${WHAT} has k = ${k}; k is ${KLL_MIN_K} to ${KLL_MAX_K}`);
  }
  if (numLevels === 0) throw new FleetError('MALFORMED', `${WHAT} has no levels`);
  if (numLevels > KLL_MAX_LEVELS) {
    throw new FleetError(
      'TOO_LARGE',
      `${WHAT} has ${numLevels} levels, the cap is ${KLL_MAX_LEVELS}`,
    );
  }
  if (n === 0 && (numLevels !== 1 || retained !== 0)) {
    throw new FleetError(
      'MALFORMED',
      `an empty ${WHAT.slice(2)} has one level and no items, not ${numLevels} and ${retained}`,
    );
  }
  if (n > 0 && retained === 0)
    throw new FleetError('MALFORMED', `${WHAT} of n = ${n} retains no item`);
  const capacity = totalCapacity(k, numLevels);
  if (retained > capacity) {
    throw new FleetError(
      'TOO_LARGE',
      `${WHAT} retains ${retained} items; k = ${k} with ${numLevels} levels holds at most ${capacity}`,
    );
  }
  return { k, n, numLevels, retained };
}

/** Reads the numLevels + 1 boundaries; returns the level sizes. */
function readBoundaries(reader: ByteReader, numLevels: number, retained: number): number[] {
  const sizes: number[] = [];
  let previous = reader.u32('level boundary 0');
  if (previous !== 0)
    throw new FleetError('MALFORMED', `${WHAT}'s first level boundary is ${previous}, not 0`);
  for (let level = 1; level <= numLevels; level++) {
    const boundary = reader.u32(`level boundary ${level}`);
    if (boundary < previous) {
      throw new FleetError(
        'MALFORMED',
        `${WHAT}'s level boundaries decrease at level ${level} (${previous} then ${boundary})`,
      );
    }
    sizes.push(boundary - previous);
    previous = boundary;
  }
  if (previous !== retained) {
    throw new FleetError(
      'MALFORMED',
      `${WHAT}'s last level boundary is ${previous}, not its ${retained} retained items`,
    );
  }
  if (sizes[numLevels - 1] === 0) {
    throw new FleetError('MALFORMED', `${WHAT}'s top level (${numLevels - 1}) is empty`);
  }
  return sizes;
}

function readLevel(
  reader: ByteReader,
  size: number,
  level: number,
  min: number,
  max: number,
): number[] {
  const items = new Array<number>(size);
  for (let i = 0; i < size; i++) {
    const item = reader.f64('items');
    // NaN fails both comparisons, so it is refused here too.
    if (!(item >= min && item <= max)) {
      throw new FleetError(
        'MALFORMED',
        `${WHAT} has item ${item} at level ${level}, outside [min ${min}, max ${max}]`,
      );
    }
    if (level > 0 && i > 0 && item < items[i - 1]!) {
      throw new FleetError('MALFORMED', `${WHAT}'s level ${level} is not sorted`);
    }
    items[i] = item;
  }
  return items;
}

/** n must be sum(size_h x 2^h), the weight compaction preserves. */
function checkWeightedCount(sizes: readonly number[], n: number): void {
  let weighted = 0;
  for (let level = 0; level < sizes.length; level++) {
    // Each partial sum stays a safe integer, so the sum is exact.
    weighted += sizes[level]! * 2 ** level;
    if (weighted > Number.MAX_SAFE_INTEGER) break;
  }
  if (weighted !== n) {
    throw new FleetError('MALFORMED', `${WHAT} has n = ${n} but its levels weigh ${weighted}`);
  }
}
