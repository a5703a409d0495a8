/**
 * The bundle file layout:
 *
 *   offset 0   "FLEETBND"            magic, 8 bytes
 *          8   format version        u8, currently 1
 *          9   reserved              3 zero bytes
 *         12   envelope length       u32 big-endian
 *         16   signed envelope       JSON (DSSE), its payload the manifest
 *          …   part bytes            each part's stored bytes, in manifest order
 *
 * Parts carry no framing of their own: their lengths come from the signed
 * manifest, so the file must end exactly where the last part does.
 */
import { FleetError } from '../errors.ts';
import { bytesEqual, utf8 } from '../encoding/bytes.ts';
import type { Manifest } from './manifest.ts';

export const BUNDLE_MAGIC = utf8('FLEETBND');
export const BUNDLE_FORMAT_VERSION = 1;
export const HEADER_BYTES = 16;

/** Size caps enforced before anything is parsed or decompressed (THREATS 14, 15, 24). */
export interface BundleLimits {
  /** The whole bundle file. */
  maxBundleBytes: number;
  /** The signed envelope holding the manifest. */
  maxManifestBytes: number;
  /** One part after decompression. */
  maxPartBytes: number;
  /** All parts after decompression: what the device must find room for. */
  maxTotalUncompressedBytes: number;
}

export const DEFAULT_BUNDLE_LIMITS: BundleLimits = {
  maxBundleBytes: 512 * 1024 * 1024,
  // Small enough that the envelope fits a deploy command (MAX_CONTROL_MESSAGE_BYTES).
  maxManifestBytes: 40 * 1024,
  maxPartBytes: 256 * 1024 * 1024,
  maxTotalUncompressedBytes: 1024 * 1024 * 1024,
};

export interface ContainerView {
  formatVersion: number;
  envelopeBytes: Uint8Array;
  /** Everything after the envelope: the stored parts, back to back. */
  body: Uint8Array;
}

/** Reads the header and finds the envelope; no signature is checked here. */
export function readContainer(bytes: Uint8Array, limits: BundleLimits): ContainerView {
  if (bytes.length > limits.maxBundleBytes) {
    throw new FleetError(
      'TOO_LARGE',
      `bundle is ${bytes.length} bytes, the cap is ${limits.maxBundleBytes}`,
    );
  }
  if (bytes.length < HEADER_BYTES) {
    throw new FleetError('TRUNCATED', `bundle is ${bytes.length} bytes, shorter than its header`);
  }
  if (!bytesEqual(bytes.subarray(0, BUNDLE_MAGIC.length), BUNDLE_MAGIC)) {
    throw new FleetError('MALFORMED', 'not a Fleet bundle (bad magic bytes)');
  }
  const formatVersion = bytes[8]!;
  if (formatVersion !== BUNDLE_FORMAT_VERSION) {
    throw new FleetError('MALFORMED', `bundle format version ${formatVersion} is not supported`);
  }
  if (bytes[9] !== 0 || bytes[10] !== 0 || bytes[11] !== 0) {
    throw new FleetError('MALFORMED', 'reserved header bytes are not zero');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const envelopeLength = view.getUint32(12, false);
  if (envelopeLength > limits.maxManifestBytes) {
    throw new FleetError(
      'TOO_LARGE',
      `manifest envelope is ${envelopeLength} bytes, the cap is ${limits.maxManifestBytes}`,
    );
  }
  const bodyStart = HEADER_BYTES + envelopeLength;
  if (bodyStart > bytes.length) {
    throw new FleetError('TRUNCATED', 'bundle ends inside its manifest envelope');
  }
  return {
    formatVersion,
    envelopeBytes: bytes.subarray(HEADER_BYTES, bodyStart),
    body: bytes.subarray(bodyStart),
  };
}

/** Cuts the body into the parts the manifest lists; the lengths must add up exactly. */
export function splitParts(manifest: Manifest, body: Uint8Array): Uint8Array[] {
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const entry of manifest.parts) {
    const end = offset + entry.length;
    if (end > body.length) {
      throw new FleetError(
        'TRUNCATED',
        `bundle ends inside part ${entry.name} (${body.length - offset} of ${entry.length} bytes)`,
      );
    }
    parts.push(body.subarray(offset, end));
    offset = end;
  }
  if (offset !== body.length) {
    throw new FleetError(
      'TRAILING_DATA',
      `${body.length - offset} bytes follow the last part the manifest lists`,
    );
  }
  return parts;
}

/** Lays out a bundle file from a serialized envelope and the stored part bytes. */
export function writeContainer(
  envelopeBytes: Uint8Array,
  parts: readonly Uint8Array[],
): Uint8Array {
  let total = HEADER_BYTES + envelopeBytes.length;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  out.set(BUNDLE_MAGIC, 0);
  out[8] = BUNDLE_FORMAT_VERSION;
  new DataView(out.buffer).setUint32(12, envelopeBytes.length, false);
  out.set(envelopeBytes, HEADER_BYTES);
  let offset = HEADER_BYTES + envelopeBytes.length;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
