import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { NOW_MS, testTrust, type TestTrust } from '../__fixtures__/trust.ts';
import { manifestInput } from '../__fixtures__/bundles.ts';
import { isFleetError } from '../errors.ts';
import { inspectBundle, packBundle } from './pack.ts';
import { verifyBundle } from './verify.ts';
import { portableInflate } from './inflate.ts';

let trust: TestTrust;
before(async () => {
  trust = await testTrust();
});

const partName = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,20}$/);
const partBytes = fc.oneof(
  fc.uint8Array({ maxLength: 4096 }),
  // compressible content, so both stored and deflated parts occur
  fc
    .tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 20_000 }))
    .map(([value, length]) => new Uint8Array(length).fill(value)),
);
const parts = fc.uniqueArray(
  fc.record({
    name: partName,
    bytes: partBytes,
    compression: fc.constantFrom<'auto' | 'deflate-raw' | 'none'>('auto', 'deflate-raw', 'none'),
  }),
  { minLength: 1, maxLength: 5, selector: (p) => p.name },
);
const manifestFields = fc.record({
  release: fc.integer({ min: 1, max: 2 ** 40 }),
  version: fc.tuple(fc.nat(99), fc.nat(99), fc.nat(99)).map(([a, b, c]) => `${a}.${b}.${c}`),
  hardware: fc.uniqueArray(fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,10}$/), {
    minLength: 1,
    maxLength: 3,
  }),
});

describe('packBundle', () => {
  it('round trip: any bundle packed verifies and yields the same part bytes', async () => {
    await fc.assert(
      fc.asyncProperty(parts, manifestFields, fc.boolean(), async (ps, fields, portable) => {
        const bundle = await packBundle({
          manifest: manifestInput(fields),
          parts: ps,
          signers: trust.bundleKeys.slice(0, 2),
        });
        const verified = await verifyBundle(bundle, {
          root: trust.root,
          nowMs: NOW_MS,
          installedRelease: fields.release - 1,
          hardwareClass: fields.hardware[0]!,
          ...(portable ? { inflate: portableInflate } : {}),
        });
        assert.deepEqual(
          [...verified.parts.keys()],
          ps.map((p) => p.name),
        );
        for (const p of ps) assert.deepEqual(verified.parts.get(p.name), p.bytes);
        assert.equal(verified.manifest.release, fields.release);
      }),
      { numRuns: 60 },
    );
  });

  it('refuses path-like part names at the source (THREATS 16)', async () => {
    for (const name of ['../x', '/abs', 'dir/file', 'C:\\x', '', '.', '..', 'UPPER']) {
      await assert.rejects(
        packBundle({
          manifest: manifestInput(),
          parts: [{ name, bytes: new Uint8Array(1) }],
          signers: trust.bundleKeys,
        }),
        (e) => isFleetError(e, 'PART_NAME'),
        name,
      );
    }
  });

  it('refuses a manifest the verifier would refuse (bad semver, no hardware)', async () => {
    for (const bad of [{ version: '1.0' }, { hardware: [] }, { release: 0 }]) {
      await assert.rejects(
        packBundle({
          manifest: manifestInput(bad),
          parts: [{ name: 'a', bytes: new Uint8Array(1) }],
          signers: trust.bundleKeys,
        }),
        (e) => isFleetError(e, 'MALFORMED'),
      );
    }
  });

  it('inspectBundle shows the manifest and claimed signers without trusting them', async () => {
    const bundle = await packBundle({
      manifest: manifestInput(),
      parts: [{ name: 'a', bytes: new Uint8Array(10) }],
      signers: trust.bundleKeys.slice(0, 1),
    });
    const seen = inspectBundle(bundle);
    assert.equal((seen.manifest as { name: string }).name, 'mnist-2nn');
    assert.deepEqual(seen.claimedSigners, [trust.bundleKeys[0]!.keyId]);
  });
});
