/**
 * The level structure of a KLL sketch (Karnin, Lang, Liberty 2016, "Optimal
 * Quantile Approximation in Streams"), following Apache DataSketches'
 * `KllHelper`: level capacities, the compaction step, and the published error
 * and size figures. Level `h` holds items of weight 2^h; level 0 is unsorted,
 * every higher level is sorted ascending.
 */

/** DataSketches' `m`: no level's capacity is below this. */
export const KLL_MIN_LEVEL_CAPACITY = 8;
export const KLL_MIN_K = 8;
export const KLL_MAX_K = 65535;
export const KLL_DEFAULT_K = 200;
/**
 * Most levels a sketch may have. A non-empty sketch's top level holds at least
 * one item of weight 2^(levels - 1) and n stays below 2^53, so 54 is the real
 * ceiling; 61 is DataSketches' limit and costs nothing.
 */
export const KLL_MAX_LEVELS = 61;

/**
 * Capacity of `level` in a sketch of `numLevels` levels: k * (2/3)^depth,
 * rounded as DataSketches does (exactly, in integers), and at least
 * KLL_MIN_LEVEL_CAPACITY. The top level (depth 0) holds k.
 */
export function levelCapacity(k: number, numLevels: number, level: number): number {
  const depth = numLevels - level - 1;
  // 65535 * (2/3)^31 < 0.5: every deeper level is at the minimum.
  if (depth > 30) return KLL_MIN_LEVEL_CAPACITY;
  const d = BigInt(depth);
  const twiceScaled = ((BigInt(k) << 1n) << d) / 3n ** d; // 2k (2/3)^depth, floored
  return Math.max(KLL_MIN_LEVEL_CAPACITY, Number((twiceScaled + 1n) >> 1n));
}

/** Capacities of every level, bottom (level 0) first. */
export function levelCapacities(k: number, numLevels: number): number[] {
  const out: number[] = [];
  for (let level = 0; level < numLevels; level++) out.push(levelCapacity(k, numLevels, level));
  return out;
}

/** How many items a sketch of `numLevels` levels may retain (about 3k when n is large). */
export function totalCapacity(k: number, numLevels: number): number {
  let total = 0;
  for (let level = 0; level < numLevels; level++) total += levelCapacity(k, numLevels, level);
  return total;
}

/**
 * Normalized rank error of a KLL sketch of parameter `k` at 99% confidence,
 * with DataSketches' empirical constants (`KllHelper.getNormalizedRankError`):
 * `2.296 / k^0.9723` for one rank, quantile or CDF value (k = 200: 1.33%) and
 * `2.446 / k^0.9433` for PMF bins, which are differences of two ranks
 * (k = 200: 1.65%). After merging sketches of different k, use the smallest.
 */
export function kllNormalizedRankError(k: number, pmf: boolean): number {
  return pmf ? 2.446 / Math.pow(k, 0.9433) : 2.296 / Math.pow(k, 0.9723);
}

/**
 * The most bytes `serialize()` can produce for a sketch of parameter `k` that
 * has seen `n` values: the header, the level boundaries and the items, with at
 * most 1 + floor(log2 n) levels (the top level is never empty) and at most
 * min(n, totalCapacity) items. For k = 200: 4,824 bytes at n = 1,000 and 5,504 at n = 10^6.
 */
export function kllSerializedSizeBound(k: number, n: number): number {
  if (n === 0) return KLL_EMPTY_BYTES;
  const numLevels = Math.min(KLL_MAX_LEVELS, Math.floor(Math.log2(n)) + 1);
  const items = Math.min(n, totalCapacity(k, numLevels));
  return KLL_HEADER_BYTES + 4 * (numLevels + 1) + 8 * items;
}

/** Bytes of the fixed header: magic, version, levels, k, n, retained count. */
export const KLL_EMPTY_BYTES = 20;
/** Bytes before the level boundaries of a non-empty sketch (header, min, max). */
export const KLL_HEADER_BYTES = KLL_EMPTY_BYTES + 16;

const ascending = (a: number, b: number): number => a - b;

/** Merges two ascending arrays into a new ascending array. */
export function mergeSorted(a: readonly number[], b: readonly number[]): number[] {
  const out = new Array<number>(a.length + b.length);
  let i = 0;
  let j = 0;
  let o = 0;
  while (i < a.length && j < b.length) out[o++] = a[i]! <= b[j]! ? a[i++]! : b[j++]!;
  while (i < a.length) out[o++] = a[i++]!;
  while (j < b.length) out[o++] = b[j++]!;
  return out;
}

/**
 * The KLL compaction of `level` (which must not be the top one): an odd item
 * stays behind, the rest is sorted (level 0 is not), and every other item,
 * starting at a random offset of 0 or 1, moves up with twice the weight, so
 * the weighted count is unchanged and the rank error it adds is unbiased.
 * Returns how many items the sketch no longer retains.
 */
export function compactLevel(levels: number[][], level: number, oddOffset: boolean): number {
  const raw = levels[level]!;
  const stays = raw.length % 2 === 1 ? raw.slice(0, 1) : [];
  const halved = stays.length === 1 ? raw.slice(1) : raw;
  if (level === 0) halved.sort(ascending);
  const promoted: number[] = [];
  for (let i = oddOffset ? 1 : 0; i < halved.length; i += 2) promoted.push(halved[i]!);
  levels[level] = stays;
  levels[level + 1] = mergeSorted(promoted, levels[level + 1]!);
  return promoted.length;
}
