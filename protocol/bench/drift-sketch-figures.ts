/**
 * Part A of the drift bench: the sketches' own figures, for our KLL and the
 * two peers of drift-peers.ts in the same run.
 *
 * - `measureUpdateCost`: ns per value fed, the median of `repetitions` runs
 *   over `values` standard-normal values, each into a fresh sketch, after a
 *   warm-up run of `warmup` values per sketch.
 * - `measureKs`: for pairs of streams (stream a, and stream b of the same
 *   distribution moved by each shift, drawn afresh, also for shift 0), the
 *   KS distance from the two sketches against the exact two-sample
 *   statistic on the raw values (drift-streams.ts `exactKs`). Every sketch's
 *   CDF is read on the same dense grid (`denseGrid`, within 2/grid of the
 *   exact statistic by itself); for KLL the production `ksDistance` of the
 *   two sketches (its own quantile grid, as the control plane scores) is
 *   reported too. The serialized sizes of stream a's sketches are taken at
 *   the sizes in `bytesSizes`, with a KLL of k = 100 (the manifest's default
 *   device sketch) alongside.
 */
import { ksDistance } from '../src/index.ts';
import {
  createBenchSketch,
  kllSketch,
  rawUpdaters,
  SKETCH_NAMES,
  type BenchSketch,
  type SketchName,
} from './drift-peers.ts';
import {
  DISTRIBUTIONS,
  denseGrid,
  exactKs,
  makeStream,
  maxGap,
  sortedCopy,
  type DistributionName,
} from './drift-streams.ts';

export interface UpdateCostOptions {
  values: number;
  repetitions: number;
  warmup: number;
  seed: number;
}

export interface UpdateCost {
  nsPerValue: number;
  runsNsPerValue: number[];
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function measureUpdateCost(options: UpdateCostOptions): Record<string, UpdateCost> {
  const values = makeStream(DISTRIBUTIONS.normal, options.values, 0, options.seed);
  const out: Record<string, UpdateCost> = {};
  for (const [name, create] of Object.entries(rawUpdaters(options.seed))) {
    const warm = create();
    for (let i = 0; i < Math.min(options.warmup, values.length); i++) warm(values[i]!);
    const runs: number[] = [];
    for (let r = 0; r < options.repetitions; r++) {
      const update = create();
      const started = performance.now();
      for (let i = 0; i < values.length; i++) update(values[i]!);
      runs.push(((performance.now() - started) * 1e6) / values.length);
    }
    out[name] = {
      nsPerValue: round(median(runs), 1),
      runsNsPerValue: runs.map((v) => round(v, 1)),
    };
  }
  return out;
}

export interface KsOptions {
  distributions: DistributionName[];
  sizes: number[];
  /** In standard deviations of the distribution; 0 compares two fresh draws of one distribution. */
  shifts: number[];
  /** Stream pairs per (distribution, size) below 1e6; one at 1e6 and above. */
  repetitions: number;
  grid: number;
  bytesSizes: number[];
  seed: number;
  onProgress?: (line: string) => void;
}

/** One pair of streams: the exact statistic and each sketch's estimate. */
export interface KsPair {
  distribution: DistributionName;
  n: number;
  shift: number;
  exact: number;
  estimate: Record<SketchName | 'kllKsDistance', number>;
}

export interface SizeRecord {
  distribution: DistributionName;
  n: number;
  sizes: Record<SketchName | 'kllK100', Record<string, number>>;
}

function fill(sketch: BenchSketch, values: Float64Array): BenchSketch {
  for (let i = 0; i < values.length; i++) sketch.update(values[i]!);
  return sketch;
}

function sketchAll(values: Float64Array, seed: number): Record<SketchName, BenchSketch> {
  const out = {} as Record<SketchName, BenchSketch>;
  for (const name of SKETCH_NAMES) out[name] = fill(createBenchSketch(name, seed), values);
  return out;
}

export function measureKs(options: KsOptions): { pairs: KsPair[]; sizes: SizeRecord[] } {
  const pairs: KsPair[] = [];
  const sizes: SizeRecord[] = [];
  let seed = options.seed;
  for (const distributionName of options.distributions) {
    const distribution = DISTRIBUTIONS[distributionName];
    for (const n of options.sizes) {
      const repetitions = n >= 1e6 ? 1 : options.repetitions;
      for (let rep = 0; rep < repetitions; rep++) {
        const a = makeStream(distribution, n, 0, ++seed);
        const sortedA = sortedCopy(a);
        const sketchesA = sketchAll(a, ++seed);
        for (const shift of options.shifts) {
          const b = makeStream(distribution, n, shift, ++seed);
          const sortedB = sortedCopy(b);
          const sketchesB = sketchAll(b, ++seed);
          const grid = denseGrid(sortedA, sortedB, options.grid);
          const estimate = {
            kllKsDistance: ksDistance(sketchesA.kll.kll!, sketchesB.kll.kll!),
          } as KsPair['estimate'];
          for (const name of SKETCH_NAMES) {
            estimate[name] = maxGap(sketchesA[name].cdf(grid), sketchesB[name].cdf(grid));
          }
          const exact = exactKs(sortedA, sortedB);
          pairs.push({ distribution: distributionName, n, shift, exact, estimate });
        }
        if (rep === 0 && options.bytesSizes.includes(n)) {
          sizes.push(sizeRecord(distributionName, a, sketchesA, ++seed));
        }
      }
      options.onProgress?.(`ks: ${distributionName} n=${n} done (${pairs.length} pairs so far)`);
    }
  }
  return { pairs, sizes };
}

function sizeRecord(
  distribution: DistributionName,
  values: Float64Array,
  sketches: Record<SketchName, BenchSketch>,
  seed: number,
): SizeRecord {
  const sizes = { kllK100: fill(kllSketch(100, seed), values).sizes() } as SizeRecord['sizes'];
  for (const name of SKETCH_NAMES) sizes[name] = sketches[name].sizes();
  return { distribution, n: values.length, sizes };
}

export interface ErrorSummary {
  pairs: number;
  maxAbsError: number;
  meanAbsError: number;
}

export type KsSummary = ErrorSummary & {
  byN: Record<string, ErrorSummary>;
  byDistribution: Record<string, ErrorSummary>;
};

/** Max and mean |estimate - exact| per estimator: over all pairs, per size, per distribution. */
export function summarizeKs(pairs: readonly KsPair[]): Record<string, KsSummary> {
  const summarize = (subset: readonly KsPair[], name: keyof KsPair['estimate']): ErrorSummary => {
    const errors = subset.map((p) => Math.abs(p.estimate[name] - p.exact));
    return {
      pairs: errors.length,
      maxAbsError: round(Math.max(...errors), 5),
      meanAbsError: round(errors.reduce((s, e) => s + e, 0) / Math.max(1, errors.length), 5),
    };
  };
  const groups = (key: 'n' | 'distribution', name: keyof KsPair['estimate']) =>
    Object.fromEntries(
      [...new Set(pairs.map((p) => p[key]))].map((value) => [
        String(value),
        summarize(
          pairs.filter((p) => p[key] === value),
          name,
        ),
      ]),
    );
  const names = [...SKETCH_NAMES, 'kllKsDistance'] as const;
  return Object.fromEntries(
    names.map((name) => [
      name,
      {
        ...summarize(pairs, name),
        byN: groups('n', name),
        byDistribution: groups('distribution', name),
      },
    ]),
  );
}

/** The headline size of each sketch per record (see drift-peers.ts for what each measures). */
export function sizeTable(records: readonly SizeRecord[]) {
  return records.map((r) => ({
    distribution: r.distribution,
    n: r.n,
    kllK200SignalBytes: r.sizes.kll.signalBytes!,
    kllK100SignalBytes: r.sizes.kllK100.signalBytes!,
    tdigestJsonBytes: r.sizes.tdigest.jsonBytes!,
    tdigestCompressedJsonBytes: r.sizes.tdigest.compressedJsonBytes!,
    ddsketchProtoBytes: r.sizes.ddsketch.protoBytes!,
  }));
}

export function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
