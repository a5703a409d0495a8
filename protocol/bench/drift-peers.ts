/**
 * The three quantile sketches the drift bench compares, behind one shape:
 * our KLL (k = 200, inside the numeric signal sketch the agent flushes) and
 * two JavaScript peers from the npm registry at their default settings:
 * `tdigest` 0.1.3 (Dunning's t-digest, delta 0.01, K 25) and
 * `@datadog/sketches-js` 2.1.1 (DDSketch, relative accuracy 0.01).
 *
 * How each one's CDF (fraction of values <= x) is read:
 * - KLL: `KllSketch.cdf`, its own inclusive-rank CDF;
 * - t-digest: `p_rank`, its own CDF (interpolated between centroid
 *   mid-ranks; 0 below the lowest centroid mean, 1 above the highest);
 * - DDSketch has no rank query, only `getValueAtQuantile`: its CDF at x is
 *   the largest q = j / DDSKETCH_CDF_GRID with getValueAtQuantile(q) <= x
 *   (0 when there is none), the quantile function inverted on a rank grid,
 *   which adds at most 1 / DDSKETCH_CDF_GRID = 1e-4 of rank error.
 *
 * Serialized size, each in its own format:
 * - KLL: `serializeSignal` of the numeric signal (header, summary counters
 *   and the KLL sketch), exactly what a flush carries per signal;
 * - t-digest has no serializer: its state is the centroid list `toArray()`
 *   ({mean, n} per centroid), measured as UTF-8 JSON as the sketch stands
 *   after the stream, and again after its own `compress()`;
 * - DDSketch: `toProto()`, its protobuf encoding.
 */
import tdigest from 'tdigest';
import { DDSketch } from '@datadog/sketches-js';
import {
  createNumericSignal,
  createSeededRandom,
  serializeSignal,
  updateSignal,
  utf8,
  type KllSketch,
} from '../src/index.ts';

export const KLL_BENCH_K = 200;
/** Ranks at which a DDSketch's quantile function is tabulated to invert it. */
export const DDSKETCH_CDF_GRID = 10_000;

export type SketchName = 'kll' | 'tdigest' | 'ddsketch';
export const SKETCH_NAMES: readonly SketchName[] = ['kll', 'tdigest', 'ddsketch'];

export interface BenchSketch {
  update(value: number): void;
  /** Fraction of values <= each point (points ascending). */
  cdf(points: number[]): number[];
  /** Serialized sizes in bytes, by what was measured. */
  sizes(): Record<string, number>;
  /** The KLL sketch itself, for the production `ksDistance` (KLL only). */
  kll?: KllSketch;
}

export function createBenchSketch(name: SketchName, seed: number): BenchSketch {
  switch (name) {
    case 'kll':
      return kllSketch(KLL_BENCH_K, seed);
    case 'tdigest':
      return tdigestSketch();
    case 'ddsketch':
      return ddSketch();
  }
}

/** A numeric signal sketch (counters + KLL of `k`), as the agent keeps per signal. */
export function kllSketch(k: number, seed: number): BenchSketch {
  const signal = createNumericSignal({ k, random: createSeededRandom(seed) });
  return {
    update: (value) => updateSignal(signal, value),
    cdf: (points) => signal.kll.cdf(points).slice(0, points.length),
    sizes: () => ({
      signalBytes: serializeSignal(signal).length,
      kllBytes: signal.kll.serialize().length,
    }),
    kll: signal.kll,
  };
}

function tdigestSketch(): BenchSketch {
  const digest = new tdigest.TDigest();
  const jsonBytes = () => utf8(JSON.stringify(digest.toArray())).length;
  return {
    update: (value) => digest.push(value),
    cdf: (points) => digest.p_rank(points),
    sizes: () => {
      const asIs = { jsonBytes: jsonBytes(), centroids: digest.size() };
      digest.compress();
      return { ...asIs, compressedJsonBytes: jsonBytes(), compressedCentroids: digest.size() };
    },
  };
}

function ddSketch(): BenchSketch {
  const sketch = new DDSketch();
  return {
    update: (value) => sketch.accept(value),
    cdf: (points) => {
      const table = new Float64Array(DDSKETCH_CDF_GRID + 1);
      for (let j = 0; j <= DDSKETCH_CDF_GRID; j++) {
        table[j] = sketch.getValueAtQuantile(j / DDSKETCH_CDF_GRID);
      }
      return points.map((x) => countAtMost(table, x) / DDSKETCH_CDF_GRID);
    },
    sizes: () => ({ protoBytes: sketch.toProto().length }),
  };
}

/** max(0, the largest j with table[j] <= x); table ascending. */
function countAtMost(table: Float64Array, x: number): number {
  let low = 0;
  let high = table.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (table[mid]! <= x) low = mid + 1;
    else high = mid;
  }
  return Math.max(0, low - 1);
}

/** One update closure per sketch for the update-cost figure (no adapter in between). */
export function rawUpdaters(seed: number): Record<string, () => (value: number) => void> {
  return {
    kll: () => {
      const signal = createNumericSignal({ k: KLL_BENCH_K, random: createSeededRandom(seed) });
      const kll = signal.kll;
      return (value) => void kll.update(value);
    },
    kllSignal: () => {
      const signal = createNumericSignal({ k: KLL_BENCH_K, random: createSeededRandom(seed) });
      return (value) => updateSignal(signal, value);
    },
    tdigest: () => {
      const digest = new tdigest.TDigest();
      return (value) => digest.push(value);
    },
    ddsketch: () => {
      const sketch = new DDSketch();
      return (value) => sketch.accept(value);
    },
  };
}
