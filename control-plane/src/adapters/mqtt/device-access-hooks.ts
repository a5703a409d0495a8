/**
 * Who may connect to the embedded broker, and what each device may do there
 * (THREATS 27-30, 34): aedes' authenticate / authorize* hooks over the
 * protocol's deny-by-default `canPublish` / `canSubscribe`.
 *
 * - CONNECT: the username is the device id, the client id must equal it
 *   (THREATS 29), and the password is a fresh credential signed by that
 *   device's key (protocol `verifyMqttCredential`); unknown, revoked,
 *   anonymous or wrongly signed clients are refused (THREATS 27).
 * - A last-will topic is checked at CONNECT, and aedes checks the will again
 *   through authorizePublish when it fires (THREATS 28).
 * - A refused SUBSCRIBE gets the failure return code (0x80) for that filter;
 *   a refused PUBLISH is dropped (aedes closes that client's connection).
 * - Commands and bundle blocks come only from the control plane, which
 *   publishes in-process (THREATS 30); a device may set retain only on its own
 *   `state` topic (its retained status and last will).
 * - Every message forwarded to a device is checked again, and a persistent
 *   session stores only allowed filters, so a restored or queued session never
 *   reaches further than a live subscription (THREATS 28, 34).
 */
import type { Aedes, AedesOptions, Client } from 'aedes';
import { canSubscribe } from '@fleet/protocol';
import {
  checkDeviceLogin,
  deviceMayPublish,
  type DeviceDirectory,
  type LoginRefusal,
} from '../../core/devices/device-login.ts';

export type { DeviceDirectory };

export interface DeviceAccessOptions {
  devices: DeviceDirectory;
  nowMs: () => number;
}

/** CONNACK 3.1.1 return codes. */
const IDENTIFIER_REJECTED = 2;
const BAD_CREDENTIALS = 4;
const NOT_AUTHORIZED = 5;

const RETURN_CODE: Record<LoginRefusal, number> = {
  anonymous: NOT_AUTHORIZED,
  'client-id': IDENTIFIER_REJECTED,
  'unknown-or-revoked': NOT_AUTHORIZED,
  credential: BAD_CREDENTIALS,
};

function refusal(message: string, returnCode: number) {
  return Object.assign(new Error(message), { returnCode });
}

const mayPublish = deviceMayPublish;

/** The device id of each authenticated aedes client. */
export type DeviceOf = WeakMap<object, string>;

/** Checks a CONNECT; resolves to a refusal, or null when the device may connect. */
async function checkConnect(
  options: DeviceAccessOptions,
  client: Client,
  username: string | undefined,
  password: Buffer | undefined,
): Promise<ReturnType<typeof refusal> | null> {
  const verdict = await checkDeviceLogin(
    options.devices,
    { username, clientId: client.id, password: password && new Uint8Array(password) },
    options.nowMs(),
  );
  if (!verdict.ok) return refusal(verdict.message, RETURN_CODE[verdict.refusal]);
  const deviceId = client.id;
  // aedes keeps the CONNECT packet's will in `_will` until the session is set up.
  const pending = client as unknown as { _will?: WillTopic; will?: WillTopic };
  const will = pending._will ?? pending.will;
  if (will && !mayPublish(deviceId, will.topic, will.retain === true)) {
    return refusal(`last will on ${will.topic} is not allowed`, NOT_AUTHORIZED);
  }
  return null;
}
type WillTopic = { topic: string; retain?: boolean };

/**
 * The aedes hooks that admit devices and confine them to their topics. They
 * record each admitted client's device id in `deviceOf`; a client missing
 * from it is refused everything.
 */
export function deviceAccessHooks(options: DeviceAccessOptions, deviceOf: DeviceOf) {
  return {
    authenticate(client, username, password, done) {
      checkConnect(options, client, username, password).then(
        (refused) => {
          if (refused) return done(refused, false);
          deviceOf.set(client, client.id);
          done(null, true);
        },
        () => done(refusal('authentication failed', NOT_AUTHORIZED), false),
      );
    },
    authorizePublish(client, packet, done) {
      const deviceId = client ? deviceOf.get(client) : undefined;
      if (deviceId !== undefined && mayPublish(deviceId, packet.topic, packet.retain)) {
        return done(null);
      }
      done(new Error(`publish to ${packet.topic} denied`));
    },
    authorizeSubscribe(client, subscription, done) {
      const deviceId = deviceOf.get(client);
      if (deviceId !== undefined && canSubscribe(deviceId, subscription.topic)) {
        return done(null, subscription);
      }
      done(null, null); // SUBACK 0x80 for this filter; the connection stays up
    },
    // THREATS 28: whatever a session holds (live, restored, or queued while the
    // device was away), a device receives only topics it may subscribe to.
    authorizeForward(client, packet) {
      const deviceId = deviceOf.get(client);
      return deviceId !== undefined && canSubscribe(deviceId, packet.topic) ? packet : null;
    },
  } satisfies AedesOptions;
}

interface SubscriptionStore {
  addSubscriptions(client: Client, subs: { topic: string }[]): Promise<void>;
}

/**
 * aedes 1.2 stores every filter of a SUBSCRIBE packet once any one of them is
 * granted (lib/handlers/subscribe.js `storeSubscriptions` passes the whole
 * `packet.subscriptions`), and its persistence then queues matching QoS 1
 * messages for that client (`enqueueOffline`). A refused `fleet/v1/dev/B/cmd`
 * sent beside A's own cmd with clean:false would collect B's commands for A.
 * aedes takes no persistence wrapper without importing aedes-persistence
 * ourselves, so this wraps the instance it created (THREATS 28, 31).
 */
export function storeOnlyAllowedSubscriptions(broker: Aedes, deviceOf: DeviceOf): void {
  const store = (broker as unknown as { persistence?: Partial<SubscriptionStore> }).persistence;
  const add = store?.addSubscriptions?.bind(store);
  if (!store || !add) throw new Error('aedes persistence has no addSubscriptions to guard');
  store.addSubscriptions = (client, subs) => {
    const deviceId = deviceOf.get(client);
    const allowed = subs.filter((s) => deviceId !== undefined && canSubscribe(deviceId, s.topic));
    return add(client, allowed);
  };
}
