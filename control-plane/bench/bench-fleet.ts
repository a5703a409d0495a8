/**
 * The synthetic fleet the bench seeds and queries: device ids, the 20 sites
 * and 4 hardware classes its filters pick from, and a seeded random source so
 * every run builds the same fleet. Pure: shared by the bench and its load
 * generator process.
 */

/** `site` tag values: one filter value matches ~1/20 of the fleet. */
export const SITES = Array.from({ length: 20 }, (_, i) => `site-${String(i).padStart(2, '0')}`);
/** Hardware classes: one matches ~1/4; with a site, ~1/80 (1,250 of 100,000). */
export const HARDWARE = ['rpi4', 'rpi5', 'jetson-orin', 'x86-64'] as const;
export const RINGS = ['canary', 'early', 'stable'] as const;

/** The id of the `index`th seeded device: `dev-000042`. */
export function benchDeviceId(index: number): string {
  return `dev-${String(index).padStart(6, '0')}`;
}

/** mulberry32: a small seeded PRNG returning floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

export function pick<T>(items: readonly T[], random: () => number): T {
  return items[Math.floor(random() * items.length)]!;
}
