/**
 * The drift step of the bundle factory (ARCHITECTURE "Drift", issue 6 item 3):
 * which signals a bundle's devices monitor, and their baseline sketches.
 *
 * 1. `planDrift` (model-independent, so a caller may make it once and reuse
 *    it for many builds): resolves the requested signals into the manifest's
 *    `drift` spec, choosing input features by variance, and fits the PCA basis
 *    of the data's inputs (`fitPca` from @fleet/protocol).
 * 2. `buildDriftProfile`: runs the model that ships (the int8 one, through the
 *    same runtime devices use) over the data, feeds every (input, output) pair
 *    through protocol's `buildBaseline` (the extractor devices run too), and
 *    encodes the profile part.
 *
 * Defaults (DEFAULT_DRIFT_SIGNALS): 8 input features chosen by variance, the
 * confidence, the predicted class, projections on the top 5 principal
 * components, and the PCA reconstruction error. Single pixels are narrow
 * views, so few are kept, spread out (see `inputsByVariance`); the PCA
 * projections summarise the digit's shape; the reconstruction error rises
 * for inputs unlike any training input (rotated or noisy digits); confidence
 * and predicted class are what the model makes of it.
 */
import {
  buildBaseline,
  covarianceOf,
  createSeededRandom,
  encodeDriftProfile,
  fitPcaFromCovariance,
  KLL_DEFAULT_K,
  manifestDriftSchema,
  type CovarianceMatrix,
  type DriftSample,
  type ManifestDrift,
  type PcaFit,
} from '@fleet/protocol';
import { factoryError } from '../errors.ts';
import type { EvalData } from '../data/eval-data.ts';
import type { ModelRunner } from '../evaluation/classifier-accuracy.ts';

/** A signal as asked for on the command line, before inputs and components are resolved. */
export type DriftSignalRequest =
  | { type: 'input'; index: number }
  /** `count` input features, the highest-variance ones that are not strongly correlated. */
  | { type: 'inputs-by-variance'; count: number }
  | { type: 'confidence' }
  | { type: 'predicted-class' }
  /** Projections on the first `count` principal components. */
  | { type: 'pca'; count: number }
  | { type: 'pca-error' };

export const DEFAULT_DRIFT_SIGNALS: readonly DriftSignalRequest[] = Object.freeze([
  { type: 'inputs-by-variance', count: 8 },
  { type: 'confidence' },
  { type: 'predicted-class' },
  { type: 'pca', count: 5 },
  { type: 'pca-error' },
]);

/**
 * Defaults of the manifest's drift settings. `sketchK` 100 with flushes of
 * at most 1,000 samples keeps a numeric signal's flush at most 2,624 bytes
 * (`numericSignalBytesBound`), under the 3 KB target; k = 200 would need up
 * to 4,912. Baselines use k = 200: they ship once, in the bundle.
 */
export const DEFAULT_DRIFT_SETTINGS = Object.freeze({
  part: 'drift-profile.bin',
  sampleRate: 0.1,
  flush: Object.freeze({ maxSamples: 1000, maxIntervalMs: 5 * 60_000 }),
  sketchK: 100,
  baselineK: KLL_DEFAULT_K,
  /** Components fitted when only `pca-error` is asked for; more when `pca` asks more. */
  pcaComponents: 5,
});

/** |correlation| above which an input is too like one already chosen (`inputsByVariance`). */
const MAX_INPUT_CORRELATION = 0.5;

export interface DriftPlanOptions {
  signals?: readonly DriftSignalRequest[];
  sampleRate?: number;
  flush?: { maxSamples: number; maxIntervalMs: number };
  sketchK?: number;
  pcaComponents?: number;
  /** Progress of the long steps, one line each. */
  onProgress?: (line: string) => void;
}

/** The manifest's drift spec and the PCA fit (null when no signal needs it). */
export interface DriftPlan {
  spec: ManifestDrift;
  pca: PcaFit | null;
}

export function planDrift(data: EvalData, options: DriftPlanOptions = {}): DriftPlan {
  const requests = options.signals ?? DEFAULT_DRIFT_SIGNALS;
  const needsCovariance = requests.some(
    (r) => r.type === 'inputs-by-variance' || r.type === 'pca' || r.type === 'pca-error',
  );
  const progress = options.onProgress ?? (() => {});
  let cov: CovarianceMatrix | null = null;
  if (needsCovariance) {
    progress(`drift: covariance of ${data.sampleCount} inputs of ${data.featureCount} features`);
    cov = covarianceOf(rowsOf(data), data.featureCount);
  }
  const pcaCount = requests.reduce(
    (most, r) => (r.type === 'pca' ? Math.max(most, r.count) : most),
    requests.some((r) => r.type === 'pca-error')
      ? (options.pcaComponents ?? DEFAULT_DRIFT_SETTINGS.pcaComponents)
      : 0,
  );
  let pca: PcaFit | null = null;
  if (pcaCount > 0) {
    progress(`drift: fitting ${pcaCount} principal components`);
    pca = fitPcaFromCovariance(cov!, { components: pcaCount });
    const explained = pca.eigenvalues.reduce((a, b) => a + b, 0) / (pca.totalVariance || 1);
    progress(
      `drift: ${pcaCount} components explain ${(explained * 100).toFixed(1)}% of the variance (${pca.iterations} iterations)`,
    );
  }
  const parsed = manifestDriftSchema.safeParse({
    part: DEFAULT_DRIFT_SETTINGS.part,
    sampleRate: options.sampleRate ?? DEFAULT_DRIFT_SETTINGS.sampleRate,
    flush: options.flush ?? DEFAULT_DRIFT_SETTINGS.flush,
    sketchK: options.sketchK ?? DEFAULT_DRIFT_SETTINGS.sketchK,
    signals: resolveSignals(requests, data.featureCount, cov),
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw factoryError(
      'DRIFT_SPEC',
      `drift ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`,
    );
  }
  return { spec: parsed.data, pca };
}

/** The spec's signals in request order; a signal asked for twice is kept once. */
function resolveSignals(
  requests: readonly DriftSignalRequest[],
  featureCount: number,
  cov: CovarianceMatrix | null,
): ManifestDrift['signals'] {
  const explicit = new Set(requests.flatMap((r) => (r.type === 'input' ? [r.index] : [])));
  const signals: ManifestDrift['signals'] = [];
  for (const request of requests) {
    switch (request.type) {
      case 'input':
        if (request.index >= featureCount) {
          throw factoryError(
            'DRIFT_SPEC',
            `drift input ${request.index} is outside the ${featureCount} input features`,
          );
        }
        signals.push({ name: `input.${request.index}`, kind: 'numeric', source: request });
        break;
      case 'inputs-by-variance':
        for (const index of inputsByVariance(cov!, request.count, explicit)) {
          signals.push({
            name: `input.${index}`,
            kind: 'numeric',
            source: { type: 'input', index },
          });
        }
        break;
      case 'confidence':
        signals.push({ name: 'confidence', kind: 'numeric', source: request });
        break;
      case 'predicted-class':
        signals.push({ name: 'predicted_class', kind: 'categorical', source: request });
        break;
      case 'pca':
        for (let component = 0; component < request.count; component++) {
          signals.push({
            name: `pca.${component}`,
            kind: 'numeric',
            source: { type: 'pca', component },
          });
        }
        break;
      case 'pca-error':
        signals.push({ name: 'pca_error', kind: 'numeric', source: request });
        break;
    }
  }
  const seen = new Set<string>();
  return signals.filter((s) => !seen.has(s.name) && seen.add(s.name));
}

/**
 * `count` features by decreasing variance, skipping any whose |correlation|
 * with one already chosen exceeds MAX_INPUT_CORRELATION (neighbouring pixels
 * move together, and eight copies of one view tell little), then topping up
 * with the next highest variance if too few pass. Constant features are never
 * chosen; ties go to the lower index.
 */
export function inputsByVariance(
  cov: CovarianceMatrix,
  count: number,
  exclude: ReadonlySet<number> = new Set(),
): number[] {
  const d = cov.size;
  const variance = (i: number) => cov.matrix[i * d + i]!;
  const order = Array.from({ length: d }, (_, i) => i)
    .filter((i) => variance(i) > 0 && !exclude.has(i))
    .sort((a, b) => variance(b) - variance(a) || a - b);
  const chosen: number[] = [];
  for (const i of order) {
    if (chosen.length === count) break;
    const alike = chosen.some(
      (j) =>
        Math.abs(cov.matrix[i * d + j]!) >
        MAX_INPUT_CORRELATION * Math.sqrt(variance(i) * variance(j)),
    );
    if (!alike) chosen.push(i);
  }
  for (const i of order) {
    if (chosen.length === count) break;
    if (!chosen.includes(i)) chosen.push(i);
  }
  return chosen.sort((a, b) => a - b);
}

export interface DriftProfileResult {
  /** The encoded profile part. */
  bytes: Uint8Array;
  /** Samples the baselines describe. */
  samples: number;
}

/**
 * Runs `runner` (the model that ships) over `data` in batches and encodes the
 * baselines of `plan`'s signals with the PCA basis. Deterministic: the
 * baselines' compactions are seeded with `seed`.
 */
export async function buildDriftProfile(
  plan: DriftPlan,
  data: EvalData,
  runner: ModelRunner,
  options: {
    baselineK?: number;
    seed?: number;
    batchSize?: number;
    onProgress?: (line: string) => void;
  } = {},
): Promise<DriftProfileResult> {
  const batchSize = options.batchSize ?? 512;
  const samples: DriftSample[] = [];
  for (let start = 0; start < data.sampleCount; start += batchSize) {
    const rows = Math.min(batchSize, data.sampleCount - start);
    const inputs = data.features.subarray(
      start * data.featureCount,
      (start + rows) * data.featureCount,
    );
    const outputs = await runner.run(inputs, rows);
    const width = outputs.length / rows;
    for (let r = 0; r < rows; r++) {
      samples.push({
        input: inputs.subarray(r * data.featureCount, (r + 1) * data.featureCount),
        probabilities: outputs.subarray(r * width, (r + 1) * width),
      });
    }
    options.onProgress?.(`drift: model outputs ${start + rows}/${data.sampleCount}`);
  }
  const pca = plan.pca?.basis ?? null;
  const baselines = buildBaseline(plan.spec, pca, samples, {
    k: options.baselineK ?? DEFAULT_DRIFT_SETTINGS.baselineK,
    random: createSeededRandom(options.seed ?? 1),
  });
  return { bytes: encodeDriftProfile({ pca, baselines }), samples: samples.length };
}

function* rowsOf(data: EvalData): Generator<Float32Array> {
  for (let i = 0; i < data.sampleCount; i++) {
    yield data.features.subarray(i * data.featureCount, (i + 1) * data.featureCount);
  }
}
