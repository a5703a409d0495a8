import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  IN_A_YEAR,
  NOW_MS,
  rootMetadata,
  testKeys,
  testTrust,
  YESTERDAY,
} from '../__fixtures__/trust.ts';
import { isFleetError } from '../errors.ts';
import { fromUtf8, toBase64, utf8 } from '../encoding/bytes.ts';
import { assertRootFresh, loadTrustedRoot, signRoot, updateRoot, updateRootChain } from './root.ts';

function isCode(code: string) {
  return (e: unknown) => isFleetError(e) && e.code === code;
}

describe('trust root', () => {
  it('loads a root signed by a threshold of its own root keys', async () => {
    const { root } = await testTrust();
    assert.equal(root.metadata.version, 1);
    assert.equal(root.keys.size, 6);
  });

  it('refuses a root below its own root threshold', async () => {
    const rootKeys = await testKeys(0, 3);
    const bundleKeys = await testKeys(10, 3);
    const metadata = rootMetadata({ rootKeys, rootThreshold: 2, bundleKeys, bundleThreshold: 2 });
    const bytes = await signRoot(metadata, [rootKeys[0]!]);
    await assert.rejects(loadTrustedRoot(bytes), isCode('SIGNATURE_THRESHOLD'));
  });

  it('refuses a root whose bundle keys sign in place of its root keys (THREATS 4)', async () => {
    const rootKeys = await testKeys(0, 3);
    const bundleKeys = await testKeys(10, 3);
    const metadata = rootMetadata({ rootKeys, rootThreshold: 2, bundleKeys, bundleThreshold: 2 });
    const bytes = await signRoot(metadata, bundleKeys);
    await assert.rejects(loadTrustedRoot(bytes), isCode('SIGNATURE_THRESHOLD'));
  });

  it('refuses a key listed under an id that is not its SHA-256 (THREATS 3)', async () => {
    const [k] = await testKeys(0, 1);
    const bundleKeys = await testKeys(10, 1);
    const metadata = rootMetadata({
      rootKeys: [k!],
      rootThreshold: 1,
      bundleKeys,
      bundleThreshold: 1,
    });
    const alias = 'a'.repeat(64);
    metadata.keys[alias] = { scheme: 'ed25519', publicKey: toBase64(k!.publicKey) };
    metadata.roles.root = { keyIds: [k!.keyId, alias], threshold: 2 };
    await assert.rejects(signRoot(metadata, [k!]), isCode('MALFORMED'));
  });

  it('refuses a threshold larger than the role', async () => {
    const rootKeys = await testKeys(0, 2);
    const bundleKeys = await testKeys(10, 1);
    const metadata = rootMetadata({ rootKeys, rootThreshold: 3, bundleKeys, bundleThreshold: 1 });
    await assert.rejects(signRoot(metadata, rootKeys), isCode('MALFORMED'));
  });

  it('refuses an edited payload and unknown fields', async () => {
    const { rootBytes } = await testTrust();
    const envelope = JSON.parse(fromUtf8(rootBytes)) as { payload: string; extra?: number };
    envelope.extra = 1;
    await assert.rejects(loadTrustedRoot(utf8(JSON.stringify(envelope))), isCode('MALFORMED'));
  });

  it('reports an expired root as EXPIRED (stale)', async () => {
    const { root } = await testTrust({ expires: YESTERDAY });
    assert.throws(() => assertRootFresh(root, NOW_MS), isCode('EXPIRED'));
  });

  describe('rotation (TUF 5.3)', () => {
    async function nextRoot(signWith: 'both' | 'old' | 'new', version = 2) {
      const trust = await testTrust();
      const newRootKeys = await testKeys(20, 3);
      const metadata = rootMetadata({
        version,
        rootKeys: newRootKeys,
        rootThreshold: 2,
        bundleKeys: await testKeys(30, 3),
        bundleThreshold: 2,
      });
      const signers = {
        both: [trust.rootKeys[0]!, trust.rootKeys[1]!, newRootKeys[0]!, newRootKeys[1]!],
        old: trust.rootKeys,
        new: newRootKeys,
      }[signWith];
      return { trust, newRootKeys, bytes: await signRoot(metadata, signers) };
    }

    it('accepts a new root signed by a threshold of the old and of the new root keys', async () => {
      const { trust, bytes } = await nextRoot('both');
      const next = await updateRoot(trust.root, bytes);
      assert.equal(next.metadata.version, 2);
    });

    it('refuses a new root signed only by the old keys', async () => {
      const { trust, bytes } = await nextRoot('old');
      await assert.rejects(updateRoot(trust.root, bytes), isCode('SIGNATURE_THRESHOLD'));
    });

    it('refuses a new root signed only by the new keys', async () => {
      const { trust, bytes } = await nextRoot('new');
      await assert.rejects(updateRoot(trust.root, bytes), isCode('SIGNATURE_THRESHOLD'));
    });

    it('refuses a version that does not advance, and one that skips', async () => {
      const same = await nextRoot('both', 1);
      await assert.rejects(updateRoot(same.trust.root, same.bytes), isCode('ROLLBACK'));
      const skip = await nextRoot('both', 3);
      await assert.rejects(updateRoot(skip.trust.root, skip.bytes), isCode('ROOT_ROTATION'));
    });

    it('follows a chain v1 -> v2 -> v3 and checks expiry on the final root only', async () => {
      const trust = await testTrust({ expires: YESTERDAY }); // pinned root already expired
      const v2Keys = await testKeys(20, 3);
      const v3Keys = await testKeys(40, 3);
      const bundleKeys = await testKeys(50, 2);
      const v2 = await signRoot(
        rootMetadata({
          version: 2,
          expires: YESTERDAY,
          rootKeys: v2Keys,
          rootThreshold: 2,
          bundleKeys,
          bundleThreshold: 2,
        }),
        [...trust.rootKeys.slice(0, 2), ...v2Keys.slice(0, 2)],
      );
      const v3 = await signRoot(
        rootMetadata({
          version: 3,
          expires: IN_A_YEAR,
          rootKeys: v3Keys,
          rootThreshold: 2,
          bundleKeys,
          bundleThreshold: 2,
        }),
        [...v2Keys.slice(1, 3), ...v3Keys.slice(0, 2)],
      );
      const final = await updateRootChain(trust.root, [v2, v3], NOW_MS);
      assert.equal(final.metadata.version, 3);
      await assert.rejects(updateRootChain(trust.root, [v2], NOW_MS), isCode('EXPIRED'));
      // v3 alone cannot follow v1: it is not signed by v1's keys, and skips a version.
      await assert.rejects(
        updateRootChain(trust.root, [v3], NOW_MS),
        isCode('SIGNATURE_THRESHOLD'),
      );
    });
  });
});
