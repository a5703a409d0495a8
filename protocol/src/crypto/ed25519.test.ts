import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import nacl from 'tweetnacl';
import { fromHex, toHex } from '../encoding/bytes.ts';
import { malleate } from '../__fixtures__/refusals.ts';
import {
  hasCanonicalScalar,
  keyPairFromSeed,
  nativeEd25519Available,
  sign,
  verify,
  type Ed25519Backend,
} from './ed25519.ts';

// RFC 8032 §7.1 TEST 1-3.
const RFC8032 = [
  {
    name: 'TEST 1 (empty message)',
    seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    message: '',
    signature:
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    name: 'TEST 2 (one byte)',
    seed: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    publicKey: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    message: '72',
    signature:
      '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
  {
    name: 'TEST 3 (two bytes)',
    seed: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    publicKey: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    message: 'af82',
    signature:
      '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  },
];

const backends: Ed25519Backend[] = ['tweetnacl', 'native'];

describe('ed25519', () => {
  it('the native WebCrypto backend is available on this Node', async () => {
    assert.equal(await nativeEd25519Available(), true);
  });

  for (const v of RFC8032) {
    it(`signs RFC 8032 ${v.name} byte for byte`, () => {
      const pair = keyPairFromSeed(fromHex(v.seed));
      assert.equal(toHex(pair.publicKey), v.publicKey);
      assert.equal(toHex(sign(fromHex(v.message), pair.secretKey)), v.signature);
    });
    for (const backend of backends) {
      it(`verifies RFC 8032 ${v.name} with ${backend}, and refuses a flipped bit`, async () => {
        const pk = fromHex(v.publicKey);
        const sig = fromHex(v.signature);
        assert.equal(await verify(pk, fromHex(v.message), sig, backend), true);
        const bad = sig.slice();
        bad[10]! ^= 1;
        assert.equal(await verify(pk, fromHex(v.message), bad, backend), false);
        assert.equal(await verify(pk, fromHex(v.message + '00'), sig, backend), false);
      });
    }
  }

  // NIST ACVP EDDSA-SigVer-1.0, ED-25519, preHash=false, tcId 1 (pass) and 2 (fail).
  const sigVer = [
    {
      q: '745ea92e8a785dd7bf72f70b3cad17be04f966f33dfb8382aa7856305a61d97a',
      msg: 'db37c7a01f6534e762ecf81f2c27294667215c9ea699808cf8c61efd86475d7036b52ccf09587f5fdb24b676ebafcde708a617886794bf0806d1f89ec50f0b1862e4cff90e32ec7eaac33266a2875df065e30c9260bf5505af3b01f6d729230d8b58fe49a032cb15387748bc996f4408c7cfc8e81d9771602d6f2cd94825f6f3',
      sig: '190295502ca30a54fce82d67ed8f18b89f0b300769bbef8dd42f4ba75260658246916a6191391815111932ce1fdfae705474434d11ea4e8b7db02e8ae47d9b00',
      pass: true,
    },
    {
      q: 'c7204c7c14a49d7d9975ad72d8715505a09b1de1f4d528b32cf86df9d5c66554',
      msg: '148614c89c0f94e39b73cccc2ed89dc30e3adb2595edf05f3d96dec7fd5eca6b34afe018f3da907b1c2d08b373afbed6e6d419b7bc6872f59e07a32d8ab011a4263f7cedaf839728f2988d07e28e66e0c468780f02f0abb09c909c8b028313aa35eb42d990823f5ee31ca867180e853a92a6b09e5b469069190c6fefe27b449a',
      sig: '548e36d06a4d6579348d3e64cc9219ce39cbe8d67540d544274c7141eef77cd90f41495cb236f3fc1ed1c0b6e8c4e330e8411a09b06af3f8cd2aabb8f4cc4cc5',
      pass: false,
    },
  ];
  for (const backend of backends) {
    it(`agrees with NIST ACVP SigVer vectors (${backend})`, async () => {
      for (const v of sigVer) {
        assert.equal(await verify(fromHex(v.q), fromHex(v.msg), fromHex(v.sig), backend), v.pass);
      }
    });
  }

  it('refuses a non-canonical S that raw tweetnacl accepts (THREATS 7)', async () => {
    const pair = keyPairFromSeed(new Uint8Array(32).fill(3));
    const message = new TextEncoder().encode('install model 42');
    const malleated = malleate(sign(message, pair.secretKey));
    assert.equal(nacl.sign.detached.verify(message, malleated, pair.publicKey), true);
    assert.equal(hasCanonicalScalar(malleated), false);
    for (const backend of backends) {
      assert.equal(await verify(pair.publicKey, message, malleated, backend), false);
    }
  });

  it('verifies against the key given each time, whatever keys were imported before', async () => {
    const a = keyPairFromSeed(new Uint8Array(32).fill(5));
    const b = keyPairFromSeed(new Uint8Array(32).fill(6));
    const message = new Uint8Array([9, 9]);
    const byA = sign(message, a.secretKey);
    const publicKey = a.publicKey.slice();
    for (let round = 0; round < 2; round++) {
      assert.equal(await verify(publicKey, message, byA, 'native'), true);
      assert.equal(await verify(b.publicKey, message, byA, 'native'), false);
    }
    publicKey.set(b.publicKey); // the caller's buffer now holds B's key
    assert.equal(await verify(publicKey, message, byA, 'native'), false);
    assert.equal(await verify(publicKey, message, sign(message, b.secretKey), 'native'), true);
    // A key that is not a point fails every time, and is not remembered as one that is.
    const notAPoint = new Uint8Array(32).fill(0xff);
    for (let round = 0; round < 2; round++) {
      assert.equal(await verify(notAPoint, message, byA, 'native'), false);
    }
  });

  it('returns false, never throws, on wrong lengths and non-point keys', async () => {
    const pair = keyPairFromSeed(new Uint8Array(32).fill(4));
    const sig = sign(new Uint8Array([1]), pair.secretKey);
    for (const backend of backends) {
      assert.equal(
        await verify(pair.publicKey.subarray(1), new Uint8Array([1]), sig, backend),
        false,
      );
      assert.equal(
        await verify(pair.publicKey, new Uint8Array([1]), sig.subarray(1), backend),
        false,
      );
      const notAPoint = new Uint8Array(32).fill(0xff);
      assert.equal(await verify(notAPoint, new Uint8Array([1]), sig, backend), false);
    }
  });
});
