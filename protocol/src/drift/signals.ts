/**
 * The monitored signals of one inference, computed by the same code at bundle
 * build (the baseline, from training or calibration data) and on devices
 * (the sampled field data), so the two describe the same quantities
 * (ARCHITECTURE "Drift"). The manifest's `drift.signals` says which; the
 * drift profile (drift/profile.ts) carries the PCA basis the derived ones use.
 *
 * Per source, for an input row x and the model's output row p:
 * - `input`: x[index];
 * - `confidence`: the largest p, clamped to [0, 1];
 * - `predicted-class`: the index of the largest p (the first on a tie), as a
 *   decimal string. These two are exactly the agent's `confidences` and
 *   `predictions` (edge-agent/src/core/inference-service.ts `readAnswer`);
 * - `pca` component j: (x − mean) · row j of the basis;
 * - `pca-error`: the root-mean-square reconstruction residual per feature,
 *   ‖r‖₂ / √inputSize with r = (x − mean) − Σ_j ((x − mean) · c_j) c_j over
 *   every component of the basis. Not squared, so it is in the units of the
 *   inputs (pixel intensity for MNIST) and its quantiles spread like theirs;
 *   divided by √inputSize, so models of different input sizes give
 *   comparable values. The residual is formed explicitly, not as
 *   ‖x − mean‖² − Σ projections², which can cancel to a negative number.
 * Arithmetic is float64 on the float32 inputs, outputs and basis.
 *
 * @example
 *   const extract = createSignalExtractor(manifest.drift, profile.pca);
 *   const values = extract(inputRow, probabilities); // [0.5, 0.97, '7', -1.2, 0.04]
 *   values.forEach((value, i) => updateSignal(sketches[i], value));
 */
import { FleetError } from '../errors.ts';
import { driftKindOf, type DriftSource, type ManifestDrift } from '../bundle/manifest.ts';
import { COUNTERS_SERIALIZED_BYTES } from './counters.ts';
import { KLL_DEFAULT_K, kllSerializedSizeBound } from './kll-levels.ts';
import type { PcaBasis } from './pca.ts';
import type { RandomSource } from './random.ts';
import {
  createCategoricalSignal,
  createNumericSignal,
  updateSignal,
  type SignalSketch,
} from './signal-sketch.ts';

/** One sampled inference: the input row and the model's output row (class probabilities). */
export interface DriftSample {
  input: Float32Array;
  probabilities: Float32Array;
}

/** One value per manifest signal, in manifest order. */
export type SignalExtractor = (
  input: Float32Array,
  probabilities: Float32Array,
) => Array<number | string>;

/** True when a signal of the spec needs the PCA basis. */
export function driftUsesPca(spec: ManifestDrift): boolean {
  return spec.signals.some((s) => s.source.type === 'pca' || s.source.type === 'pca-error');
}

/**
 * Refuses (MALFORMED) a basis that does not fit the spec: one present exactly
 * when a `pca` or `pca-error` signal is monitored, and every component index
 * below the number of components. The basis itself is checked by the profile
 * codec.
 */
export function assertPcaFitsSpec(spec: ManifestDrift, pca: PcaBasis | null): void {
  const needed = driftUsesPca(spec);
  if (needed && pca === null) {
    throw new FleetError('MALFORMED', 'the drift signals use PCA, but no PCA basis was given');
  }
  if (!needed && pca !== null) {
    throw new FleetError('MALFORMED', 'a PCA basis was given, but no drift signal uses PCA');
  }
  for (const signal of spec.signals) {
    const { source } = signal;
    if (source.type === 'pca' && source.component >= pca!.components.length) {
      throw new FleetError(
        'MALFORMED',
        `drift signal ${signal.name} projects on component ${source.component}, the basis has ${pca!.components.length}`,
      );
    }
    if (source.type === 'input' && pca !== null && source.index >= pca.inputSize) {
      throw new FleetError(
        'MALFORMED',
        `drift signal ${signal.name} reads input ${source.index}, the PCA basis spans ${pca.inputSize}`,
      );
    }
  }
}

/**
 * The extractor of `spec`'s signals. It throws MALFORMED for an input row
 * that is shorter than an input signal's index or not the basis's size (when
 * PCA is used), or for a non-finite output (the agent refuses those before
 * they are sampled).
 */
export function createSignalExtractor(spec: ManifestDrift, pca: PcaBasis | null): SignalExtractor {
  assertPcaFitsSpec(spec, pca);
  const sources = spec.signals.map((s) => s.source);
  const projector = pca ? createProjector(pca) : null;
  return (input, probabilities) => {
    if (projector !== null && input.length !== projector.inputSize) {
      throw new FleetError(
        'MALFORMED',
        `an input row of ${input.length} features, the PCA basis spans ${projector.inputSize}`,
      );
    }
    const answer = projector === null ? null : projector.project(input);
    const best = argmax(probabilities);
    return sources.map((source) => valueOf(source, input, probabilities, best, answer));
  };
}

function valueOf(
  source: DriftSource,
  input: Float32Array,
  probabilities: Float32Array,
  best: number,
  pca: Projection | null,
): number | string {
  switch (source.type) {
    case 'input':
      if (source.index >= input.length) {
        throw new FleetError(
          'MALFORMED',
          `drift input ${source.index} is outside an input row of ${input.length}`,
        );
      }
      return input[source.index]!;
    case 'confidence':
      return Math.min(1, Math.max(0, probabilities[best] ?? 0));
    case 'predicted-class':
      return String(best);
    case 'pca':
      return pca!.projections[source.component]!;
    case 'pca-error':
      return pca!.error;
  }
}

/** The agent's argmax: the first index of the largest output; refuses a non-finite output. */
function argmax(probabilities: Float32Array): number {
  let best = 0;
  for (let j = 0; j < probabilities.length; j++) {
    if (!Number.isFinite(probabilities[j]!)) {
      throw new FleetError('MALFORMED', `model output ${j} is ${probabilities[j]}`);
    }
    if (probabilities[j]! > probabilities[best]!) best = j;
  }
  return best;
}

interface Projection {
  projections: Float64Array;
  error: number;
}

function createProjector(pca: PcaBasis) {
  const { inputSize, mean, components } = pca;
  const centred = new Float64Array(inputSize);
  return {
    inputSize,
    project(input: Float32Array): Projection {
      for (let i = 0; i < inputSize; i++) centred[i] = input[i]! - mean[i]!;
      const projections = new Float64Array(components.length);
      components.forEach((row, j) => {
        let sum = 0;
        for (let i = 0; i < inputSize; i++) sum += centred[i]! * row[i]!;
        projections[j] = sum;
      });
      // The residual: subtract every component's share from the centred row.
      components.forEach((row, j) => {
        const share = projections[j]!;
        for (let i = 0; i < inputSize; i++) centred[i]! -= share * row[i]!;
      });
      let squares = 0;
      for (let i = 0; i < inputSize; i++) squares += centred[i]! * centred[i]!;
      return { projections, error: Math.sqrt(squares / inputSize) };
    },
  };
}

export interface BaselineOptions {
  /** KLL k of the baseline sketches (default 200: the baseline is read, never flushed). */
  k?: number;
  /** For the KLL compactions; default Math.random. */
  random?: RandomSource;
}

/**
 * The baseline sketches of `spec`'s signals over `samples` (training or
 * calibration inputs with the shipped model's outputs), keyed by signal name:
 * what drift/profile.ts ships and the control plane scores against.
 */
export function buildBaseline(
  spec: ManifestDrift,
  pca: PcaBasis | null,
  samples: Iterable<DriftSample>,
  options: BaselineOptions = {},
): Map<string, SignalSketch> {
  const extract = createSignalExtractor(spec, pca);
  const sketchOptions = { k: options.k ?? KLL_DEFAULT_K, random: options.random ?? Math.random };
  const sketches = spec.signals.map((signal) =>
    driftKindOf(signal.source) === 'numeric'
      ? createNumericSignal(sketchOptions)
      : createCategoricalSignal(),
  );
  for (const sample of samples) {
    const values = extract(sample.input, sample.probabilities);
    for (let i = 0; i < values.length; i++) updateSignal(sketches[i]!, values[i]);
  }
  return new Map(spec.signals.map((signal, i) => [signal.name, sketches[i]!]));
}

/**
 * The most bytes `serializeSignal` gives for a numeric signal sketched with
 * KLL `k` after `n` values: a device's flush of `flush.maxSamples` sampled
 * inferences stays within `numericSignalBytesBound(sketchK, maxSamples)` per
 * numeric signal (k = 100, n = 1,000: 2,624 bytes).
 */
export function numericSignalBytesBound(k: number, n: number): number {
  // signal header 8, counters length 4 + counters, KLL length 4 + KLL sketch
  return 8 + 4 + COUNTERS_SERIALIZED_BYTES + 4 + kllSerializedSizeBound(k, n);
}
