/**
 * Labelled samples: inputs the device inferred, with the label that arrived
 * later as feedback, kept for on-device training. The store interface is
 * here; the filesystem (adapters/fs/fs-label-store.ts) and memory
 * (adapters/memory/memory-label-store.ts) stores implement it, and both run
 * adapters/labelled-samples-contract.ts.
 *
 * Retention, the same on every store: none older than `maxAgeMs` by its
 * label time, and of the rest the newest `maxSamples` (the oldest go first), judged against
 * the injected clock whenever samples are appended, read or counted. Pure
 * helpers shared by the stores: `retainedFlags`, `toTrainingSet`.
 *
 * @example
 *   await store.open();
 *   await store.append([{ features, label: 7, model, inferenceTs, labelTs: nowMs() }]);
 *   const { features, labels, count, featureCount } = await store.read({ maxSamples: 1000, seed: 42 });
 */
import { createSeededRandom, type ModelRef } from '@fleet/protocol';
import type { CorruptEntry } from './storage.ts';

/** One input row and its label. */
export interface LabelledSample {
  features: Float32Array;
  /** The true class, an integer in [0, classes of the model). */
  label: number;
  /** The model that served the inference. */
  model: ModelRef;
  /** Epoch ms of the inference and of the label. */
  inferenceTs: number;
  labelTs: number;
}

export interface LabelRetention {
  maxSamples: number;
  maxAgeMs: number;
}

/** 5,000 samples, 7 days. */
export const DEFAULT_LABEL_RETENTION: LabelRetention = Object.freeze({
  maxSamples: 5000,
  maxAgeMs: 7 * 24 * 60 * 60 * 1000,
});

/** Samples as a trainer takes them: row-major features and their labels. */
export interface TrainingSet {
  features: Float32Array;
  labels: Int32Array;
  count: number;
  featureCount: number;
}

export interface ReadOptions {
  /** At most this many samples (all by default); chosen uniformly without replacement. */
  maxSamples?: number;
  /** The choice is the same for the same seed and the same stored samples (default 0). */
  seed?: number;
  /** Only samples of this row width (default: the newest sample's). */
  featureCount?: number;
}

export interface LabelStoreStats {
  /** Samples retained now. */
  stored: number;
  /** Samples appended by this process. */
  appended: number;
  /** Samples removed by retention (count or age) in this process. */
  dropped: number;
  /** Damaged files moved aside when opened. */
  corruptFiles: number;
  /** Torn records at the end of the newest file (a crash mid-append), cut off when opened. */
  truncatedRecords: number;
}

export interface LabelStoreOpenReport {
  corrupt: CorruptEntry[];
  truncatedRecords: number;
}

/**
 * Where labelled samples are kept. `open` first (it recovers what a crash
 * left); `append` is durable when it resolves; reads return copies.
 */
export interface LabelledSampleStore {
  /** Loads the index; damaged files are moved aside and listed, never fatal. */
  open(): Promise<LabelStoreOpenReport>;
  /** Stores samples (in order), then applies retention. */
  append(samples: readonly LabelledSample[]): Promise<void>;
  /** Every retained sample, oldest first (applies retention first). */
  all(): Promise<LabelledSample[]>;
  /** A training set of retained samples (applies retention first); see `ReadOptions`. */
  read(options?: ReadOptions): Promise<TrainingSet>;
  /** Samples retained at the clock's now. */
  count(): number;
  stats(): LabelStoreStats;
}

/**
 * Which samples (label times, oldest first) retention keeps at `nowMs`: of
 * those at most `maxAgeMs` old, the newest `maxSamples`.
 */
export function retainedFlags(
  labelTimes: ArrayLike<number>,
  retention: LabelRetention,
  nowMs: number,
): boolean[] {
  const flags = new Array<boolean>(labelTimes.length).fill(false);
  let room = retention.maxSamples;
  for (let i = labelTimes.length - 1; i >= 0 && room > 0; i--) {
    if (nowMs - labelTimes[i]! <= retention.maxAgeMs) {
      flags[i] = true;
      room--;
    }
  }
  return flags;
}

/**
 * The training set of `samples` (oldest first): those of one width, at most
 * `maxSamples` of them chosen by a seeded partial Fisher-Yates shuffle, in
 * their stored order.
 */
export function toTrainingSet(
  samples: readonly LabelledSample[],
  options: ReadOptions = {},
): TrainingSet {
  const featureCount = options.featureCount ?? samples[samples.length - 1]?.features.length ?? 0;
  const eligible = samples.filter((s) => s.features.length === featureCount);
  const want = Math.max(0, Math.min(options.maxSamples ?? eligible.length, eligible.length));
  let chosen = eligible;
  if (want < eligible.length) {
    const random = createSeededRandom(options.seed ?? 0);
    const order = eligible.map((_, i) => i);
    for (let i = 0; i < want; i++) {
      const j = i + Math.floor(random() * (order.length - i));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    chosen = order
      .slice(0, want)
      .sort((a, b) => a - b)
      .map((i) => eligible[i]!);
  }
  const features = new Float32Array(chosen.length * featureCount);
  const labels = new Int32Array(chosen.length);
  chosen.forEach((s, i) => {
    features.set(s.features, i * featureCount);
    labels[i] = s.label;
  });
  return { features, labels, count: chosen.length, featureCount };
}

/** A sample that may be stored: a finite row, an integer label, finite times. */
export function checkSample(sample: LabelledSample): void {
  if (!Number.isInteger(sample.label) || sample.label < 0 || sample.label > 0x7fffffff) {
    throw new RangeError(`label ${sample.label} is not a non-negative integer`);
  }
  if (!Number.isFinite(sample.inferenceTs) || !Number.isFinite(sample.labelTs)) {
    throw new RangeError('sample times must be finite epoch milliseconds');
  }
}
