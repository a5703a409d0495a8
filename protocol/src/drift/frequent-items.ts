/**
 * A frequent-items sketch for categorical signals (a model's predicted class,
 * a device's locale), after Apache DataSketches' `ItemsSketch`: Misra-Gries
 * with weighted updates and median purges. It tracks at most 3/4 of
 * `maxMapSize` items; when one more arrives it subtracts the median tracked
 * count from every count, drops those that reach zero, and adds the median to
 * an offset. So for every item, tracked or not:
 *
 *   lowerBound(item) = tracked count <= true count <= tracked count + offset = upperBound(item)
 *
 * and `maximumError` (the offset) is at most 3.5 n / maxMapSize
 * (`frequentItemsAprioriError`). With no more distinct items than that 3/4
 * the counts are exact. Items are strings (a class index goes in as
 * `String(index)`), of well-formed Unicode, at most FREQUENT_ITEM_MAX_BYTES in UTF-8.
 *
 * Format, version 1 (big-endian):
 *
 *   offset  size  field
 *   0       4     magic "FFQI"
 *   4       1     version, 1
 *   5       1     log2(maxMapSize), 3 to 12
 *   6       2     zero
 *   8       8     n, total weight, u64
 *   16      8     offset (maximumError), u64, <= n
 *   24      4     item count, u32, at most 3/4 of maxMapSize
 *   then per item: u16 byte length, that many bytes of UTF-8, u64 count >= 1
 *
 * Items are distinct, and the counts plus the offset add up to at most n.
 *
 * @example
 *   const classes = new FrequentItemsSketch({ maxMapSize: 64 });
 *   classes.update('cat');
 *   classes.frequentItems('noFalsePositives'); // [{ item: 'cat', estimate: 1, ... }]
 */
import { FleetError } from '../errors.ts';
import { utf8 } from '../encoding/bytes.ts';
import { ByteReader, magicMismatch, setU64 } from './byte-reader.ts';

export const FREQUENT_ITEMS_FORMAT_MAGIC = 'FFQI';
export const FREQUENT_ITEMS_FORMAT_VERSION = 1;
export const FREQUENT_ITEMS_DEFAULT_MAP_SIZE = 64;
export const FREQUENT_ITEMS_MIN_MAP_SIZE = 8;
export const FREQUENT_ITEMS_MAX_MAP_SIZE = 4096;
/** Longest item, in UTF-8 bytes. */
export const FREQUENT_ITEM_MAX_BYTES = 256;
/** The largest serialized sketch (3,072 items of the longest kind, about 817 KB). */
export const FREQUENT_ITEMS_MAX_SERIALIZED_BYTES =
  28 + maxActiveItems(FREQUENT_ITEMS_MAX_MAP_SIZE) * (2 + FREQUENT_ITEM_MAX_BYTES + 8);

const MAGIC = utf8(FREQUENT_ITEMS_FORMAT_MAGIC);
const WHAT = 'a frequent-items sketch';
// fatal: invalid UTF-8 is refused; ignoreBOM: a leading U+FEFF stays part of the item.
const ITEM_DECODER = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Which items `frequentItems` lists: those surely above the threshold
 * (lower bound above it: no false positives) or possibly above it (upper
 * bound above it: no false negatives).
 */
export type FrequentItemsErrorType = 'noFalsePositives' | 'noFalseNegatives';

export interface FrequentItemRow {
  item: string;
  /** The upper bound, as DataSketches estimates a tracked item. */
  estimate: number;
  lowerBound: number;
  upperBound: number;
}

export interface FrequentItemsOptions {
  /** A power of two, FREQUENT_ITEMS_MIN_MAP_SIZE to FREQUENT_ITEMS_MAX_MAP_SIZE; default 64. */
  maxMapSize?: number;
}

/** DataSketches' a-priori bound on `maximumError` after total weight n: 3.5 n / maxMapSize. */
export function frequentItemsAprioriError(maxMapSize: number, n: number): number {
  return (3.5 * n) / maxMapSize;
}

export class FrequentItemsSketch {
  readonly #maxMapSize: number;
  #counts = new Map<string, number>();
  #n = 0;
  #offset = 0;

  constructor(options: FrequentItemsOptions = {}) {
    const size = options.maxMapSize ?? FREQUENT_ITEMS_DEFAULT_MAP_SIZE;
    if (!isMapSize(size)) {
      throw new FleetError(
        'MALFORMED',
        `maxMapSize is a power of two from ${FREQUENT_ITEMS_MIN_MAP_SIZE} to ${FREQUENT_ITEMS_MAX_MAP_SIZE}, not ${size}`,
      );
    }
    this.#maxMapSize = size;
  }

  get maxMapSize(): number {
    return this.#maxMapSize;
  }

  /** Total weight of every update. */
  get n(): number {
    return this.#n;
  }

  get isEmpty(): boolean {
    return this.#n === 0;
  }

  /** Items tracked now (at most 3/4 of maxMapSize). */
  get numActiveItems(): number {
    return this.#counts.size;
  }

  /** The most any estimate can be off by: upperBound - lowerBound of every item. */
  get maximumError(): number {
    return this.#offset;
  }

  /** Counts `weight` (a positive integer) occurrences of `item`. */
  update(item: string, weight = 1): void {
    if (!Number.isSafeInteger(weight) || weight < 1) {
      throw new FleetError('MALFORMED', `an item weight is a positive integer, not ${weight}`);
    }
    if (!this.#counts.has(item)) checkItem(item);
    if (this.#n + weight > Number.MAX_SAFE_INTEGER) {
      throw new FleetError('TOO_LARGE', 'a frequent-items sketch weighs at most 2^53 - 1');
    }
    this.#n += weight;
    this.#add(item, weight);
  }

  /** Adds everything `other` counted; this sketch keeps its own maxMapSize. */
  merge(other: FrequentItemsSketch): void {
    if (this.#n + other.#n > Number.MAX_SAFE_INTEGER) {
      throw new FleetError('TOO_LARGE', 'a merged frequent-items sketch would weigh 2^53 or more');
    }
    const entries = [...other.#counts];
    const offset = other.#offset;
    this.#n += other.#n;
    for (const [item, count] of entries) this.#add(item, count);
    this.#offset += offset;
  }

  /** Estimated count: upperBound for a tracked item, 0 for an untracked one. */
  estimate(item: string): number {
    const count = this.#counts.get(item);
    return count === undefined ? 0 : count + this.#offset;
  }

  /** The true count is at least this. */
  lowerBound(item: string): number {
    return this.#counts.get(item) ?? 0;
  }

  /** The true count is at most this. */
  upperBound(item: string): number {
    return (this.#counts.get(item) ?? 0) + this.#offset;
  }

  /**
   * Tracked items whose lower bound ('noFalsePositives') or upper bound
   * ('noFalseNegatives') exceeds `threshold` (default maximumError), by
   * estimate descending, then item.
   */
  frequentItems(
    errorType: FrequentItemsErrorType = 'noFalsePositives',
    threshold = this.#offset,
  ): FrequentItemRow[] {
    const rows: FrequentItemRow[] = [];
    for (const [item, count] of this.#counts) {
      const upperBound = count + this.#offset;
      const bound = errorType === 'noFalsePositives' ? count : upperBound;
      if (bound > threshold)
        rows.push({ item, estimate: upperBound, lowerBound: count, upperBound });
    }
    return rows.sort(
      (a, b) => b.estimate - a.estimate || (a.item < b.item ? -1 : a.item > b.item ? 1 : 0),
    );
  }

  serialize(): Uint8Array {
    const encoded = [...this.#counts].map(([item, count]) => [utf8(item), count] as const);
    const size = encoded.reduce((sum, [bytes]) => sum + 2 + bytes.length + 8, 28);
    const out = new Uint8Array(size);
    const view = new DataView(out.buffer);
    out.set(MAGIC, 0);
    view.setUint8(4, FREQUENT_ITEMS_FORMAT_VERSION);
    view.setUint8(5, Math.log2(this.#maxMapSize));
    setU64(view, 8, this.#n);
    setU64(view, 16, this.#offset);
    view.setUint32(24, encoded.length);
    let offset = 28;
    for (const [bytes, count] of encoded) {
      view.setUint16(offset, bytes.length);
      out.set(bytes, offset + 2);
      setU64(view, offset + 2 + bytes.length, count);
      offset += 2 + bytes.length + 8;
    }
    return out;
  }

  /** Reads a serialized sketch, validating all of it first (a FleetError otherwise). */
  static deserialize(
    bytes: Uint8Array,
    maxBytes = FREQUENT_ITEMS_MAX_SERIALIZED_BYTES,
  ): FrequentItemsSketch {
    if (bytes.length > maxBytes) {
      throw new FleetError('TOO_LARGE', `${WHAT} of ${bytes.length} bytes, the cap is ${maxBytes}`);
    }
    const reader = new ByteReader(bytes, WHAT);
    const header = readHeader(reader);
    const sketch = new FrequentItemsSketch({ maxMapSize: header.maxMapSize });
    sketch.#n = header.n;
    sketch.#offset = header.offset;
    let total = sketch.#offset;
    for (let i = 0; i < header.itemCount; i++) {
      const [item, count] = readItem(reader, i, sketch.#n);
      if (sketch.#counts.has(item)) {
        throw new FleetError('MALFORMED', `${WHAT} lists item ${JSON.stringify(item)} twice`);
      }
      total += count;
      if (total > sketch.#n) {
        throw new FleetError(
          'MALFORMED',
          `${WHAT}'s counts and offset exceed its n = ${sketch.#n}`,
        );
      }
      sketch.#counts.set(item, count);
    }
    reader.end();
    return sketch;
  }

  /** Adds to the tracked count, purging when one item too many is tracked. */
  #add(item: string, count: number): void {
    this.#counts.set(item, (this.#counts.get(item) ?? 0) + count);
    if (this.#counts.size > maxActiveItems(this.#maxMapSize)) this.#purge();
  }

  /** Subtracts the median count from all (dropping those at zero) and adds it to the offset. */
  #purge(): void {
    const sorted = [...this.#counts.values()].sort((a, b) => a - b);
    const median = sorted[(sorted.length - 1) >> 1]!;
    for (const [item, count] of this.#counts) {
      if (count <= median) this.#counts.delete(item);
      else this.#counts.set(item, count - median);
    }
    this.#offset += median;
  }
}

function maxActiveItems(maxMapSize: number): number {
  return (maxMapSize * 3) / 4;
}

function isMapSize(size: number): boolean {
  return (
    Number.isInteger(size) &&
    size >= FREQUENT_ITEMS_MIN_MAP_SIZE &&
    size <= FREQUENT_ITEMS_MAX_MAP_SIZE &&
    (size & (size - 1)) === 0
  );
}

function checkItem(item: string): void {
  if (typeof item !== 'string') {
    throw new FleetError('MALFORMED', `a frequent item is a string, not ${typeof item}`);
  }
  // UTF-8 takes at most 3 bytes per UTF-16 unit: encode only when it could be too long.
  if (item.length * 3 > FREQUENT_ITEM_MAX_BYTES && utf8(item).length > FREQUENT_ITEM_MAX_BYTES) {
    throw new FleetError(
      'TOO_LARGE',
      `a frequent item is at most ${FREQUENT_ITEM_MAX_BYTES} bytes of UTF-8`,
    );
  }
  if (LONE_SURROGATE.test(item)) {
    throw new FleetError(
      'MALFORMED',
      'a frequent item is well-formed Unicode (it has a lone surrogate)',
    );
  }
}

interface Header {
  maxMapSize: number;
  n: number;
  offset: number;
  itemCount: number;
}

function readHeader(reader: ByteReader): Header {
  reader.need(28, 'header');
  if (magicMismatch(reader.bytes(4, 'magic'), MAGIC)) {
    throw new FleetError('MALFORMED', `not ${WHAT} (bad magic bytes)`);
  }
  const version = reader.u8('version');
  if (version !== FREQUENT_ITEMS_FORMAT_VERSION) {
    throw new FleetError(
      'MALFORMED',
      `${WHAT} of format version ${version}; this code reads ${FREQUENT_ITEMS_FORMAT_VERSION}`,
    );
  }
  const lgMapSize = reader.u8('map size');
  if (reader.u16('reserved bytes') !== 0)
    throw new FleetError('MALFORMED', `${WHAT}'s reserved bytes are not zero`);
  const maxMapSize = 2 ** lgMapSize;
  if (!isMapSize(maxMapSize)) {
    throw new FleetError(
      'MALFORMED',
      `${WHAT} has a map size of 2^${lgMapSize}; it is 2^3 to 2^12`,
    );
  }
  const n = reader.u64('n');
  const offset = reader.u64('offset');
  if (offset > n)
    throw new FleetError('MALFORMED', `${WHAT} has an offset of ${offset} above its n = ${n}`);
  const itemCount = reader.u32('item count');
  if (itemCount > maxActiveItems(maxMapSize)) {
    throw new FleetError(
      'TOO_LARGE',
      `${WHAT} lists ${itemCount} items; a map of ${maxMapSize} tracks at most ${maxActiveItems(maxMapSize)}`,
    );
  }
  return { maxMapSize, n, offset, itemCount };
}

function readItem(reader: ByteReader, index: number, n: number): [string, number] {
  const length = reader.u16(`item ${index} length`);
  if (length > FREQUENT_ITEM_MAX_BYTES) {
    throw new FleetError(
      'TOO_LARGE',
      `${WHAT}'s item ${index} is ${length} bytes; the cap is ${FREQUENT_ITEM_MAX_BYTES}`,
    );
  }
  const encoded = reader.bytes(length, `item ${index}`);
  let item: string;
  try {
    item = ITEM_DECODER.decode(encoded);
  } catch (cause) {
    throw new FleetError('MALFORMED', `${WHAT}'s item ${index} is not valid UTF-8`, { cause });
  }
  const count = reader.u64(`item ${index} count`);
  if (count < 1 || count > n) {
    throw new FleetError(
      'MALFORMED',
      `${WHAT}'s item ${index} has a count of ${count}, not 1 to n = ${n}`,
    );
  }
  return [item, count];
}
