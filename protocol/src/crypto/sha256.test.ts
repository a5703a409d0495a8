/**
 * SHA-256 on both backends: the FIPS 180-2 vectors, agreement on sizes around
 * block boundaries and the synchronous limit, views into larger buffers, and
 * which backend a size gets on Node.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toHex, utf8 } from '../encoding/bytes.ts';
import { sha256, sha256BackendFor, sha256Hex, SYNC_SHA256_MAX_BYTES } from './sha256.ts';

const VECTORS: Array<[string, string]> = [
  ['', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
  ['abc', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
  [
    'abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq',
    '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
  ],
];

describe('sha256', () => {
  it('gives the FIPS 180-2 digests on both backends', async () => {
    for (const [text, digest] of VECTORS) {
      for (const backend of ['node', 'webcrypto'] as const) {
        assert.equal(toHex(await sha256(utf8(text), backend)), digest, `${backend} "${text}"`);
      }
      assert.equal(await sha256Hex(utf8(text)), digest);
    }
  });

  it('both backends agree around block boundaries and the synchronous limit', async () => {
    const sizes = [1, 55, 56, 63, 64, 65, 65_536, SYNC_SHA256_MAX_BYTES, SYNC_SHA256_MAX_BYTES + 1];
    for (const size of sizes) {
      const bytes = Uint8Array.from({ length: size }, (_, i) => (i * 31 + 7) & 0xff);
      const node = await sha256(bytes, 'node');
      assert.ok(node instanceof Uint8Array && !Buffer.isBuffer(node), 'a plain Uint8Array');
      assert.equal(node.length, 32);
      assert.deepEqual(node, await sha256(bytes, 'webcrypto'), `size ${size}`);
      assert.deepEqual(await sha256(bytes), node, `size ${size}, default backend`);
    }
  });

  it('hashes only the view it is given, not the buffer beneath', async () => {
    const buffer = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
    const view = buffer.subarray(100, 200);
    const alone = buffer.slice(100, 200);
    for (const backend of ['node', 'webcrypto'] as const) {
      assert.deepEqual(await sha256(view, backend), await sha256(alone, backend));
    }
  });

  it('on Node, hashes up to the limit synchronously and larger inputs in the thread pool', () => {
    assert.equal(sha256BackendFor(64), 'node');
    assert.equal(sha256BackendFor(SYNC_SHA256_MAX_BYTES), 'node');
    assert.equal(sha256BackendFor(SYNC_SHA256_MAX_BYTES + 1), 'webcrypto');
  });
});
