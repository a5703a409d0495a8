/**
 * Test fixture: a real, signed bundle of the reference shape (a 784-200-200-10
 * dense MNIST classifier with softmax output, int8-quantized), built by the
 * real bundle factory from seeded random weights and evaluated on real MNIST
 * digits, then verified and unpacked the way the agent does. Tests get the
 * int8 model bytes, the manifest's `io` and the parsed golden vectors.
 *
 * Edge-agent product code may import only @fleet/protocol; this file, used by
 * tests only, also imports the factory (@fleet/bundles, resolvable as a
 * workspace) so the agent is tested on exactly what the factory produces.
 */
import {
  buildBundle,
  buildDenseModel,
  createOnnxRunner,
  decodeOnnx,
  encodeOnnx,
  mnistSplit,
  type DenseLayer,
} from '@fleet/bundles';
import {
  bundleIdOf,
  parseGoldenVectors,
  verifyBundle,
  type BundleModelRef,
  type GoldenVectors,
  type Manifest,
} from '@fleet/protocol';
import { NOW_MS, testTrust } from '@fleet/protocol/testing';
import type { ManifestIo } from '../core/loaded-model.ts';

export interface TestBundle {
  bundleId: string;
  /** The verified bundle as a slot holds it: the signed manifest envelope and the parts. */
  envelopeBytes: Uint8Array;
  parts: ReadonlyMap<string, Uint8Array>;
  manifest: Manifest;
  io: ManifestIo;
  ref: BundleModelRef;
  /** The int8 model.onnx part. */
  modelBytes: Uint8Array;
  golden: GoldenVectors;
  /** A few real MNIST digits (784 floats each) beyond the golden ones. */
  digits: Float32Array;
}

export const MNIST_WIDTH = 784;
export const MNIST_CLASSES = 10;

let cached: Promise<TestBundle> | undefined;
let cachedDrift: Promise<TestBundle> | undefined;

/** The 784-200-200-10 bundle, built once per test process (about a second). */
export function mnistShapedBundle(): Promise<TestBundle> {
  cached ??= build();
  return cached;
}

/**
 * The same model with a drift profile (the factory's default signals over
 * 100 test digits): manifest sample rate 0.1, flushes of at most 8 samples
 * or a minute, release 2. Built once per test process.
 */
export function mnistDriftBundle(): Promise<TestBundle> {
  cachedDrift ??= build({
    release: 2,
    drift: {
      sampleRate: 0.1,
      flush: { maxSamples: 8, maxIntervalMs: 60_000 },
      driftSamples: 100,
    },
  });
  return cachedDrift;
}

interface BuildOptions {
  release?: number;
  drift?: {
    sampleRate: number;
    flush: { maxSamples: number; maxIntervalMs: number };
    driftSamples: number;
  };
}

async function build(options: BuildOptions = {}): Promise<TestBundle> {
  const trust = await testTrust();
  const { test } = await mnistSplit();
  const evalData = {
    ...test,
    sampleCount: 64,
    features: test.features.subarray(0, 64 * MNIST_WIDTH),
    labels: null, // random weights: agreement is reported, the accuracy budget does not apply
  };
  const floatModel = denseModel([MNIST_WIDTH, 200, 200, MNIST_CLASSES], 7);
  const ports = { decode: decodeOnnx, encode: encodeOnnx, createRunner: createOnnxRunner };
  const { bundle } = await buildBundle(
    {
      floatModel,
      evalData,
      manifest: {
        name: 'mnist-2nn',
        version: `1.${(options.release ?? 1) - 1}.0`,
        release: options.release ?? 1,
        hardware: ['sim'],
        minAgentVersion: '0.1.0',
        issuedAt: '2026-11-26T00:00:00Z',
        expires: '2027-11-26T00:00:00Z',
        lineage: { producer: { kind: 'import' } },
      },
      signers: trust.bundleKeys.slice(0, 2),
      ...(options.drift
        ? {
            drift: {
              data: {
                ...test,
                sampleCount: options.drift.driftSamples,
                features: test.features.subarray(
                  200 * MNIST_WIDTH,
                  (200 + options.drift.driftSamples) * MNIST_WIDTH,
                ),
                labels: null,
              },
              sampleRate: options.drift.sampleRate,
              flush: options.drift.flush,
            },
          }
        : {}),
    },
    ports,
  );
  const verified = await verifyBundle(bundle, {
    root: trust.root,
    nowMs: NOW_MS,
    installedRelease: 0,
    hardwareClass: 'sim',
  });
  const { manifest } = verified;
  if (!manifest.io) throw new Error('the factory wrote no io');
  return {
    bundleId: await bundleIdOf(bundle),
    envelopeBytes: verified.envelopeBytes,
    parts: verified.parts,
    manifest,
    io: manifest.io,
    ref: {
      name: manifest.name,
      version: manifest.version,
      release: manifest.release,
      bundleId: await bundleIdOf(bundle),
    },
    modelBytes: verified.parts.get('model.onnx')!,
    golden: parseGoldenVectors(verified.parts.get('golden.json')!),
    digits: test.features.slice(100 * MNIST_WIDTH, 108 * MNIST_WIDTH),
  };
}

/**
 * A float ONNX model of dense layers `sizes` (ReLU between, softmax out) with
 * seeded Glorot-uniform weights.
 */
export function denseModel(sizes: readonly number[], seed: number): Uint8Array {
  const next = xorshift32(seed);
  const layers: DenseLayer[] = [];
  for (let i = 1; i < sizes.length; i++) {
    const fanIn = sizes[i - 1]!;
    const units = sizes[i]!;
    const limit = Math.sqrt(6 / (fanIn + units));
    layers.push({
      units,
      activation: i === sizes.length - 1 ? 'linear' : 'relu',
      weights: Float32Array.from({ length: fanIn * units }, () => (next() * 2 - 1) * limit),
      bias: Float32Array.from({ length: units }, () => (next() * 2 - 1) * 0.1),
    });
  }
  return encodeOnnx(buildDenseModel({ inputSize: sizes[0]!, layers, softmaxOutput: true }));
}

/**
 * The int8 model with the dequantization scales of its last layer multiplied
 * by `factor`: the same file layout and io, different answers, as if the
 * weights had been tampered with after quantization.
 */
export function scaledAfterQuantization(modelBytes: Uint8Array, factor: number): Uint8Array {
  const model = decodeOnnx(modelBytes);
  const scales = model.initializers.filter((t) => t.name.endsWith('/scale'));
  const last = scales[scales.length - 1];
  if (last === undefined) throw new Error('no dequantization scales: is the model int8?');
  last.data = (last.data as Float32Array).map((s) => s * factor);
  return encodeOnnx(model);
}

/** Uniform floats in [0, 1) from a seed: the same numbers every run. */
function xorshift32(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}
