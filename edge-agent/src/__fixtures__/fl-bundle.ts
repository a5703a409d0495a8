/**
 * Test fixture: a small signed bundle a device can train a federated round
 * from, built with protocol's `packBundle` alone (no ONNX, not the bundle
 * factory): a `training` field naming a dense architecture and a
 * `weights.ftns` part with seeded start weights (int8 per channel, as the
 * factory ships them by default, or float32), verified the way the agent
 * installs a bundle; labelled samples of a seeded, learnable problem; and the
 * `fl-train` command of a round.
 */
import {
  bundleIdOf,
  encodeTensorSet,
  packBundle,
  verifyBundle,
  type BundleModelRef,
  type FlTrainConfig,
  type FlTrainMessage,
  type Manifest,
  type ManifestTraining,
} from '@fleet/protocol';
import { IN_A_YEAR, NOW_MS, testTrust, type TestTrust } from '@fleet/protocol/testing';
import { randomWeights, uniform } from '../core/training/__fixtures__/toy-problem.ts';
import type { LabelledSample } from '../core/labelled-samples.ts';
import type { DenseArchitecture } from '../core/training/types.ts';

export const FL_HARDWARE = 'sim';

export interface FlBundle {
  bundleId: string;
  envelopeBytes: Uint8Array;
  /** The verified, uncompressed parts, as a slot holds them. */
  parts: ReadonlyMap<string, Uint8Array>;
  manifest: Manifest;
  ref: BundleModelRef;
  architecture: DenseArchitecture;
  trust: TestTrust;
}

export interface FlBundleOptions {
  inputSize?: number;
  hidden?: number;
  classes?: number;
  /** Float32 start weights (`--float-weights`); int8 per channel by default. */
  floatWeights?: boolean;
  /** Leave the `training` field (and the weights part) out. */
  noTraining?: boolean;
  release?: number;
}

/** A signed bundle of an `inputSize`-`hidden`-`classes` dense classifier (8-16-3 by default). */
export async function flBundle(options: FlBundleOptions = {}): Promise<FlBundle> {
  const trust = await testTrust();
  const architecture: DenseArchitecture = {
    inputSize: options.inputSize ?? 8,
    layers: [
      { units: options.hidden ?? 16, activation: 'relu' },
      { units: options.classes ?? 3, activation: 'linear' },
    ],
    softmaxOutput: true,
  };
  const training: ManifestTraining = {
    architecture: { kind: 'dense', ...architecture },
    weightsPart: 'weights.ftns',
  };
  const weights = encodeTensorSet(
    randomWeights(architecture, 11),
    options.floatWeights ? { encoding: 'float32' } : { encoding: 'int8', scales: 'channel' },
  );
  const release = options.release ?? 3;
  const bytes = await packBundle({
    manifest: {
      name: 'fl-toy',
      version: `1.${release}.0`,
      release,
      hardware: [FL_HARDWARE],
      minAgentVersion: '0.1.0',
      issuedAt: new Date(NOW_MS - 3_600_000).toISOString(),
      expires: IN_A_YEAR,
      lineage: { producer: { kind: 'manual' } },
      ...(options.noTraining ? {} : { training }),
    },
    parts: [
      { name: 'model.onnx', bytes: new Uint8Array(64).fill(7) },
      ...(options.noTraining ? [] : [{ name: 'weights.ftns', bytes: weights }]),
    ],
    signers: trust.bundleKeys.slice(0, 2),
  });
  const verified = await verifyBundle(bytes, {
    root: trust.root,
    nowMs: NOW_MS,
    installedRelease: 0,
    hardwareClass: FL_HARDWARE,
  });
  const bundleId = await bundleIdOf(bytes);
  const { manifest } = verified;
  return {
    bundleId,
    envelopeBytes: verified.envelopeBytes,
    parts: verified.parts,
    manifest,
    ref: { name: manifest.name, version: manifest.version, release: manifest.release, bundleId },
    architecture,
    trust,
  };
}

/**
 * `count` labelled rows of width `inputSize`: class k has feature k (mod the
 * width) raised by 2, plus seeded noise, so a small net learns it.
 */
export function flSamples(
  count: number,
  inputSize: number,
  classes: number,
  model: BundleModelRef,
  seed = 5,
): LabelledSample[] {
  const u = uniform(seed);
  return Array.from({ length: count }, (_, i) => {
    const label = i % classes;
    const features = Float32Array.from({ length: inputSize }, () => (u() - 0.5) * 0.5);
    features[label % inputSize]! += 2;
    const { name, version, release } = model;
    return {
      features,
      label,
      model: { name, version, release },
      inferenceTs: NOW_MS - 60_000 + i,
      labelTs: NOW_MS - 30_000 + i,
    };
  });
}

/** The round's config: 2 epochs, B=8, lr 0.1, clip 5, 10-200 samples, int8, seed 42. */
export function flConfig(overrides: Partial<FlTrainConfig> = {}): FlTrainConfig {
  return {
    epochs: 2,
    batchSize: 8,
    learningRate: 0.1,
    proxMu: 0,
    clipNorm: 5,
    minSamples: 10,
    maxSamples: 200,
    encoding: 'int8',
    seed: 42,
    ...overrides,
  };
}

/** An `fl-train` command for `model`, deadline 5 minutes after NOW_MS. */
export function flTrainCommand(
  model: BundleModelRef,
  overrides: Partial<Omit<FlTrainMessage, 'config'>> & { config?: Partial<FlTrainConfig> } = {},
): FlTrainMessage {
  const { config, ...rest } = overrides;
  return {
    type: 'fl-train',
    id: 'cmd-fl-0001',
    schemaVersion: 1,
    ts: new Date(NOW_MS).toISOString(),
    roundId: 'round-0001',
    model,
    deadline: new Date(NOW_MS + 5 * 60_000).toISOString(),
    ...rest,
    config: flConfig(config),
  };
}
