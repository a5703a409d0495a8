/**
 * Packing: parts in, a signed bundle file out. Each part is compressed with
 * fflate's raw deflate (or stored when deflate does not shrink it), hashed
 * before and after, listed in the manifest, and the manifest's canonical JSON
 * bytes are signed. The manifest is checked against the same strict schema the
 * verifier uses, so a bundle that packs is one that can verify.
 */
import { deflateSync } from 'fflate';
import { FleetError } from '../errors.ts';
import { canonicalJson, parseJsonBytes } from '../encoding/json.ts';
import { fromBase64, utf8 } from '../encoding/bytes.ts';
import { parseEnvelope, signEnvelope, type Signer } from '../crypto/envelope.ts';
import { sha256Hex } from '../crypto/sha256.ts';
import { DEFAULT_BUNDLE_LIMITS, readContainer, writeContainer } from './container.ts';
import {
  assertSafePartName,
  MANIFEST_PAYLOAD_TYPE,
  MANIFEST_SCHEMA_VERSION,
  parseManifest,
  type Compression,
  type Manifest,
  type ManifestInput,
  type PartEntry,
} from './manifest.ts';

export interface PartInput {
  name: string;
  bytes: Uint8Array;
  mediaType?: string;
  /** `auto` (default) deflates and keeps the result only when it is smaller. */
  compression?: Compression | 'auto';
}

export interface PackOptions {
  manifest: ManifestInput;
  parts: readonly PartInput[];
  /** Bundle-role keys; a verifier needs at least the root's threshold of them. */
  signers: readonly Signer[];
  /** Deflate level 0-9 (default 6). */
  level?: 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9;
}

/** Builds and signs a bundle file. */
export async function packBundle(options: PackOptions): Promise<Uint8Array> {
  const seen = new Set<string>();
  for (const part of options.parts) {
    assertSafePartName(part.name); // THREATS 16: refuse at the source too
    if (seen.has(part.name)) throw new FleetError('MALFORMED', `part ${part.name} given twice`);
    seen.add(part.name);
  }
  const stored: Uint8Array[] = [];
  const entries: PartEntry[] = [];
  for (const part of options.parts) {
    const { entry, bytes } = await storePart(part, options.level ?? 6);
    entries.push(entry);
    stored.push(bytes);
  }
  const manifest = parseManifest({
    type: 'fleet-bundle',
    schemaVersion: MANIFEST_SCHEMA_VERSION,
    ...options.manifest,
    parts: entries,
  } satisfies Manifest);
  const envelope = signEnvelope(MANIFEST_PAYLOAD_TYPE, canonicalJson(manifest), options.signers);
  return writeContainer(utf8(JSON.stringify(envelope)), stored);
}

async function storePart(
  part: PartInput,
  level: NonNullable<PackOptions['level']>,
): Promise<{ entry: PartEntry; bytes: Uint8Array }> {
  const mode = part.compression ?? 'auto';
  let compression: Compression = 'none';
  let bytes = part.bytes;
  if (mode !== 'none') {
    const deflated = deflateSync(part.bytes, { level });
    if (mode === 'deflate-raw' || deflated.length < part.bytes.length) {
      compression = 'deflate-raw';
      bytes = deflated;
    }
  }
  const entry: PartEntry = {
    name: part.name,
    mediaType: part.mediaType ?? 'application/octet-stream',
    compression,
    length: bytes.length,
    sha256: await sha256Hex(bytes),
    uncompressedLength: part.bytes.length,
    uncompressedSha256: await sha256Hex(part.bytes),
  };
  return { entry, bytes };
}

export interface BundleInspection {
  formatVersion: number;
  sizeBytes: number;
  payloadType: string;
  /** Key ids the envelope claims signed it; nothing here is verified. */
  claimedSigners: string[];
  /** The manifest as JSON, parsed but neither verified nor schema-checked. */
  manifest: unknown;
}

/** Reads a bundle's manifest without trusting it (for `fleet bundle inspect`). */
export function inspectBundle(bundle: Uint8Array): BundleInspection {
  const { formatVersion, envelopeBytes } = readContainer(bundle, DEFAULT_BUNDLE_LIMITS);
  const envelope = parseEnvelope(
    envelopeBytes,
    DEFAULT_BUNDLE_LIMITS.maxManifestBytes,
    'manifest envelope',
  );
  return {
    formatVersion,
    sizeBytes: bundle.length,
    payloadType: envelope.payloadType,
    claimedSigners: envelope.signatures.map((s) => s.keyid),
    manifest: parseJsonBytes(
      fromBase64(envelope.payload),
      DEFAULT_BUNDLE_LIMITS.maxManifestBytes,
      'manifest',
    ),
  };
}
