/**
 * Ed25519 signing and key generation through node:crypto (OpenSSL), for the
 * Node consumers that sign often: every agent signs each state, progress,
 * health and repair message it sends, and tweetnacl (pure JS) takes about
 * 5 ms a signature on this machine against about 0.05 ms here
 * (protocol/README.md, figures). Ed25519 is deterministic (RFC 8032), so the
 * signatures are byte-identical to tweetnacl's; the tests check that.
 *
 * Keys keep tweetnacl's 64-byte secret-key form (seed || public key), so
 * stored identities need no migration.
 */
import {
  createPrivateKey,
  generateKeyPairSync,
  sign as nodeSign,
  type KeyObject,
} from 'node:crypto';
import {
  FleetError,
  SECRET_KEY_BYTES,
  SEED_BYTES,
  type Ed25519KeyPair,
  type Signer,
} from '../src/index.ts';

/** PKCS#8 DER header of an Ed25519 private key; the 32-byte seed follows (RFC 8410). */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

function privateKeyObject(secretKey: Uint8Array): KeyObject {
  if (secretKey.length !== SECRET_KEY_BYTES) {
    throw new FleetError('MALFORMED', 'an ed25519 secret key is 64 bytes');
  }
  const der = Buffer.concat([ED25519_PKCS8_PREFIX, secretKey.subarray(0, SEED_BYTES)]);
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
}

/**
 * The same signer, signing with node:crypto. The key object is built once
 * here, not per signature. The public half is checked against the secret
 * key's: a stored identity whose halves disagree is refused, not used to sign
 * messages no one can verify.
 */
export function nativeSigner(signer: Signer): Signer {
  const key = privateKeyObject(signer.secretKey);
  const publicKey = new Uint8Array(Buffer.from(key.export({ format: 'jwk' }).x ?? '', 'base64url'));
  if (Buffer.compare(publicKey, signer.secretKey.subarray(SEED_BYTES)) !== 0) {
    throw new FleetError('MALFORMED', 'the secret key does not match its public half');
  }
  return {
    keyId: signer.keyId,
    secretKey: signer.secretKey,
    sign: (message) => new Uint8Array(nodeSign(null, message, key)),
  };
}

/** A fresh key pair from OpenSSL's generator, in tweetnacl's form. */
export function generateKeyPairNative(): Ed25519KeyPair {
  const jwk = generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' });
  const seed = Buffer.from(jwk.d ?? '', 'base64url');
  const publicKey = new Uint8Array(Buffer.from(jwk.x ?? '', 'base64url'));
  if (seed.length !== SEED_BYTES || publicKey.length !== SEED_BYTES) {
    throw new FleetError('MALFORMED', 'node:crypto returned an ed25519 key of the wrong size');
  }
  return { publicKey, secretKey: new Uint8Array(Buffer.concat([seed, publicKey])) };
}
