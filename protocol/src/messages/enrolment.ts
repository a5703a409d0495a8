/**
 * Enrolment: how a device becomes known to the control plane. The agent makes
 * its ed25519 key, then sends one request signed with that key (proof that it
 * holds the private half) carrying the operator's single-use enrolment token,
 * the id it asks for, its hardware class and tags.
 *
 * The request is a DSSE envelope (crypto/envelope.ts) over canonical JSON, so
 * the signature covers the exact bytes the control plane parses.
 */
import { z } from 'zod';
import { FleetError } from '../errors.ts';
import { canonicalJson, parseJsonBytes } from '../encoding/json.ts';
import { fromBase64, toBase64, utf8 } from '../encoding/bytes.ts';
import { isoTimestampSchema } from '../encoding/time.ts';
import { PUBLIC_KEY_BYTES } from '../crypto/ed25519.ts';
import {
  keyIdOf,
  parseEnvelope,
  signEnvelope,
  verifyThreshold,
  type Signer,
} from '../crypto/envelope.ts';
import { deviceIdSchema, hardwareClassSchema } from '../bundle/manifest.ts';
import { semverSchema } from './common.ts';

export const ENROLMENT_PAYLOAD_TYPE = 'application/vnd.fleet.enrolment+json';
export const MAX_ENROLMENT_BYTES = 8 * 1024;
/** How far the request's `issuedAt` may be from the control plane's clock. */
export const ENROLMENT_SKEW_MS = 5 * 60 * 1000;
export const MAX_TAGS = 16;

/** Tag keys: lowercase words (`site`, `line.2`); values: short printable words. */
export const tagKeySchema = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,31}$/, 'bad tag key');
export const tagValueSchema = z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/, 'bad tag value');
export const tagsSchema = z
  .record(tagKeySchema, tagValueSchema)
  .refine((tags) => Object.keys(tags).length <= MAX_TAGS, `at most ${MAX_TAGS} tags`);
export type Tags = z.infer<typeof tagsSchema>;

/** Enrolment tokens: `enr_` + 43 base64url characters (32 random bytes). */
export const enrolmentTokenSchema = z
  .string()
  .regex(/^enr_[A-Za-z0-9_-]{43}$/, 'not an enrolment token');

export const enrolmentRequestSchema = z.strictObject({
  type: z.literal('fleet-enrolment'),
  token: enrolmentTokenSchema,
  deviceId: deviceIdSchema,
  /** The device's ed25519 public key, base64; the envelope must be signed by it. */
  publicKey: z.string().max(64),
  hardware: hardwareClassSchema,
  tags: tagsSchema,
  agentVersion: semverSchema,
  issuedAt: isoTimestampSchema,
});
export type EnrolmentRequest = z.infer<typeof enrolmentRequestSchema>;

export interface VerifiedEnrolment {
  request: EnrolmentRequest;
  publicKey: Uint8Array;
}

/** Builds and signs an enrolment request with the device's new key. */
export function signEnrolmentRequest(options: {
  token: string;
  deviceId: string;
  publicKey: Uint8Array;
  hardware: string;
  tags: Tags;
  agentVersion: string;
  nowMs: number;
  signer: Signer;
}): Uint8Array {
  const request = enrolmentRequestSchema.parse({
    type: 'fleet-enrolment',
    token: options.token,
    deviceId: options.deviceId,
    publicKey: toBase64(options.publicKey),
    hardware: options.hardware,
    tags: options.tags,
    agentVersion: options.agentVersion,
    issuedAt: new Date(options.nowMs).toISOString(),
  });
  const envelope = signEnvelope(ENROLMENT_PAYLOAD_TYPE, canonicalJson(request), [options.signer]);
  return utf8(JSON.stringify(envelope));
}

/**
 * Checks an enrolment request, in order: size and envelope shape, the request
 * fields (naming the field that is wrong), the key's length, a valid signature
 * by that key over the exact payload (proof of possession), then the time.
 * The token itself is checked by the control plane against its store.
 */
export async function verifyEnrolmentRequest(
  bytes: Uint8Array,
  nowMs: number,
): Promise<VerifiedEnrolment> {
  const envelope = parseEnvelope(bytes, MAX_ENROLMENT_BYTES, 'enrolment request');
  if (envelope.payloadType !== ENROLMENT_PAYLOAD_TYPE) {
    throw new FleetError('MALFORMED', `enrolment request: payload type ${envelope.payloadType}`);
  }
  const parsed = enrolmentRequestSchema.safeParse(
    parseJsonBytes(fromBase64(envelope.payload), MAX_ENROLMENT_BYTES, 'enrolment request'),
  );
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new FleetError(
      'MALFORMED',
      `enrolment request ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`,
    );
  }
  const request = parsed.data;
  const publicKey = decodePublicKey(request.publicKey);
  const keyId = await keyIdOf(publicKey);
  await verifyThreshold(envelope, {
    payloadType: ENROLMENT_PAYLOAD_TYPE,
    keys: new Map([[keyId, publicKey]]),
    roleKeyIds: [keyId],
    threshold: 1,
    role: `device ${request.deviceId}`,
  });
  const skewMs = Math.abs(Date.parse(request.issuedAt) - nowMs);
  if (skewMs > ENROLMENT_SKEW_MS) {
    throw new FleetError(
      'EXPIRED',
      `enrolment request issued at ${request.issuedAt} is ${Math.round(skewMs / 1000)} s from the control plane's clock`,
    );
  }
  return { request, publicKey };
}

function decodePublicKey(text: string): Uint8Array {
  let key: Uint8Array;
  try {
    key = fromBase64(text);
  } catch (cause) {
    throw new FleetError('MALFORMED', 'enrolment request publicKey: not base64', { cause });
  }
  if (key.length !== PUBLIC_KEY_BYTES) {
    throw new FleetError(
      'MALFORMED',
      `enrolment request publicKey: ${key.length} bytes, an ed25519 key is ${PUBLIC_KEY_BYTES}`,
    );
  }
  return key;
}
