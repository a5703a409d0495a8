/**
 * Who may connect to MQTT as a device, and what a device may publish: one
 * rule set for the embedded broker's CONNECT hook and for the HTTP hook an
 * external broker calls (adapters/http/routes/broker-hooks.ts).
 *
 * Login, in order (THREATS 27, 29):
 *   1. identity     a username and a password are given
 *   2. client id    the client id is the username (the device id)
 *   3. registry     the device is enrolled and not revoked
 *   4. credential   protocol `verifyMqttCredential`: signed by that device's
 *                   key, bound to this device and client id, not expired
 */
import { canPublish, deviceTopic, isFleetError, verifyMqttCredential } from '@fleet/protocol';

/** What login needs to know about a device (the device registry implements it). */
export interface DeviceDirectory {
  lookup(
    deviceId: string,
  ): Promise<{ publicKey: Uint8Array; revoked: boolean; keyId?: string } | null>;
}

export type LoginRefusal = 'anonymous' | 'client-id' | 'unknown-or-revoked' | 'credential';

export type LoginVerdict = { ok: true } | { ok: false; refusal: LoginRefusal; message: string };

export async function checkDeviceLogin(
  directory: DeviceDirectory,
  login: { username: string | undefined; clientId: string; password: Uint8Array | undefined },
  nowMs: number,
): Promise<LoginVerdict> {
  const deviceId = login.username ?? '';
  if (!deviceId || !login.password || login.password.length === 0) {
    return { ok: false, refusal: 'anonymous', message: 'anonymous clients are refused' };
  }
  if (login.clientId !== deviceId) {
    return {
      ok: false,
      refusal: 'client-id',
      message: `client id ${login.clientId} is not ${deviceId}`,
    };
  }
  const device = await directory.lookup(deviceId);
  if (!device || device.revoked) {
    return {
      ok: false,
      refusal: 'unknown-or-revoked',
      message: `device ${deviceId} is unknown or revoked`,
    };
  }
  try {
    await verifyMqttCredential(login.password, {
      deviceId,
      clientId: login.clientId,
      publicKey: device.publicKey,
      keyId: device.keyId,
      nowMs,
    });
  } catch (error) {
    return {
      ok: false,
      refusal: 'credential',
      message: isFleetError(error) ? error.message : 'credential refused',
    };
  }
  return { ok: true };
}

/** canPublish, and retain only on the device's own state topic (its status and last will). */
export function deviceMayPublish(deviceId: string, topic: string, retain: boolean): boolean {
  if (!canPublish(deviceId, topic)) return false;
  return !retain || topic === deviceTopic(deviceId, 'state');
}
