import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isFleetError, loadTrustedRoot, updateRoot } from '@fleet/protocol';
import { initTrust, rotateTrust } from './key-ceremony.ts';

const EXPIRES = '2030-01-01T00:00:00Z';

async function first() {
  const result = await initTrust({
    root: { keys: 3, threshold: 2 },
    bundle: { keys: 2, threshold: 2 },
    expires: EXPIRES,
  });
  return { result, root: await loadTrustedRoot(result.rootBytes) };
}

describe('key ceremonies', () => {
  it('init: a self-signed root v1 with the requested shapes', async () => {
    const { result, root } = await first();
    assert.equal(root.metadata.version, 1);
    assert.equal(root.metadata.roles.root.threshold, 2);
    assert.equal(root.metadata.roles.bundle.keyIds.length, 2);
    assert.equal(result.newKeys.length, 5);
  });

  it('init refuses a threshold above the key count', async () => {
    await assert.rejects(
      initTrust({
        root: { keys: 2, threshold: 3 },
        bundle: { keys: 1, threshold: 1 },
        expires: EXPIRES,
      }),
      (e) => isFleetError(e, 'MALFORMED'),
    );
  });

  it('rotating only the bundle keys keeps the root keys and retires the old bundle keys', async () => {
    const { result, root } = await first();
    const next = await rotateTrust({
      current: root,
      heldKeys: result.newKeys,
      replace: ['bundle'],
      expires: EXPIRES,
    });
    const v2 = await updateRoot(root, next.rootBytes);
    assert.deepEqual(v2.metadata.roles.root, root.metadata.roles.root);
    assert.notDeepEqual(v2.metadata.roles.bundle.keyIds, root.metadata.roles.bundle.keyIds);
    assert.deepEqual(
      next.retiredKeys.map((k) => k.role),
      ['bundle', 'bundle'],
    );
    assert.ok(next.newKeys.every((k) => k.role === 'bundle'));
  });

  it('rotating with a new shape: root 3-of-5', async () => {
    const { result, root } = await first();
    const next = await rotateTrust({
      current: root,
      heldKeys: result.newKeys,
      replace: ['root'],
      shapes: { root: { keys: 5, threshold: 3 } },
      expires: EXPIRES,
    });
    const v2 = await updateRoot(root, next.rootBytes);
    assert.equal(v2.metadata.roles.root.keyIds.length, 5);
    assert.equal(v2.metadata.roles.root.threshold, 3);
  });

  it('refuses to rotate holding fewer than a threshold of the current root keys', async () => {
    const { result, root } = await first();
    const oneRootKey = result.newKeys.filter((k) => k.role === 'root').slice(0, 1);
    await assert.rejects(
      rotateTrust({ current: root, heldKeys: oneRootKey, replace: ['root'], expires: EXPIRES }),
      (e) => isFleetError(e, 'SIGNATURE_THRESHOLD'),
    );
  });
});
