/**
 * Test fixture: a tiny monitored model for the drift monitor and outbox tests
 * (no ONNX): rows of 4 inputs, 3 classes, three signals (an input, the
 * confidence, the predicted class), and batches whose rows are easy to tell
 * apart.
 */
import type { BundleModelRef, ManifestDrift } from '@fleet/protocol';
import type { MonitoredModel } from '../core/drift-monitor.ts';

export const TINY_WIDTH = 4;
export const TINY_CLASSES = 3;

export const tinyRef = (n: number): BundleModelRef => ({
  name: 'tiny',
  version: `1.${n}.0`,
  release: n,
  bundleId: n.toString(16).padStart(64, '0'),
});

export function tinySpec(overrides: Partial<ManifestDrift> = {}): ManifestDrift {
  return {
    part: 'drift-profile.bin',
    sampleRate: 0.1,
    flush: { maxSamples: 1000, maxIntervalMs: 60_000 },
    sketchK: 32,
    signals: [
      { name: 'input.0', kind: 'numeric', source: { type: 'input', index: 0 } },
      { name: 'confidence', kind: 'numeric', source: { type: 'confidence' } },
      { name: 'predicted_class', kind: 'categorical', source: { type: 'predicted-class' } },
    ],
    ...overrides,
  };
}

/** Release `n` of the tiny model, installed by `rollout-000{n}`, every row sampled. */
export function tinyModel(n: number, overrides: Partial<MonitoredModel> = {}): MonitoredModel {
  return {
    ref: tinyRef(n),
    rolloutId: `rollout-000${n}`,
    spec: tinySpec(),
    pca: null,
    sampleRate: 1,
    ...overrides,
  };
}

/** `batch` rows: input 0 is the row's index in the batch, the rest 0.5; the output favours class index % 3 at 0.8. */
export function tinyBatch(batch: number): { inputs: Float32Array; outputs: Float32Array } {
  const inputs = new Float32Array(batch * TINY_WIDTH).fill(0.5);
  const outputs = new Float32Array(batch * TINY_CLASSES).fill(0.1);
  for (let r = 0; r < batch; r++) {
    inputs[r * TINY_WIDTH] = r;
    outputs[r * TINY_CLASSES + (r % TINY_CLASSES)] = 0.8;
  }
  return { inputs, outputs };
}
