/**
 * The embedded MQTT 3.1.1 broker (aedes) with Fleet's device identity and
 * topic ACLs:
 *
 * - CONNECT: the username is the device id, the client id must equal it
 *   (THREATS 29), and the password is a fresh credential signed by that
 *   device's key (protocol `verifyMqttCredential`); unknown, revoked,
 *   anonymous or wrongly signed clients are refused (THREATS 27).
 * - A last-will topic is checked at CONNECT, and aedes checks the will again
 *   through authorizePublish when it fires (THREATS 28).
 * - A refused SUBSCRIBE gets the failure return code (0x80) for that filter;
 *   a refused PUBLISH is dropped (aedes closes that client's connection).
 * - PUBLISH / SUBSCRIBE go through the protocol's deny-by-default
 *   `canPublish` / `canSubscribe`, so commands and bundle blocks can only come
 *   from the control plane, which publishes in-process (THREATS 28, 30).
 *
 * Listens on `port` (0: any free port) on `host`.
 */
import { createServer, type AddressInfo, type Server } from 'node:net';
import { Aedes } from 'aedes';
import { canPublish, canSubscribe, isFleetError, verifyMqttCredential } from '@fleet/protocol';

/** What the broker needs to know about a device (the registry implements it). */
export interface DeviceDirectory {
  lookup(deviceId: string): Promise<{ publicKey: Uint8Array; revoked: boolean } | null>;
}

export interface EmbeddedBrokerOptions {
  devices: DeviceDirectory;
  nowMs: () => number;
  port?: number;
  host?: string;
}

export interface EmbeddedBroker {
  readonly port: number;
  /** Publishes as the control plane (commands, bundle blocks). */
  publish(
    topic: string,
    payload: Uint8Array,
    options?: { qos?: 0 | 1; retain?: boolean },
  ): Promise<void>;
  /** Disconnects a device now (after revocation). */
  disconnect(deviceId: string): void;
  close(): Promise<void>;
}

/** CONNACK 3.1.1 return codes. */
const IDENTIFIER_REJECTED = 2;
const BAD_CREDENTIALS = 4;
const NOT_AUTHORIZED = 5;

function refusal(message: string, returnCode: number) {
  return Object.assign(new Error(message), { returnCode });
}

export async function startEmbeddedBroker(options: EmbeddedBrokerOptions): Promise<EmbeddedBroker> {
  const deviceOf = new WeakMap<object, string>();
  const broker = await Aedes.createBroker({
    authenticate: (client, username, password, done) => {
      void (async () => {
        const deviceId = username ?? '';
        if (!deviceId || !password)
          return done(refusal('anonymous clients are refused', NOT_AUTHORIZED), false);
        if (client.id !== deviceId)
          return done(
            refusal(`client id ${client.id} is not ${deviceId}`, IDENTIFIER_REJECTED),
            false,
          );
        const device = await options.devices.lookup(deviceId);
        if (!device || device.revoked)
          return done(refusal(`device ${deviceId} is unknown or revoked`, NOT_AUTHORIZED), false);
        try {
          await verifyMqttCredential(new Uint8Array(password), {
            deviceId,
            clientId: client.id,
            publicKey: device.publicKey,
            nowMs: options.nowMs(),
          });
        } catch (error) {
          const message = isFleetError(error) ? error.message : 'credential refused';
          return done(refusal(message, BAD_CREDENTIALS), false);
        }
        // aedes keeps the CONNECT packet's will in `_will` until the session is set up.
        const pending = client as unknown as {
          _will?: { topic: string };
          will?: { topic: string };
        };
        const will = pending._will ?? pending.will;
        if (will && !canPublish(deviceId, will.topic)) {
          return done(refusal(`last will on ${will.topic} is not allowed`, NOT_AUTHORIZED), false);
        }
        deviceOf.set(client, deviceId);
        done(null, true);
      })().catch(() => done(refusal('authentication failed', NOT_AUTHORIZED), false));
    },
    authorizePublish: (client, packet, done) => {
      const deviceId = client ? deviceOf.get(client) : undefined;
      if (deviceId !== undefined && canPublish(deviceId, packet.topic)) return done(null);
      done(new Error(`publish to ${packet.topic} denied`));
    },
    authorizeSubscribe: (client, subscription, done) => {
      const deviceId = client ? deviceOf.get(client) : undefined;
      if (deviceId !== undefined && canSubscribe(deviceId, subscription.topic))
        return done(null, subscription);
      done(null, null); // SUBACK 0x80 for this filter; the connection stays up
    },
  });
  const connected = new Map<string, { close(): void }>();
  broker.on('client', (client) => connected.set(client.id, client));
  broker.on('clientDisconnect', (client) => connected.delete(client.id));
  const server: Server = createServer(broker.handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    publish: (topic, payload, publishOptions = {}) =>
      new Promise((resolve, reject) =>
        broker.publish(
          {
            cmd: 'publish',
            topic,
            payload: Buffer.from(payload),
            qos: publishOptions.qos ?? 1,
            retain: publishOptions.retain ?? false,
            dup: false,
          },
          (error) => (error ? reject(error) : resolve()),
        ),
      ),
    disconnect(deviceId) {
      connected.get(deviceId)?.close();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => broker.close(() => resolve()));
      }),
  };
}
