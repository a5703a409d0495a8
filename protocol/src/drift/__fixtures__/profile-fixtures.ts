/**
 * A small synthetic model for the drift profile and signal tests: 12-feature
 * inputs spread mostly along two known directions, and a 4-class softmax of
 * a fixed linear map as the model's probabilities.
 */
import type { ManifestDrift } from '../../bundle/manifest.ts';
import { createSeededRandom } from '../random.ts';
import type { DriftSample } from '../signals.ts';
import { normal } from './streams.ts';

export const INPUT_SIZE = 12;
export const CLASSES = 4;

/** Every source kind once or more. */
export function sampleSpec(overrides: Partial<ManifestDrift> = {}): ManifestDrift {
  return {
    part: 'drift-profile.bin',
    sampleRate: 0.1,
    flush: { maxSamples: 1000, maxIntervalMs: 300_000 },
    sketchK: 100,
    signals: [
      { name: 'input.3', kind: 'numeric', source: { type: 'input', index: 3 } },
      { name: 'input.7', kind: 'numeric', source: { type: 'input', index: 7 } },
      { name: 'confidence', kind: 'numeric', source: { type: 'confidence' } },
      { name: 'predicted_class', kind: 'categorical', source: { type: 'predicted-class' } },
      { name: 'pca.0', kind: 'numeric', source: { type: 'pca', component: 0 } },
      { name: 'pca.1', kind: 'numeric', source: { type: 'pca', component: 1 } },
      { name: 'pca_error', kind: 'numeric', source: { type: 'pca-error' } },
    ],
    ...overrides,
  };
}

/** The spec without its PCA signals. */
export function specWithoutPca(): ManifestDrift {
  const spec = sampleSpec();
  return { ...spec, signals: spec.signals.filter((s) => !s.source.type.startsWith('pca')) };
}

/** `count` seeded samples: x = offset + 3 a u + 1.5 b v + 0.1 noise, p = softmax(W x). */
export function syntheticSamples(count: number, seed: number): DriftSample[] {
  const random = createSeededRandom(seed);
  const u = Float32Array.from({ length: INPUT_SIZE }, (_, i) => (i < 6 ? 1 : 0) / Math.sqrt(6));
  const v = Float32Array.from(
    { length: INPUT_SIZE },
    (_, i) => (i % 2 === 0 ? 1 : -1) / Math.sqrt(12),
  );
  const samples: DriftSample[] = [];
  for (let n = 0; n < count; n++) {
    const a = normal(random);
    const b = normal(random);
    const input = Float32Array.from(
      { length: INPUT_SIZE },
      (_, i) => 0.5 + 3 * a * u[i]! + 1.5 * b * v[i]! + 0.1 * normal(random),
    );
    const logits = Array.from({ length: CLASSES }, (_, c) =>
      input.reduce((sum, x, i) => sum + x * Math.sin(1 + c * 7 + i), 0),
    );
    const top = Math.max(...logits);
    const exps = logits.map((l) => Math.exp(l - top));
    const total = exps.reduce((s, e) => s + e, 0);
    samples.push({ input, probabilities: Float32Array.from(exps, (e) => e / total) });
  }
  return samples;
}
