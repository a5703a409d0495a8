/**
 * The labelled-sample store in memory (core/labelled-samples.ts), for the
 * simulator's many agents in one process and for tests. Same contract and
 * retention as the filesystem store; samples are copied in and out, so what
 * is read back cannot alias what was appended.
 */
import {
  checkSample,
  DEFAULT_LABEL_RETENTION,
  retainedFlags,
  toTrainingSet,
  type LabelledSample,
  type LabelledSampleStore,
  type LabelRetention,
} from '../../core/labelled-samples.ts';

export interface MemoryLabelStoreOptions {
  nowMs: () => number;
  retention?: Partial<LabelRetention>;
}

const copyOf = (s: LabelledSample): LabelledSample => ({
  ...s,
  model: { ...s.model },
  features: s.features.slice(),
});

export function createMemoryLabelStore(options: MemoryLabelStoreOptions): LabelledSampleStore {
  const retention = { ...DEFAULT_LABEL_RETENTION, ...options.retention };
  let samples: LabelledSample[] = [];
  let appended = 0;
  let dropped = 0;

  const flags = () =>
    retainedFlags(
      samples.map((s) => s.labelTs),
      retention,
      options.nowMs(),
    );

  function prune(): void {
    const keep = flags();
    const kept = samples.filter((_, i) => keep[i]);
    dropped += samples.length - kept.length;
    samples = kept;
  }

  const count = () => flags().filter(Boolean).length;

  return {
    open: () => Promise.resolve({ corrupt: [], truncatedRecords: 0 }),
    append(batch) {
      try {
        batch.forEach(checkSample);
      } catch (error) {
        return Promise.reject(error instanceof Error ? error : new Error(String(error)));
      }
      samples.push(...batch.map(copyOf));
      appended += batch.length;
      prune();
      return Promise.resolve();
    },
    all() {
      prune();
      return Promise.resolve(samples.map(copyOf));
    },
    read(readOptions) {
      prune();
      return Promise.resolve(toTrainingSet(samples, readOptions));
    },
    count,
    stats: () => ({ stored: count(), appended, dropped, corruptFiles: 0, truncatedRecords: 0 }),
  };
}
