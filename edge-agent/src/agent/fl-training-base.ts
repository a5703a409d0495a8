/**
 * The start weights of a federated round, read again from the committed
 * slot (fl-training.ts's `read-weights` step). The bundle was fully verified
 * at install, but the slot is a file on disk, so nothing in it is trusted
 * twice without a check:
 *
 *   1. the slot holds the base bundle (its marker names the bundle id)
 *   2. its manifest envelope is verified again against the pinned root
 *      (protocol `verifyManifestEnvelope`), as of the manifest's own issue
 *      time like any installed model (update-effects.ts `installedManifest`:
 *      an installed model is judged on its signatures, not on its expiry)
 *   3. the manifest is the round's model (name, version, release)
 *   4. the `training` field, and its weights part checked against the signed
 *      manifest: the slot keeps parts as verified at install, uncompressed,
 *      so they are held to the entry's signed `uncompressedLength` and
 *      `uncompressedSha256` (protocol `readPart` checks stored, compressed
 *      bytes of a bundle file, which the agent no longer keeps)
 *   5. decoded with the architecture's size as the cap, and held to exactly
 *      the architecture's tensors (protocol `checkTrainingWeights`, THREATS 40)
 */
import {
  checkTrainingWeights,
  decodeTensorSet,
  denseParameterCount,
  fromBase64,
  fromUtf8,
  parseEnvelope,
  sha256Hex,
  verifyManifestEnvelope,
  type BundleModelRef,
  type ManifestTraining,
  type NamedTensor,
  type TrustedRoot,
} from '@fleet/protocol';
import type { FlRefusal } from '../core/fl-participation.ts';
import type { SlotStore } from '../core/storage.ts';
import type { InstalledModel } from '../core/update-state.ts';

/** What re-verifying an installed manifest needs. */
export interface ManifestCheck {
  deviceId: string;
  hardware: string;
  agentVersion: string;
  trustRoot: () => TrustedRoot;
  nowMs: () => number;
  slots: SlotStore;
}

export type TrainingBase =
  | { ok: true; training: ManifestTraining; weights: NamedTensor[] }
  | { ok: true; training: undefined; weights: [] }
  | { ok: false; refusal: FlRefusal };

/** The committed bundle's training field and checked start weights; a refusal, never a throw. */
export async function readTrainingBase(
  check: ManifestCheck,
  committed: InstalledModel,
  base: BundleModelRef,
): Promise<TrainingBase> {
  const part = (message: string): TrainingBase => ({
    ok: false,
    refusal: { code: 'training-part', message },
  });
  const contents = await check.slots.read(committed.slot, base.bundleId);
  if (!contents) {
    return {
      ok: false,
      refusal: {
        code: 'base-not-serving',
        message: `slot ${committed.slot} does not hold ${base.bundleId}`,
      },
    };
  }
  let training: ManifestTraining | undefined;
  let weightsBytes: Uint8Array | undefined;
  try {
    const { manifest } = await verifyManifestEnvelope(contents.manifestEnvelope, {
      root: check.trustRoot(),
      nowMs: issuedAtMs(contents.manifestEnvelope) ?? check.nowMs(),
      installedRelease: 0,
      hardwareClass: check.hardware,
      deviceId: check.deviceId,
      agentVersion: check.agentVersion,
    });
    if (
      manifest.name !== base.name ||
      manifest.version !== base.version ||
      manifest.release !== base.release
    ) {
      return {
        ok: false,
        refusal: {
          code: 'base-not-serving',
          message: `slot ${committed.slot} holds ${manifest.name}@${manifest.version} (release ${manifest.release})`,
        },
      };
    }
    training = manifest.training;
    if (!training) return { ok: true, training: undefined, weights: [] };
    const entry = manifest.parts.find((p) => p.name === training!.weightsPart);
    weightsBytes = contents.parts.get(training.weightsPart);
    if (!entry || !weightsBytes) return part(`the slot has no part ${training.weightsPart}`);
    if (
      weightsBytes.length !== entry.uncompressedLength ||
      (await sha256Hex(weightsBytes)) !== entry.uncompressedSha256
    ) {
      return part(`part ${entry.name} does not match its signed length and SHA-256`);
    }
  } catch (error) {
    return part(`the installed manifest does not verify: ${String(error)}`);
  }
  try {
    const { architecture } = training;
    const decoded = decodeTensorSet(weightsBytes, {
      maxTensors: 2 * architecture.layers.length,
      maxElements: denseParameterCount(architecture),
    });
    checkTrainingWeights(architecture, decoded.tensors);
    return { ok: true, training, weights: decoded.tensors };
  } catch (error) {
    return part(`${training.weightsPart}: ${String(error)}`);
  }
}

/** The issue time the (not yet verified) envelope claims; only used as the reference time. */
function issuedAtMs(envelopeBytes: Uint8Array): number | null {
  try {
    const envelope = parseEnvelope(envelopeBytes, 256 * 1024, 'installed manifest envelope');
    const claimed = JSON.parse(fromUtf8(fromBase64(envelope.payload))) as { issuedAt?: unknown };
    const ms = typeof claimed.issuedAt === 'string' ? Date.parse(claimed.issuedAt) : NaN;
    return Number.isFinite(ms) ? ms : null;
  } catch {
    return null; // verification below refuses it
  }
}
