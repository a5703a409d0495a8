/**
 * The byte-level steps of the candidate pipeline (services/fl-candidates.ts):
 * reading parts of a registered bundle, the int8 model the factory would ship
 * for some float weights, accuracy in onnxruntime, and the bundle keys
 * candidates are signed with.
 */
import {
  DEFAULT_BUNDLE_LIMITS,
  FleetError,
  inspectBundle,
  parseManifest,
  readContainer,
  sha256Hex,
  splitParts,
  type Manifest,
  type Signer,
} from '@fleet/protocol';
import { nodeInflate } from '@fleet/protocol/node';
import {
  buildDenseModel,
  classifierAccuracy,
  createKeyDirectory,
  createOnnxRunner,
  decodeOnnx,
  encodeOnnx,
  quantizeWeights,
  type DenseArchitecture,
  type EvalData,
} from '@fleet/bundles';
import { controlPlaneError } from '../core/errors.ts';
import type { BlobStore } from '../core/models/blob-store.ts';

/** The factory's ports (the same onnx codec and runtime `fleet bundle build` uses). */
export const BUILD_PORTS = {
  decode: decodeOnnx,
  encode: encodeOnnx,
  createRunner: createOnnxRunner,
};

/**
 * The int8 model bytes the factory ships for these float weights: the same
 * steps as `buildDenseBundle` (build, encode, decode, quantize, encode).
 */
export function shippedInt8(architecture: DenseArchitecture): Uint8Array {
  const float = decodeOnnx(encodeOnnx(buildDenseModel(architecture)));
  return encodeOnnx(quantizeWeights(float).model);
}

/** Top-1 accuracy of the model bytes on labelled data, in onnxruntime. */
export async function accuracyOf(model: Uint8Array, data: EvalData): Promise<number> {
  const runner = await createOnnxRunner(model);
  try {
    return await classifierAccuracy(runner, data);
  } finally {
    await runner.close();
  }
}

/** The SHA-256 a (just built, unverified) bundle's manifest signs for its model.onnx. */
export function shippedModelSha256(bundle: Uint8Array): string | null {
  const manifest = parseManifest(inspectBundle(bundle).manifest);
  return manifest.parts.find((p) => p.name === 'model.onnx')?.uncompressedSha256 ?? null;
}

/**
 * The bundle signers of the key directory `dir`. Throws FL_NO_SIGNING_KEYS
 * when none is configured, it holds no readable root, or no bundle key.
 */
export async function bundleSigners(dir: string | undefined): Promise<Signer[]> {
  const missing = (why: string, cause?: unknown) =>
    new FleetError(
      'FL_NO_SIGNING_KEYS',
      `federated candidates cannot be signed: ${why} (set fl.signingKeysDir to a bundle key directory)`,
      { cause },
    );
  if (!dir) throw missing('no signing key directory is configured');
  let keys: Signer[];
  try {
    keys = await createKeyDirectory(dir).bundleSigners();
  } catch (cause) {
    throw missing(`${dir} holds no readable trust root and keys`, cause);
  }
  if (keys.length === 0) throw missing(`${dir} holds no bundle keys`);
  return keys;
}

/**
 * Uncompressed parts `names` of a registered bundle. Its stored bytes must
 * hash to `bundleId`, which covers every byte the upload verified; parts are
 * inflated at most to their signed length.
 */
export async function readParts(
  blobs: BlobStore,
  bundleId: string,
  manifest: Manifest,
  names: readonly string[],
): Promise<Map<string, Uint8Array>> {
  const bundle = await blobs.get(bundleId);
  if (!bundle)
    throw controlPlaneError('NOT_FOUND', `bundle ${bundleId} is registered but not stored`);
  if ((await sha256Hex(bundle)) !== bundleId) {
    throw new FleetError('PART_HASH', `the stored bundle ${bundleId} does not hash to its id`);
  }
  const { body } = readContainer(bundle, {
    ...DEFAULT_BUNDLE_LIMITS,
    maxBundleBytes: bundle.length,
  });
  const stored = splitParts(manifest, body);
  const parts = new Map<string, Uint8Array>();
  for (const name of names) {
    const index = manifest.parts.findIndex((p) => p.name === name);
    if (index < 0) {
      throw controlPlaneError(
        'INVALID_REQUEST',
        `bundle ${manifest.name}@${manifest.version} has no part ${name}`,
      );
    }
    const entry = manifest.parts[index]!;
    const data = stored[index]!;
    parts.set(
      name,
      entry.compression === 'none' ? data : await nodeInflate(data, entry.uncompressedLength),
    );
  }
  return parts;
}
