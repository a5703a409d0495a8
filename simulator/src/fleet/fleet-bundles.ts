/**
 * Real signed bundles for fleet tests and the demo, made in milliseconds:
 *
 * - a trust root (2-of-3 bundle keys) from the key ceremony;
 * - `v1`: an MNIST classifier with no training run at all: a nearest-class-
 *   mean linear layer (each class's weights are the mean of its training
 *   digits, bias -|mean|^2/2), about 80% accurate on the held-out digits;
 * - `sabotaged`: the same model with its weights zeroed before packing,
 *   validly signed and self-consistent (its golden vectors come from it), so
 *   it passes verification and the self-test and is caught only on probation
 *   (every answer at 10% confidence);
 * - variants for the refusal tests: a lower release, another hardware class.
 *
 * Built through the real bundle factory (quantize, evaluate, golden vectors,
 * drift profile, sign), so they are what `fleet bundle build` would ship.
 * Every bundle carries a drift profile with the factory's default signals,
 * its PCA basis and baselines taken from the first DRIFT_DIGITS of the
 * training digits the class means come from, through the bundle's own int8
 * model. The signal choice and the PCA basis depend only on those digits, so
 * they are made once per kit, on the first build. Measured here: the first
 * build takes 0.34 s longer than without drift, later ones 0.06 s; with all
 * 8,000 digits it was 1.0 s and 0.35 s, for baselines whose sampling error
 * (KS about 0.02 instead of 0.03 at 95%) is far below the drift thresholds
 * (KS 0.1).
 *
 * Every bundle also carries the training part of federated learning
 * (`weights.ftns`, the int8 model's own kernels and scales, and the
 * manifest's `training` field) unless the spec says `training: false`.
 */
import {
  buildBundle,
  buildDenseModel,
  createKeyDirectory,
  createOnnxRunner,
  decodeOnnx,
  encodeOnnx,
  initTrust,
  mnistSplit,
  planDrift,
  type DriftPlan,
  type EvalData,
  type TrainingWeightsEncoding,
} from '@fleet/bundles';
import type { ManifestDrift, Signer } from '@fleet/protocol';

export interface FleetBundleKit {
  rootBytes: Uint8Array;
  signers: Signer[];
  train: EvalData;
  test: EvalData;
  /** Builds a bundle of the class-mean model; `weightScale` 0 sabotages it. */
  build(options: BundleSpec): Promise<Uint8Array>;
  /**
   * Writes the kit's trust root and keys as a key directory (`fleet keys
   * init` layout) at `dir`: what a control plane signing federated
   * candidates reads (`fl.signingKeysDir`).
   */
  writeKeyDirectory(dir: string): Promise<void>;
}

export interface BundleSpec {
  name?: string;
  version: string;
  release: number;
  hardware?: string[];
  weightScale?: number;
  parent?: { version: string; release: number };
  /** Drift settings other than the factory defaults, or false for a bundle without drift. */
  drift?: false | Partial<Pick<ManifestDrift, 'sampleRate' | 'flush' | 'sketchK'>>;
  /** How the training part stores the start weights (default int8), or false for none. */
  training?: false | TrainingWeightsEncoding;
}

const FEATURES = 784;
const CLASSES = 10;
/** Training digits the drift profile describes. */
export const DRIFT_DIGITS = 2000;

/** Class means as a 784x10 weight matrix (TensorFlow.js kernel layout: [in, out]) and biases. */
function classMeanLayer(train: EvalData, scale: number) {
  const sums = new Float64Array(FEATURES * CLASSES);
  const counts = new Float64Array(CLASSES);
  for (let i = 0; i < train.sampleCount; i++) {
    const label = train.labels![i]!;
    counts[label]! += 1;
    for (let f = 0; f < FEATURES; f++)
      sums[f * CLASSES + label]! += train.features[i * FEATURES + f]!;
  }
  const weights = new Float32Array(FEATURES * CLASSES);
  const bias = new Float32Array(CLASSES);
  for (let c = 0; c < CLASSES; c++) {
    let norm = 0;
    for (let f = 0; f < FEATURES; f++) {
      const mean = sums[f * CLASSES + c]! / Math.max(counts[c]!, 1);
      weights[f * CLASSES + c] = mean * scale;
      norm += mean * mean;
    }
    bias[c] = -0.5 * norm * scale;
  }
  return { weights, bias };
}

export async function createFleetBundleKit(): Promise<FleetBundleKit> {
  const { train, test } = await mnistSplit();
  const trust = await initTrust({
    root: { keys: 1, threshold: 1 },
    bundle: { keys: 3, threshold: 2 },
    expires: new Date(Date.now() + 365 * 86_400_000).toISOString(),
  });
  const signers = trust.newKeys
    .filter((k) => k.role === 'bundle')
    .slice(0, 2)
    .map((k) => ({ keyId: k.keyId, secretKey: k.secretKey }));
  const evalData: EvalData = {
    sampleCount: 256,
    featureCount: FEATURES,
    classCount: CLASSES,
    features: test.features.subarray(0, 256 * FEATURES),
    labels: test.labels!.subarray(0, 256),
  };
  const driftData: EvalData = {
    ...train,
    sampleCount: DRIFT_DIGITS,
    features: train.features.subarray(0, DRIFT_DIGITS * FEATURES),
    labels: train.labels!.subarray(0, DRIFT_DIGITS),
  };
  let driftPlan: DriftPlan | undefined;
  const driftInput = (spec: BundleSpec) => {
    if (spec.drift === false) return undefined;
    driftPlan ??= planDrift(driftData);
    const plan = { ...driftPlan, spec: { ...driftPlan.spec, ...spec.drift } };
    return { data: driftData, plan };
  };
  return {
    rootBytes: trust.rootBytes,
    signers,
    train,
    test,
    writeKeyDirectory: (dir) => createKeyDirectory(dir).writeInitial(trust),
    async build(spec) {
      const layer = classMeanLayer(train, spec.weightScale ?? 1);
      const architecture = {
        inputSize: FEATURES,
        softmaxOutput: true,
        layers: [{ units: CLASSES, activation: 'linear' as const, ...layer }],
      };
      const model = buildDenseModel(architecture);
      const weights = spec.training ?? 'int8';
      const now = Date.now();
      const { bundle } = await buildBundle(
        {
          floatModel: encodeOnnx(model),
          evalData,
          signers,
          // A sabotaged model is as (in)accurate in int8 as in float: no budget to break.
          maxAccuracyDropPoints: 100,
          drift: driftInput(spec),
          ...(weights === false ? {} : { training: { architecture, weights } }),
          manifest: {
            name: spec.name ?? 'mnist-classmean',
            version: spec.version,
            release: spec.release,
            hardware: spec.hardware ?? ['sim-cpu'],
            minAgentVersion: '0.1.0',
            issuedAt: new Date(now - 60_000).toISOString(),
            expires: new Date(now + 30 * 86_400_000).toISOString(),
            lineage: {
              producer: { kind: 'manual' },
              ...(spec.parent ? { parent: spec.parent } : {}),
            },
          },
        },
        { decode: decodeOnnx, encode: encodeOnnx, createRunner: createOnnxRunner },
      );
      return bundle;
    },
  };
}
