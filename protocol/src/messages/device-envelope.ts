/**
 * Device-signed messages (ARCHITECTURE "The wire"): an agent signs each message
 * it sends with its own ed25519 key, in the DSSE envelope of crypto/envelope.ts,
 * over `canonicalJson({ deviceId, message })`. Binding the device id into the
 * signed bytes means a message is worth nothing on another device's topic, and
 * the control plane can trust it even behind a broker it does not run.
 *
 * What this does not do: de-duplicate (`id`) or judge freshness (`ts`); the
 * receiver does both after verification (THREATS 13, 23).
 */
import { z } from 'zod';
import { FleetError, isFleetError } from '../errors.ts';
import { parseJsonBytes, canonicalJson } from '../encoding/json.ts';
import { deviceIdSchema } from '../bundle/manifest.ts';
import {
  keyIdOf,
  parseEnvelope,
  signEnvelope,
  signedEnvelopeSchema,
  verifyThreshold,
  type SignedEnvelope,
  type Signer,
} from '../crypto/envelope.ts';
import { deviceMessageSchema, type DeviceMessage } from './device-messages.ts';
import { MAX_DEVICE_MESSAGE_BYTES, maxDeviceMessageBytes, validateMessage } from './parse.ts';

/** The DSSE payload type of device messages (signed, so no other signed document can pose as one). */
export const DEVICE_MESSAGE_PAYLOAD_TYPE = 'application/vnd.fleet.device-message+json';

/** Message types that name a `deviceId`, which must be the device they are signed for. */
const DEVICE_NAMING_TYPES: ReadonlySet<string> = new Set([
  'state',
  'drift',
  'fl-update',
  'fl-update-part',
]);

/** The device a message speaks for, when its type names one. */
function namedDevice(message: DeviceMessage): string | undefined {
  return DEVICE_NAMING_TYPES.has(message.type) && 'deviceId' in message
    ? message.deviceId
    : undefined;
}

/** The signed payload: the message and the device it is bound to. */
const signedDeviceMessageSchema = z.strictObject({
  deviceId: deviceIdSchema,
  message: z.unknown(),
});

export interface SignDeviceMessageOptions {
  /** The signing device's id: the `{id}` of the topic it publishes under. */
  deviceId: string;
  message: DeviceMessage;
  /** The device's own key. */
  signer: Signer;
}

/**
 * Signs a device message, bound to `deviceId`. The message is validated first,
 * so a device never signs what the control plane would refuse.
 *
 * @example
 *   const envelope = signDeviceMessage({ deviceId: 'dev-7', message: health, signer });
 *   publish(deviceTopic('dev-7', 'telemetry'), JSON.stringify(envelope));
 */
export function signDeviceMessage(options: SignDeviceMessageOptions): SignedEnvelope {
  const { deviceId, signer } = options;
  if (!deviceIdSchema.safeParse(deviceId).success) {
    throw new FleetError(
      'MALFORMED',
      `invalid device id ${JSON.stringify(String(deviceId).slice(0, 80))}`,
    );
  }
  const message = validateMessage(deviceMessageSchema, options.message, 'device message');
  const named = namedDevice(message);
  if (named !== undefined && named !== deviceId) {
    throw new FleetError(
      'DEVICE_MISMATCH',
      `${message.type} message names device ${named} but is signed as ${deviceId}`,
    );
  }
  // No size check: the schemas bound every field, and the largest possible
  // device message of each type signs to under its cap (maxDeviceMessageBytes; tested).
  const payload = canonicalJson({ deviceId, message });
  return signEnvelope(DEVICE_MESSAGE_PAYLOAD_TYPE, payload, [signer]);
}

export interface VerifyDeviceMessageOptions {
  /**
   * The device the message must come from: the `{id}` of the topic it arrived
   * on, never a field of the message itself.
   */
  expectedDeviceId: string;
  /** That device's enrolled ed25519 public key. */
  publicKey: Uint8Array;
  /**
   * `keyIdOf(publicKey)` when the caller already holds it (a registry stores
   * it at enrolment): saves one SHA-256 per message, 6% of a control plane's
   * CPU in a 1,000-device rollout. It must be that digest.
   */
  keyId?: string;
}

/**
 * Verifies a device-signed message and returns it. `input` is the envelope as
 * received: JSON bytes (an MQTT payload) or an already parsed object.
 *
 * Steps, in order; the first failure throws and nothing is parsed as a
 * message before the signature holds:
 *
 *   1. size cap          bytes within MAX_DEVICE_MESSAGE_BYTES, the largest message
 *                        type's cap (TOO_LARGE; THREATS 14, 31)
 *   2. envelope schema   strict DSSE envelope, payload within the cap (MALFORMED, TOO_LARGE)
 *   3. signature         payload type, then a valid signature by `publicKey` over
 *                        the exact payload bytes (MALFORMED, BAD_SIGNATURE; THREATS 6, 7)
 *   4. payload JSON      `{ deviceId, message }`, strict (MALFORMED)
 *   5. device binding    `deviceId` is `expectedDeviceId`: a valid message of device
 *                        A is refused as device B's (DEVICE_MISMATCH; THREATS 28)
 *   6. message schema    `deviceMessageSchema` (MALFORMED naming the field; THREATS 40),
 *                        then the cap of its type: MAX_CONTROL_MESSAGE_BYTES, a drift
 *                        report MAX_DRIFT_MESSAGE_BYTES, an fl-update-part
 *                        MAX_FL_PART_MESSAGE_BYTES (TOO_LARGE)
 *   7. identity          a `state`, `drift`, `fl-update` or `fl-update-part` message
 *                        names the same device (DEVICE_MISMATCH; THREATS 39)
 */
export async function verifyDeviceMessage(
  input: unknown,
  options: VerifyDeviceMessageOptions,
): Promise<DeviceMessage> {
  const { expectedDeviceId, publicKey } = options;
  const what = `device message for ${JSON.stringify(expectedDeviceId.slice(0, 64))}`;

  // 1. size cap, and 2. envelope schema. Bytes are capped before JSON.parse;
  // an object was parsed by someone else, so its payload is capped instead.
  const envelope =
    input instanceof Uint8Array
      ? parseEnvelope(input, MAX_DEVICE_MESSAGE_BYTES, what)
      : validateMessage(signedEnvelopeSchema, input, `${what}: envelope`);
  if (envelope.payload.length > MAX_DEVICE_MESSAGE_BYTES) {
    throw new FleetError(
      'TOO_LARGE',
      `${what}: payload is ${envelope.payload.length} base64 characters, the cap is ${MAX_DEVICE_MESSAGE_BYTES}`,
    );
  }

  // 3. signature: one device key, threshold 1. verifyThreshold refuses another
  // payload type (MALFORMED) and, through ed25519.verify, a non-canonical S.
  const keyId = options.keyId ?? (await keyIdOf(publicKey));
  let payload: Uint8Array;
  try {
    ({ payload } = await verifyThreshold(envelope, {
      payloadType: DEVICE_MESSAGE_PAYLOAD_TYPE,
      keys: new Map([[keyId, publicKey]]),
      roleKeyIds: [keyId],
      threshold: 1,
      role: `device ${expectedDeviceId}`,
    }));
  } catch (error) {
    if (!isFleetError(error, 'SIGNATURE_THRESHOLD')) throw error;
    throw new FleetError(
      'BAD_SIGNATURE',
      `${what} carries no valid signature by that device's key ${keyId.slice(0, 16)}…`,
      { cause: error },
    );
  }

  // 4. payload JSON: only now, over authenticated bytes.
  const signed = validateMessage(
    signedDeviceMessageSchema,
    parseJsonBytes(payload, MAX_DEVICE_MESSAGE_BYTES, `${what}: payload`),
    `${what}: payload`,
  );

  // 5. device binding: the signed device id must be the topic's.
  if (signed.deviceId !== expectedDeviceId) {
    throw new FleetError(
      'DEVICE_MISMATCH',
      `message signed for device ${signed.deviceId} arrived as device ${expectedDeviceId}`,
    );
  }

  // 6. message schema, then its type's cap (the payload's base64 length
  // stands for the size: the envelope is larger still).
  const message = validateMessage(deviceMessageSchema, signed.message, what);
  const cap = maxDeviceMessageBytes(message.type);
  if (envelope.payload.length > cap) {
    throw new FleetError(
      'TOO_LARGE',
      `${what}: a ${message.type} message's payload is ${envelope.payload.length} base64 characters, the cap is ${cap}`,
    );
  }

  // 7. a message naming a device speaks for the device it is signed for, no other.
  const named = namedDevice(message);
  if (named !== undefined && named !== signed.deviceId) {
    throw new FleetError(
      'DEVICE_MISMATCH',
      `${message.type} message names device ${named} but is signed for ${signed.deviceId}`,
    );
  }
  return message;
}
