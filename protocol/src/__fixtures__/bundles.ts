/**
 * Test fixtures: a valid manifest input and helpers to pack, re-sign and
 * tamper with bundles at the byte level.
 */
import { deflateSync } from 'fflate';
import { canonicalJson } from '../encoding/json.ts';
import { utf8 } from '../encoding/bytes.ts';
import { signEnvelope, type Signer } from '../crypto/envelope.ts';
import { readContainer, writeContainer, DEFAULT_BUNDLE_LIMITS } from '../bundle/container.ts';
import { MANIFEST_PAYLOAD_TYPE, type Manifest, type ManifestInput } from '../bundle/manifest.ts';
import { inspectBundle, packBundle, type PartInput } from '../bundle/pack.ts';
import { IN_A_YEAR } from './trust.ts';

export function manifestInput(overrides: Partial<ManifestInput> = {}): ManifestInput {
  return {
    name: 'mnist-2nn',
    version: '1.2.0',
    release: 5,
    hardware: ['rpi4', 'jetson-nano'],
    minAgentVersion: '0.1.0',
    issuedAt: '2026-11-26T00:00:00Z',
    expires: IN_A_YEAR,
    lineage: { producer: { kind: 'manual' } },
    ...overrides,
  };
}

export function sampleParts(): PartInput[] {
  const weights = new Uint8Array(50_000);
  for (let i = 0; i < weights.length; i++) weights[i] = (i * 31 + (i >> 7)) & 0xff;
  return [
    { name: 'model.onnx', bytes: weights, mediaType: 'application/onnx' },
    {
      name: 'golden.json',
      bytes: utf8('{"inputs":[[0,1]],"outputs":[[1,0]]}'),
      compression: 'none',
    },
  ];
}

export function packSample(signers: Signer[], overrides: Partial<ManifestInput> = {}) {
  return packBundle({ manifest: manifestInput(overrides), parts: sampleParts(), signers });
}

/** The manifest a bundle claims, unverified. */
export function manifestOf(bundle: Uint8Array): Manifest {
  return inspectBundle(bundle).manifest as Manifest;
}

/** Stored part bytes of a bundle, in order. */
export function storedParts(bundle: Uint8Array): Uint8Array[] {
  const { body } = readContainer(bundle, DEFAULT_BUNDLE_LIMITS);
  const out: Uint8Array[] = [];
  let offset = 0;
  for (const p of manifestOf(bundle).parts) {
    out.push(body.subarray(offset, offset + p.length));
    offset += p.length;
  }
  return out;
}

/** Signs an arbitrary manifest object (legit keys, crafted content) and lays out a file. */
export function craftBundle(manifest: unknown, parts: Uint8Array[], signers: Signer[]): Uint8Array {
  const envelope = signEnvelope(MANIFEST_PAYLOAD_TYPE, canonicalJson(manifest), signers);
  return writeContainer(utf8(JSON.stringify(envelope)), parts);
}

export { deflateSync };
