import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  fromHex,
  isFleetError,
  keyIdOf,
  keyPairFromSeed,
  sign,
  signEnvelope,
  toHex,
  verify,
  verifyThreshold,
} from '../src/index.ts';
import { generateKeyPairNative, nativeSigner } from './ed25519-native.ts';

/** A deterministic byte stream (xorshift32), so failures replay. */
function seededBytes(seed: number): (length: number) => Uint8Array {
  let x = seed >>> 0 || 1;
  return (length) => {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      out[i] = x & 0xff;
    }
    return out;
  };
}

describe('nativeSigner (node:crypto)', () => {
  it('signs RFC 8032 TEST 1 exactly', async () => {
    const pair = keyPairFromSeed(
      fromHex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60'),
    );
    const signer = nativeSigner({
      keyId: await keyIdOf(pair.publicKey),
      secretKey: pair.secretKey,
    });
    assert.equal(
      toHex(signer.sign!(new Uint8Array(0))),
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
    );
  });

  it('gives the same bytes as tweetnacl for 200 seeded keys and messages', async () => {
    const bytes = seededBytes(42);
    for (let i = 0; i < 200; i++) {
      const pair = keyPairFromSeed(bytes(32));
      const message = bytes(i * 7);
      const signer = nativeSigner({ keyId: 'k', secretKey: pair.secretKey });
      const native = signer.sign!(message);
      assert.deepEqual(native, sign(message, pair.secretKey), `key ${i}`);
      assert.equal(await verify(pair.publicKey, message, native), true);
    }
  });

  it('signs envelopes that verify under the threshold rule', async () => {
    const pair = generateKeyPairNative();
    const keyId = await keyIdOf(pair.publicKey);
    const envelope = signEnvelope('application/test', new Uint8Array([1, 2, 3]), [
      nativeSigner({ keyId, secretKey: pair.secretKey }),
    ]);
    const result = await verifyThreshold(envelope, {
      payloadType: 'application/test',
      keys: new Map([[keyId, pair.publicKey]]),
      roleKeyIds: [keyId],
      threshold: 1,
      role: 'test',
    });
    assert.deepEqual(result.signedBy, [keyId]);
  });

  it('refuses a secret key of the wrong length', () => {
    assert.throws(
      () => nativeSigner({ keyId: 'k', secretKey: new Uint8Array(32) }),
      (e) => isFleetError(e, 'MALFORMED'),
    );
  });

  it('refuses a secret key whose public half belongs to another key', () => {
    const a = generateKeyPairNative();
    const b = generateKeyPairNative();
    const mixed = new Uint8Array(64);
    mixed.set(a.secretKey.subarray(0, 32));
    mixed.set(b.publicKey, 32);
    assert.throws(
      () => nativeSigner({ keyId: 'k', secretKey: mixed }),
      (e) => isFleetError(e, 'MALFORMED') && /public half/.test(e.message),
    );
  });
});

describe('generateKeyPairNative', () => {
  it('makes distinct pairs in tweetnacl form (seed then public key)', () => {
    const a = generateKeyPairNative();
    const b = generateKeyPairNative();
    assert.notDeepEqual(a.publicKey, b.publicKey);
    for (const pair of [a, b]) {
      assert.equal(pair.secretKey.length, 64);
      assert.deepEqual(keyPairFromSeed(pair.secretKey.subarray(0, 32)).publicKey, pair.publicKey);
      assert.deepEqual(pair.secretKey.subarray(32), pair.publicKey);
    }
  });
});
