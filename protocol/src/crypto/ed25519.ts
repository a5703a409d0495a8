/**
 * Ed25519 keys, signing and verification.
 *
 * Signing and key generation use tweetnacl. Verification runs strict RFC 8032
 * checks of our own first (lengths, and S < L, which tweetnacl omits: it accepts
 * S + L as a second valid encoding of the same signature, THREATS 7), then
 * verifies with WebCrypto's native Ed25519 where the platform has it (Node >= 20,
 * current browsers) and with tweetnacl elsewhere. Why not tweetnacl alone: on this
 * machine it takes 8.4 ms per verification against 0.2 ms native, and a bundle
 * check verifies a threshold of signatures (see protocol/README.md, figures).
 * Both backends pass the RFC 8032 vectors and are tested against each other.
 */
import nacl from 'tweetnacl';
import { FleetError } from '../errors.ts';

export const PUBLIC_KEY_BYTES = 32;
export const SECRET_KEY_BYTES = 64;
export const SEED_BYTES = 32;
export const SIGNATURE_BYTES = 64;

export interface Ed25519KeyPair {
  publicKey: Uint8Array;
  /** tweetnacl's 64-byte form: seed followed by public key. */
  secretKey: Uint8Array;
}

export type Ed25519Backend = 'native' | 'tweetnacl';

export function generateKeyPair(): Ed25519KeyPair {
  return nacl.sign.keyPair();
}

export function keyPairFromSeed(seed: Uint8Array): Ed25519KeyPair {
  if (seed.length !== SEED_BYTES) throw new FleetError('MALFORMED', 'an ed25519 seed is 32 bytes');
  return nacl.sign.keyPair.fromSeed(seed);
}

export function sign(message: Uint8Array, secretKey: Uint8Array): Uint8Array {
  if (secretKey.length !== SECRET_KEY_BYTES) {
    throw new FleetError('MALFORMED', 'an ed25519 secret key is 64 bytes');
  }
  return nacl.sign.detached(message, secretKey);
}

// L = 2^252 + 27742317777372353535851937790883648493, little-endian (RFC 8032 §5.1).
const GROUP_ORDER_LE = Uint8Array.from([
  0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
]);

/** RFC 8032 §5.1.7 step 1: the scalar S (second half of the signature) must be below L. */
export function hasCanonicalScalar(signature: Uint8Array): boolean {
  for (let i = 31; i >= 0; i--) {
    const s = signature[32 + i]!;
    const l = GROUP_ORDER_LE[i]!;
    if (s !== l) return s < l;
  }
  return false; // S == L
}

let nativeSupport: Promise<boolean> | undefined;

/** Whether this platform's WebCrypto verifies Ed25519 (probed once, with a real verification). */
export function nativeEd25519Available(): Promise<boolean> {
  nativeSupport ??= probeNative();
  return nativeSupport;
}

async function probeNative(): Promise<boolean> {
  try {
    const pair = keyPairFromSeed(new Uint8Array(SEED_BYTES).fill(7));
    const message = new Uint8Array([1, 2, 3]);
    return await verifyNative(pair.publicKey, message, sign(message, pair.secretKey));
  } catch {
    return false;
  }
}

/**
 * Imported WebCrypto keys, by public key (hex). A control plane verifies many
 * messages from each device and an agent many from the control plane, and
 * importing the key is about a third of a verification's CPU (276 against
 * 174 us per verification on Node 20, measured). A key that fails to import
 * (not a point on the curve) is not kept.
 */
type ImportedKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>;
const importedKeys = new Map<string, Promise<ImportedKey>>();
const IMPORTED_KEYS_MAX = 10_000;

function importedKey(publicKey: Uint8Array): Promise<ImportedKey> {
  let hex = '';
  for (const byte of publicKey) hex += byte.toString(16).padStart(2, '0');
  let key = importedKeys.get(hex);
  if (key) return key;
  key = crypto.subtle.importKey(
    'raw',
    publicKey.slice(), // a copy: the caller's bytes may change later
    { name: 'Ed25519' },
    false,
    ['verify'],
  );
  key.catch(() => importedKeys.delete(hex));
  if (importedKeys.size >= IMPORTED_KEYS_MAX)
    importedKeys.delete(importedKeys.keys().next().value!);
  importedKeys.set(hex, key);
  return key;
}

async function verifyNative(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  const key = await importedKey(publicKey);
  return crypto.subtle.verify(
    { name: 'Ed25519' },
    key,
    signature as Uint8Array<ArrayBuffer>,
    message as Uint8Array<ArrayBuffer>,
  );
}

/**
 * Verifies an Ed25519 signature. Returns false (never throws) for any invalid
 * input: wrong lengths, non-canonical S, a public key that does not decode.
 * `backend` is for tests; callers leave it to pick the fastest available.
 */
export async function verify(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
  backend?: Ed25519Backend,
): Promise<boolean> {
  if (publicKey.length !== PUBLIC_KEY_BYTES || signature.length !== SIGNATURE_BYTES) return false;
  if (!hasCanonicalScalar(signature)) return false;
  const useNative = backend === undefined ? await nativeEd25519Available() : backend === 'native';
  if (!useNative) return nacl.sign.detached.verify(message, signature, publicKey);
  try {
    return await verifyNative(publicKey, message, signature);
  } catch {
    return false; // a public key that is not a point on the curve
  }
}
