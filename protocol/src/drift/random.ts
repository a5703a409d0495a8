/**
 * A small seeded pseudo-random generator for the drift sketches, so that a
 * KLL sketch's compaction choices can be replayed in tests. It is mulberry32
 * (Tommy Ettinger's 32-bit generator, public domain): fast, 2^32 period,
 * statistically fine for choosing which half of a level survives. It is not a
 * cryptographic generator and must not be used as one.
 *
 * @example
 *   const sketch = new KllSketch({ random: createSeededRandom(42) });
 */

/** A source of uniform numbers in [0, 1), like `Math.random`. */
export type RandomSource = () => number;

/** A deterministic RandomSource: equal seeds give equal sequences. */
export function createSeededRandom(seed: number): RandomSource {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
