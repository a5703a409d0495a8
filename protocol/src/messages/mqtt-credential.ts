/**
 * The MQTT password a device presents: a short-lived credential signed with
 * its ed25519 key and bound to its device id and MQTT client id, so a stolen
 * password expires within minutes and cannot be used under another id
 * (THREATS 27, 29). It is a DSSE envelope like every signed thing here.
 */
import { z } from 'zod';
import { FleetError } from '../errors.ts';
import { utf8 } from '../encoding/bytes.ts';
import { canonicalJson, parseJsonBytes } from '../encoding/json.ts';
import { isoTimestampSchema, parseIsoMs } from '../encoding/time.ts';
import {
  keyIdOf,
  parseEnvelope,
  signEnvelope,
  verifyThreshold,
  type Signer,
} from '../crypto/envelope.ts';
import { deviceIdSchema } from '../bundle/manifest.ts';

export const MQTT_CREDENTIAL_PAYLOAD_TYPE = 'application/vnd.fleet.mqtt-credential+json';
/** A credential may live at most this long. */
export const MAX_MQTT_CREDENTIAL_LIFETIME_MS = 15 * 60 * 1000;
/** Clock skew tolerated on `issuedAt`. */
export const MQTT_CREDENTIAL_SKEW_MS = 2 * 60 * 1000;
const MAX_CREDENTIAL_BYTES = 2048;

const credentialSchema = z.strictObject({
  type: z.literal('fleet-mqtt-credential'),
  deviceId: deviceIdSchema,
  clientId: deviceIdSchema,
  issuedAt: isoTimestampSchema,
  expires: isoTimestampSchema,
});

export function signMqttCredential(options: {
  deviceId: string;
  clientId: string;
  nowMs: number;
  lifetimeMs?: number;
  signer: Signer;
}): Uint8Array {
  const payload = credentialSchema.parse({
    type: 'fleet-mqtt-credential',
    deviceId: options.deviceId,
    clientId: options.clientId,
    issuedAt: new Date(options.nowMs).toISOString(),
    expires: new Date(options.nowMs + (options.lifetimeMs ?? 10 * 60 * 1000)).toISOString(),
  });
  return utf8(
    JSON.stringify(
      signEnvelope(MQTT_CREDENTIAL_PAYLOAD_TYPE, canonicalJson(payload), [options.signer]),
    ),
  );
}

/**
 * Checks a presented credential, in order: size and envelope shape, the device's
 * signature, the ids it is bound to, then its time window. Throws FleetError.
 */
export async function verifyMqttCredential(
  password: Uint8Array,
  expected: {
    deviceId: string;
    clientId: string;
    publicKey: Uint8Array;
    nowMs: number;
    /**
     * `keyIdOf(publicKey)` when the caller already holds it (a registry stores
     * it at enrolment): saves one SHA-256 per CONNECT. It must be that digest.
     */
    keyId?: string;
  },
): Promise<void> {
  const envelope = parseEnvelope(password, MAX_CREDENTIAL_BYTES, 'MQTT credential');
  const keyId = expected.keyId ?? (await keyIdOf(expected.publicKey));
  const { payload } = await verifyThreshold(envelope, {
    payloadType: MQTT_CREDENTIAL_PAYLOAD_TYPE,
    keys: new Map([[keyId, expected.publicKey]]),
    roleKeyIds: [keyId],
    threshold: 1,
    role: `device ${expected.deviceId}`,
  });
  const parsed = credentialSchema.safeParse(
    parseJsonBytes(payload, MAX_CREDENTIAL_BYTES, 'MQTT credential'),
  );
  if (!parsed.success)
    throw new FleetError('MALFORMED', `MQTT credential: ${parsed.error.message}`);
  const c = parsed.data;
  if (c.deviceId !== expected.deviceId || c.clientId !== expected.clientId) {
    throw new FleetError(
      'DEVICE_MISMATCH',
      `credential is for ${c.deviceId}/${c.clientId}, not ${expected.deviceId}/${expected.clientId}`,
    );
  }
  const issued = parseIsoMs(c.issuedAt, 'issuedAt');
  const expires = parseIsoMs(c.expires, 'expires');
  if (
    expires - issued > MAX_MQTT_CREDENTIAL_LIFETIME_MS ||
    issued > expected.nowMs + MQTT_CREDENTIAL_SKEW_MS ||
    expires <= expected.nowMs
  ) {
    throw new FleetError(
      'EXPIRED',
      `MQTT credential valid ${c.issuedAt} to ${c.expires} is not valid now`,
    );
  }
}
