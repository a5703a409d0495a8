/**
 * What the drift bench's detection runs share (Part B): the bundle's drift
 * spec and profile as the bundle factory would ship them for the MNIST
 * reference model, and the held-out digits' signal values.
 *
 * The model is the class-mean model of all 8,000 training digits
 * (drift-digits.ts); the profile describes the first `baselineDigits` of
 * them (default all; the simulator's bundle kit uses 2,000):
 *
 * 1. `planDrift` of @fleet/bundles on those digits: the default
 *    signals (8 input pixels chosen by variance, confidence, predicted
 *    class, 5 PCA projections, PCA reconstruction error), the PCA basis, and
 *    the manifest's sampling and flush settings (flush.maxSamples, sketchK).
 * 2. `buildBaseline` (protocol) over the same digits with the model's
 *    outputs, KLL k = 200, seeded; then the profile part is encoded and
 *    decoded (`encodeDriftProfile` / `decodeDriftProfile`), so the
 *    baselines scored against are the shipped bytes.
 * 3. The clean held-out digits' signal values, computed once: a clean
 *    sampled inference is one of them, drawn at random.
 */
import { planDrift, type EvalData } from '@fleet/bundles';
import {
  buildBaseline,
  createSeededRandom,
  decodeDriftProfile,
  driftKindOf,
  encodeDriftProfile,
  type DriftSample,
  type ManifestDrift,
  type PcaBasis,
} from '../src/index.ts';
import type { DriftBaseline } from '../../control-plane/src/core/drift/drift-baselines.ts';
import {
  classMeanModel,
  digitOf,
  firstDigits,
  loadDigits,
  type Classifier,
} from './drift-digits.ts';

export const BASELINE_K = 200;

export interface DetectionSetup {
  spec: ManifestDrift;
  /** The decoded profile as the control plane scores against it. */
  profile: DriftBaseline;
  profileBytes: number;
  /** Share of the training inputs' variance the PCA components explain. */
  pcaExplained: number;
  modelTrainDigits: number;
  baselineDigits: number;
  /** The profile's PCA basis, as decoded. */
  pca: PcaBasis | null;
  model: Classifier;
  test: EvalData;
  /** The model's output for each held-out digit, unshifted. */
  cleanOutputs: Float32Array[];
  /** Share of the held-out digits the model classifies right. */
  testAccuracy: number;
}

export async function prepareDetection(options: {
  baselineDigits?: number;
  seed: number;
  onProgress?: (line: string) => void;
}): Promise<DetectionSetup> {
  const progress = options.onProgress ?? (() => {});
  const { train: allTrain, test } = await loadDigits();
  const model = classMeanModel(allTrain);
  const train = firstDigits(allTrain, options.baselineDigits ?? allTrain.sampleCount);
  progress(
    `detection: baseline of ${train.sampleCount} training digits, ${test.sampleCount} held out`,
  );
  const plan = planDrift(train, { onProgress: progress });
  const pca = plan.pca?.basis ?? null;
  const samples: DriftSample[] = [];
  for (let i = 0; i < train.sampleCount; i++) {
    const input = digitOf(train, i);
    samples.push({ input, probabilities: model(input) });
  }
  const baselines = buildBaseline(plan.spec, pca, samples, {
    k: BASELINE_K,
    random: createSeededRandom(options.seed),
  });
  const bytes = encodeDriftProfile({ pca, baselines });
  const decoded = decodeDriftProfile(bytes, plan.spec, {
    random: createSeededRandom(options.seed),
  });
  const cleanOutputs: Float32Array[] = [];
  let right = 0;
  for (let i = 0; i < test.sampleCount; i++) {
    const probabilities = model(digitOf(test, i));
    cleanOutputs.push(probabilities);
    if (argmax(probabilities) === test.labels![i]) right++;
  }
  const explained = plan.pca
    ? plan.pca.eigenvalues.reduce((a, b) => a + b, 0) / (plan.pca.totalVariance || 1)
    : 0;
  progress(`detection: ${plan.spec.signals.length} signals, profile of ${bytes.length} bytes`);
  return {
    spec: plan.spec,
    profile: {
      signals: plan.spec.signals.map((s) => ({ name: s.name, kind: driftKindOf(s.source) })),
      baselines: decoded.baselines,
      sketchK: plan.spec.sketchK,
    },
    profileBytes: bytes.length,
    pcaExplained: explained,
    modelTrainDigits: allTrain.sampleCount,
    baselineDigits: train.sampleCount,
    pca: decoded.pca,
    model,
    test,
    cleanOutputs,
    testAccuracy: right / test.sampleCount,
  };
}

function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}
