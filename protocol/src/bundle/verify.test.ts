/**
 * Every refusal the foundation issue and THREATS.md name, each on a bundle that
 * differs from a valid one in exactly one way.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { NOW_MS, testKeys, testTrust, YESTERDAY, type TestTrust } from '../__fixtures__/trust.ts';
import {
  craftBundle,
  deflateSync,
  manifestOf,
  packSample,
  sampleParts,
  storedParts,
} from '../__fixtures__/bundles.ts';
import { isFleetError } from '../errors.ts';
import { concatBytes, fromUtf8, utf8 } from '../encoding/bytes.ts';
import { sha256Hex } from '../crypto/sha256.ts';
import { readContainer, writeContainer, DEFAULT_BUNDLE_LIMITS } from './container.ts';
import { nativeInflate, type BoundedInflate } from './inflate.ts';
import { readPart, verifyBundle, verifyManifestEnvelope, type VerifyOptions } from './verify.ts';
import { assertRejected } from '../__fixtures__/refusals.ts';

let trust: TestTrust;
let good: Uint8Array;

before(async () => {
  trust = await testTrust();
  good = await packSample(trust.bundleKeys.slice(0, 2));
});

/** Options of a fresh rpi4 device with nothing installed, and a spy on decompression. */
function options(overrides: Partial<VerifyOptions> = {}) {
  const spy = { calls: 0 };
  const inflate: BoundedInflate = (data, length) => {
    spy.calls++;
    return nativeInflate(data, length);
  };
  return {
    spy,
    opts: {
      root: trust.root,
      nowMs: NOW_MS,
      installedRelease: 0,
      hardwareClass: 'rpi4',
      inflate,
      ...overrides,
    },
  };
}

/** Asserts `bundle` is refused with `code` and that not one byte was decompressed. */
async function refused(bundle: Uint8Array, code: string, overrides: Partial<VerifyOptions> = {}) {
  const { spy, opts } = options(overrides);
  await assertRejected(verifyBundle(bundle, opts), code);
  return spy;
}

function envelopeOf(bundle: Uint8Array) {
  const { envelopeBytes } = readContainer(bundle, DEFAULT_BUNDLE_LIMITS);
  return JSON.parse(fromUtf8(envelopeBytes)) as {
    payloadType: string;
    payload: string;
    signatures: { keyid: string; sig: string }[];
  };
}

function withEnvelope(bundle: Uint8Array, envelope: unknown): Uint8Array {
  return writeContainer(utf8(JSON.stringify(envelope)), storedParts(bundle));
}

describe('verifyBundle', () => {
  it('accepts a valid bundle and returns every part byte for byte', async () => {
    const { spy, opts } = options();
    const verified = await verifyBundle(good, opts);
    assert.equal(verified.manifest.release, 5);
    assert.equal(verified.signedBy.length, 2);
    for (const part of sampleParts()) assert.deepEqual(verified.parts.get(part.name), part.bytes);
    assert.equal(spy.calls, 1); // model.onnx deflates; golden.json is stored
  });

  describe('authenticity', () => {
    it('bad signature: refused, and nothing is decompressed (THREATS 1)', async () => {
      const envelope = envelopeOf(good);
      for (const s of envelope.signatures) {
        const bytes = Uint8Array.from(atob(s.sig), (c) => c.charCodeAt(0));
        bytes[5]! ^= 0x40;
        s.sig = btoa(String.fromCharCode(...bytes));
      }
      const spy = await refused(withEnvelope(good, envelope), 'SIGNATURE_THRESHOLD');
      assert.equal(spy.calls, 0);
    });

    it('valid signatures over a different manifest (THREATS 6)', async () => {
      const other = await packSample(trust.bundleKeys.slice(0, 2), { release: 6 });
      const envelope = envelopeOf(good);
      envelope.payload = envelopeOf(other).payload;
      const spy = await refused(withEnvelope(good, envelope), 'SIGNATURE_THRESHOLD');
      assert.equal(spy.calls, 0);
    });

    it('an unknown field added to a signed manifest breaks the signature (THREATS 6)', async () => {
      const envelope = envelopeOf(good);
      const manifest = JSON.parse(atob(envelope.payload)) as Record<string, unknown>;
      manifest['extra'] = true;
      envelope.payload = btoa(JSON.stringify(manifest));
      await refused(withEnvelope(good, envelope), 'SIGNATURE_THRESHOLD');
    });

    it('an unknown field that is signed is still refused by the strict schema', async () => {
      const manifest = { ...manifestOf(good), extra: true };
      const bundle = craftBundle(manifest, storedParts(good), trust.bundleKeys.slice(0, 2));
      await refused(bundle, 'MALFORMED');
    });

    it('signatures below the threshold', async () => {
      await refused(await packSample(trust.bundleKeys.slice(0, 1)), 'SIGNATURE_THRESHOLD');
    });

    it('the same key twice toward the threshold (THREATS 3)', async () => {
      const k = trust.bundleKeys[0]!;
      await refused(await packSample([k, k]), 'SIGNATURE_THRESHOLD');
    });

    it('a key of the wrong role: root keys cannot sign bundles (THREATS 4)', async () => {
      await refused(await packSample(trust.rootKeys), 'SIGNATURE_THRESHOLD');
    });

    it('keys the root does not know', async () => {
      await refused(await packSample(await testKeys(90, 2)), 'SIGNATURE_THRESHOLD');
    });
  });

  describe('freshness', () => {
    it('expired bundle (THREATS 10)', async () => {
      await refused(await packSample(trust.bundleKeys, { expires: YESTERDAY }), 'EXPIRED');
    });

    it('expired root (THREATS 10)', async () => {
      const stale = await testTrust({ expires: YESTERDAY });
      const bundle = await packSample(stale.bundleKeys);
      await refused(bundle, 'EXPIRED', { root: stale.root });
    });

    it('release at or below the installed one (THREATS 9)', async () => {
      await refused(good, 'ROLLBACK', { installedRelease: 5 });
      await refused(good, 'ROLLBACK', { installedRelease: 9 });
      const { opts } = options({ installedRelease: 4 });
      assert.equal((await verifyBundle(good, opts)).manifest.release, 5);
    });
  });

  describe('targeting', () => {
    it('wrong hardware class (THREATS 8)', async () => {
      await refused(good, 'WRONG_HARDWARE', { hardwareClass: 'x86-server' });
    });

    it('a bundle addressed to other devices (THREATS 8)', async () => {
      const bundle = await packSample(trust.bundleKeys, { devices: ['dev-a', 'dev-b'] });
      await refused(bundle, 'WRONG_DEVICE', { deviceId: 'dev-c' });
      const { opts } = options({ deviceId: 'dev-b' });
      await verifyBundle(bundle, opts);
    });

    it('a bundle that needs a newer agent', async () => {
      const bundle = await packSample(trust.bundleKeys, { minAgentVersion: '2.0.0' });
      await refused(bundle, 'AGENT_TOO_OLD', { agentVersion: '1.9.9' });
    });

    it('a part too large for the device fails before any download (THREATS 24)', async () => {
      await refused(good, 'PART_TOO_LARGE', { limits: { maxPartBytes: 1000 } });
      await refused(good, 'PART_TOO_LARGE', { limits: { maxTotalUncompressedBytes: 50_010 } });
    });
  });

  describe('parts', () => {
    it('a part whose bytes differ from its hash (THREATS 2)', async () => {
      const bundle = good.slice();
      bundle[bundle.length - 3]! ^= 1; // inside the last (stored) part
      const spy = await refused(bundle, 'PART_HASH');
      assert.equal(spy.calls, 1); // the first part was fine; the bad one never reached inflate
    });

    it('a part whose signed length differs from its bytes (THREATS 2)', async () => {
      const manifest = manifestOf(good);
      manifest.parts[1]!.length += 1;
      manifest.parts[1]!.uncompressedLength += 1;
      const parts = storedParts(good);
      const bundle = craftBundle(
        manifest,
        [parts[0]!, concatBytes(parts[1]!, utf8(' '))],
        trust.bundleKeys,
      );
      await refused(bundle, 'PART_HASH');
    });

    it('a part that inflates short of its signed length', async () => {
      const manifest = manifestOf(good);
      manifest.parts[0]!.uncompressedLength += 1;
      await refused(craftBundle(manifest, storedParts(good), trust.bundleKeys), 'PART_LENGTH');
    });

    it('stored bytes of the wrong length handed to readPart (agent path)', async () => {
      const { envelopeBytes } = readContainer(good, DEFAULT_BUNDLE_LIMITS);
      const { opts } = options();
      const verified = await verifyManifestEnvelope(envelopeBytes, opts);
      const stored = storedParts(good)[0]!;
      await assert.rejects(readPart(verified, 'model.onnx', stored.subarray(1)), (e) =>
        isFleetError(e, 'PART_LENGTH'),
      );
      await assert.rejects(readPart(verified, 'weights.bin', stored), (e) =>
        isFleetError(e, 'MALFORMED'),
      );
    });

    it('a part that inflates past its signed size: a compression bomb (THREATS 15)', async () => {
      const bombBytes = deflateSync(new Uint8Array(32 * 1024 * 1024));
      const manifest = {
        ...manifestOf(good),
        parts: [
          {
            name: 'model.onnx',
            mediaType: 'application/onnx',
            compression: 'deflate-raw',
            length: bombBytes.length,
            sha256: await sha256Hex(bombBytes),
            uncompressedLength: 4096,
            uncompressedSha256: 'a'.repeat(64),
          },
        ],
      };
      const bundle = craftBundle(manifest, [bombBytes], trust.bundleKeys);
      await refused(bundle, 'PART_TOO_LARGE');
    });

    it('a manifest from one bundle with the parts of another (THREATS 12)', async () => {
      const other = await packBundleWithOtherWeights();
      const mixed = writeContainer(
        readContainer(good, DEFAULT_BUNDLE_LIMITS).envelopeBytes,
        storedParts(other),
      );
      await refused(mixed, 'PART_HASH');
    });

    it('path-like part names are refused even when signed (THREATS 16)', async () => {
      for (const name of ['../x', '/etc/passwd', 'a/b', 'C:\\x', '..', '.hidden', 'a\u0000b']) {
        const manifest = manifestOf(good);
        manifest.parts[1]!.name = name;
        await refused(craftBundle(manifest, storedParts(good), trust.bundleKeys), 'PART_NAME');
      }
    });
  });

  describe('framing', () => {
    it('truncated file, at every region (THREATS 17)', async () => {
      const { envelopeBytes } = readContainer(good, DEFAULT_BUNDLE_LIMITS);
      await refused(good.subarray(0, 10), 'TRUNCATED');
      await refused(good.subarray(0, 16 + envelopeBytes.length - 1), 'TRUNCATED');
      await refused(good.subarray(0, good.length - 1), 'TRUNCATED');
    });

    it('trailing garbage after the last part', async () => {
      await refused(concatBytes(good, new Uint8Array([0])), 'TRAILING_DATA');
    });

    it('bad magic, unknown format version, non-zero reserved bytes', async () => {
      for (const [offset, value] of [
        [0, 0x58],
        [8, 2],
        [10, 1],
      ] as const) {
        const bad = good.slice();
        bad[offset] = value;
        await refused(bad, 'MALFORMED');
      }
    });

    it('a bundle or manifest over its cap is refused before parsing (THREATS 14)', async () => {
      await refused(good, 'TOO_LARGE', { limits: { maxBundleBytes: good.length - 1 } });
      await refused(good, 'TOO_LARGE', { limits: { maxManifestBytes: 100 } });
    });

    it('an envelope that is not JSON', async () => {
      const bundle = writeContainer(utf8('{not json'), []);
      await refused(bundle, 'MALFORMED');
    });
  });

  describe('verifyManifestEnvelope + readPart (the agent path)', () => {
    it('verifies the manifest first, then each part as it arrives', async () => {
      const { envelopeBytes } = readContainer(good, DEFAULT_BUNDLE_LIMITS);
      const { opts } = options();
      const verified = await verifyManifestEnvelope(envelopeBytes, opts);
      const parts = storedParts(good);
      assert.deepEqual(await readPart(verified, 'model.onnx', parts[0]!), sampleParts()[0]!.bytes);
    });

    it('readPart refuses a manifest that did not come from verification', async () => {
      const forged = {
        manifest: manifestOf(good),
        manifestBytes: new Uint8Array(),
        envelopeBytes: new Uint8Array(),
        signedBy: [],
      };
      await assert.rejects(
        readPart(forged, 'model.onnx', storedParts(good)[0]!),
        /verifyManifestEnvelope/,
      );
    });
  });
});

async function packBundleWithOtherWeights(): Promise<Uint8Array> {
  const { packBundle } = await import('./pack.ts');
  const { manifestInput } = await import('../__fixtures__/bundles.ts');
  const parts = sampleParts();
  // Same lengths as the sample (the stored golden part changes one digit), so only the hashes differ.
  parts[1] = { ...parts[1]!, bytes: utf8('{"inputs":[[0,1]],"outputs":[[0,1]]}') };
  return packBundle({ manifest: manifestInput(), parts, signers: trust.bundleKeys });
}
