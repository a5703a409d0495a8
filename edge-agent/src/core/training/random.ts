/**
 * The trainer's seeded generator (xorshift32) and shuffle: the sample order of
 * every epoch follows from the request's seed alone. Not for secrets.
 */

/** xorshift32 over a 32-bit state; seed 0 (a fixed point) is replaced by 1. */
export function xorshift32(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

/** Fisher-Yates shuffle in place, driven by `next`. */
export function shuffleInPlace<T extends { [i: number]: number; length: number }>(
  items: T,
  next: () => number,
): T {
  for (let i = items.length - 1; i > 0; i--) {
    const j = next() % (i + 1);
    const t = items[i]!;
    items[i] = items[j]!;
    items[j] = t;
  }
  return items;
}
