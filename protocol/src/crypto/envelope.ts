/**
 * Signed envelopes after DSSE (in-toto / Sigstore): the payload travels as the
 * exact bytes that were signed, and each signature covers
 * PAE(payloadType, payload) = "DSSEv1 <len> <type> <len> <payload>".
 *
 * - Signatures cover the exact received bytes, unknown fields included (THREATS 6):
 *   nothing is re-serialized before it is checked.
 * - The payload type is signed, so a root signature cannot be replayed as a
 *   bundle-manifest signature or a device message (role confusion).
 * - A threshold counts distinct public keys that belong to the role, so one key
 *   signing k times, or listed under two ids, counts once (THREATS 3), and a key
 *   of another role counts for nothing (THREATS 4).
 * - Key ids are the SHA-256 of the raw public key; signature bytes are never ids.
 */
import { z } from 'zod';
import { FleetError } from '../errors.ts';
import { fromBase64, toBase64, toHex, utf8 } from '../encoding/bytes.ts';
import { parseJsonBytes } from '../encoding/json.ts';
import { sha256Hex } from './sha256.ts';
import { sign, verify } from './ed25519.ts';

/** The most signatures one envelope may carry; more is refused before any is checked. */
export const MAX_SIGNATURES = 16;

export const keyIdSchema = z.string().regex(/^[0-9a-f]{64}$/, 'a key id is 64 lowercase hex');

export const signedEnvelopeSchema = z.strictObject({
  payloadType: z.string().min(1).max(128),
  // base64; the caller's byte cap applies first when parsing bytes, this when handed an object
  payload: z.string().max(512 * 1024),
  signatures: z
    .array(z.strictObject({ keyid: keyIdSchema, sig: z.string().max(128) }))
    .max(MAX_SIGNATURES),
});

export type SignedEnvelope = z.infer<typeof signedEnvelopeSchema>;

/**
 * A private key able to sign, with the id of its public half. `sign`, when
 * present, is used instead of tweetnacl over `secretKey`: a faster native
 * backend (`nativeSigner` in `@fleet/protocol/node`), or later a key held in a
 * secure element. Ed25519 is deterministic, so both give the same bytes.
 */
export interface Signer {
  keyId: string;
  secretKey: Uint8Array;
  sign?: (message: Uint8Array) => Uint8Array;
}

/** Public keys by key id, as a trust root lists them. */
export type PublicKeys = ReadonlyMap<string, Uint8Array>;

/** The key id of an ed25519 public key: hex SHA-256 of its 32 raw bytes. */
export function keyIdOf(publicKey: Uint8Array): Promise<string> {
  return sha256Hex(publicKey);
}

/** DSSE pre-authentication encoding. */
export function preAuthEncoding(payloadType: string, payload: Uint8Array): Uint8Array {
  const type = utf8(payloadType);
  const header = utf8(`DSSEv1 ${type.length} ${payloadType} ${payload.length} `);
  const out = new Uint8Array(header.length + payload.length);
  out.set(header);
  out.set(payload, header.length);
  return out;
}

/** Signs `payload` with every signer; at least one is required. */
export function signEnvelope(
  payloadType: string,
  payload: Uint8Array,
  signers: readonly Signer[],
): SignedEnvelope {
  if (signers.length === 0) throw new FleetError('SIGNATURE_THRESHOLD', 'no signing keys given');
  const message = preAuthEncoding(payloadType, payload);
  return {
    payloadType,
    payload: toBase64(payload),
    signatures: signers.map((s) => ({
      keyid: s.keyId,
      sig: toBase64(s.sign ? s.sign(message) : sign(message, s.secretKey)),
    })),
  };
}

/** Parses envelope JSON bytes (no more than `maxBytes`) without checking any signature. */
export function parseEnvelope(bytes: Uint8Array, maxBytes: number, what: string): SignedEnvelope {
  const json = parseJsonBytes(bytes, maxBytes, what);
  const parsed = signedEnvelopeSchema.safeParse(json);
  if (!parsed.success) {
    throw new FleetError('MALFORMED', `${what} is not a signed envelope: ${parsed.error.message}`);
  }
  return parsed.data;
}

export interface ThresholdRule {
  /** The payload type the caller expects; any other is refused. */
  payloadType: string;
  /** Every public key the verifier knows, by id. */
  keys: PublicKeys;
  /** Ids of the keys of the role that must sign. */
  roleKeyIds: readonly string[];
  threshold: number;
  /** Names the role in errors, e.g. "bundle" or "root v3". */
  role: string;
}

export interface ThresholdResult {
  /** The signed payload bytes, exactly as received. */
  payload: Uint8Array;
  /** Ids of the role keys whose signatures verified (distinct public keys). */
  signedBy: string[];
}

/**
 * Checks that `envelope` carries valid signatures from at least `threshold`
 * distinct public keys of the role, and returns the payload bytes. Invalid
 * signatures and keys outside the role are ignored, not fatal: they simply do
 * not count (TUF 5.3.4 / 5.4.2).
 */
export async function verifyThreshold(
  envelope: SignedEnvelope,
  rule: ThresholdRule,
): Promise<ThresholdResult> {
  if (envelope.payloadType !== rule.payloadType) {
    throw new FleetError(
      'MALFORMED',
      `payload type is "${envelope.payloadType}", expected "${rule.payloadType}"`,
    );
  }
  if (!Number.isInteger(rule.threshold) || rule.threshold < 1) {
    throw new FleetError('SIGNATURE_THRESHOLD', `role ${rule.role} has no usable threshold`);
  }
  const payload = fromBase64(envelope.payload);
  const message = preAuthEncoding(envelope.payloadType, payload);
  const roleKeyIds = new Set(rule.roleKeyIds);
  const countedPublicKeys = new Set<string>();
  const signedBy: string[] = [];
  for (const { keyid, sig } of envelope.signatures) {
    if (!roleKeyIds.has(keyid)) continue; // THREATS 4: another role's key does not count
    const publicKey = rule.keys.get(keyid);
    if (publicKey === undefined) continue;
    const publicKeyHex = toHex(publicKey);
    if (countedPublicKeys.has(publicKeyHex)) continue; // THREATS 3: a key counts once
    let signature: Uint8Array;
    try {
      signature = fromBase64(sig);
    } catch {
      continue;
    }
    if (!(await verify(publicKey, message, signature))) continue;
    countedPublicKeys.add(publicKeyHex);
    signedBy.push(keyid);
  }
  if (signedBy.length < rule.threshold) {
    throw new FleetError(
      'SIGNATURE_THRESHOLD',
      `${signedBy.length} valid signature(s) from distinct ${rule.role} keys, ${rule.threshold} required`,
    );
  }
  return { payload, signedBy };
}
