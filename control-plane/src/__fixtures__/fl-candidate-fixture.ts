/**
 * Test fixture for the candidate pipeline: a tiny dense classifier (3 inputs,
 * 6 ReLU units, 3 classes) whose "good" weights compute argmax(x) exactly
 * and whose "swapped" weights confuse classes 0 and 1 (about a third right),
 * a labelled eval set for it, a bundle key directory (root 1-of-1, bundle
 * keys 2-of-2), and the signed base bundle built by the factory with its
 * training part.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NamedTensor } from '@fleet/protocol';
import { IN_A_YEAR, NOW_MS } from '@fleet/protocol/testing';
import {
  buildDenseBundle,
  createKeyDirectory,
  createOnnxRunner,
  decodeOnnx,
  denseArchitectureFromTensors,
  encodeEvalData,
  encodeOnnx,
  initTrust,
  type EvalData,
} from '@fleet/bundles';

export const TINY_ARCHITECTURE = {
  kind: 'dense' as const,
  inputSize: 3,
  layers: [
    { units: 6, activation: 'relu' as const },
    { units: 3, activation: 'linear' as const },
  ],
  softmaxOutput: true,
};

/** relu([x, -x]) then h[0:3] - h[3:6] = x: argmax is the class; `swapped` swaps outputs 0 and 1. */
export function tinyWeights(kind: 'good' | 'swapped'): NamedTensor[] {
  const k0 = new Float32Array(3 * 6);
  for (let i = 0; i < 3; i++) {
    k0[i * 6 + i] = 1;
    k0[i * 6 + 3 + i] = -1;
  }
  const k1 = new Float32Array(6 * 3);
  const out = kind === 'good' ? [0, 1, 2] : [1, 0, 2];
  for (let i = 0; i < 3; i++) {
    k1[i * 3 + out[i]!] = 1;
    k1[(3 + i) * 3 + out[i]!] = -1;
  }
  return [
    { name: 'dense_0/kernel', dims: [3, 6], values: k0 },
    { name: 'dense_0/bias', dims: [6], values: new Float32Array(6) },
    { name: 'dense_1/kernel', dims: [6, 3], values: k1 },
    { name: 'dense_1/bias', dims: [3], values: new Float32Array(3) },
  ];
}

/** `n` samples in [-1, 1]^3 labelled by their largest feature (a clear winner), seeded. */
export function tinyEvalData(n = 120, seed = 7): { data: EvalData; bytes: Uint8Array } {
  let state = seed;
  const next = () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return (state / 2147483648) * 2 - 1;
  };
  const features = new Float32Array(n * 3);
  const labels = new Uint8Array(n);
  for (let s = 0; s < n; s++) {
    const label = s % 3;
    for (let f = 0; f < 3; f++) features[s * 3 + f] = next() * 0.4;
    features[s * 3 + label] = 0.6 + Math.abs(next()) * 0.4;
    labels[s] = label;
  }
  const data = { sampleCount: n, featureCount: 3, classCount: 3, features, labels };
  return { data, bytes: encodeEvalData(data) };
}

/** A fresh key directory (`fleet keys init` layout) and its root bytes. */
export async function tinyKeyDirectory(): Promise<{ dir: string; rootBytes: Uint8Array }> {
  const dir = join(await mkdtemp(join(tmpdir(), 'fleet-fl-keys-')), 'keys');
  const trust = await initTrust({
    root: { keys: 1, threshold: 1 },
    bundle: { keys: 2, threshold: 2 },
    expires: IN_A_YEAR,
  });
  await createKeyDirectory(dir).writeInitial(trust);
  return { dir, rootBytes: trust.rootBytes };
}

/** The base bundle `tiny@1.0.0` release 1 with the swapped weights and an int8 training part. */
export async function tinyBaseBundle(keysDir: string): Promise<Uint8Array> {
  const signers = await createKeyDirectory(keysDir).bundleSigners();
  const { bundle } = await buildDenseBundle(
    {
      architecture: denseArchitectureFromTensors(TINY_ARCHITECTURE, tinyWeights('swapped')),
      evalData: tinyEvalData().data,
      manifest: {
        name: 'tiny',
        version: '1.0.0',
        release: 1,
        hardware: ['rpi4'],
        minAgentVersion: '0.1.0',
        issuedAt: new Date(NOW_MS - 3_600_000).toISOString(),
        expires: new Date(NOW_MS + 30 * 86_400_000).toISOString(),
        lineage: { producer: { kind: 'manual' } },
      },
      signers,
      training: { weights: 'int8' },
    },
    { decode: decodeOnnx, encode: encodeOnnx, createRunner: createOnnxRunner },
  );
  return bundle;
}
