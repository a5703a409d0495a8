/**
 * The embedded MQTT 3.1.1 broker (aedes) with Fleet's device identity and
 * topic ACLs (device-access-hooks.ts: THREATS 27-30, 34), behind a guard on
 * every connection (guarded-connection.ts): oversize or malformed packets and
 * clients that stop reading are dropped without holding up the others
 * (THREATS 31-33).
 *
 * The control plane publishes and subscribes in-process. Listens on `port`
 * (0: any free port) on `host`.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Aedes, type Client } from 'aedes';
import {
  deviceAccessHooks,
  storeOnlyAllowedSubscriptions,
  type DeviceDirectory,
  type DeviceOf,
} from './device-access-hooks.ts';
import { indexRetainedMessages } from './retained-index.ts';
import { guardConnection, type ConnectionDropReason } from './guarded-connection.ts';
import {
  createWorkQueue,
  IN_PROCESS_CONCURRENCY,
  IN_PROCESS_MAX_QUEUED,
  supersedingKey,
  type WorkQueue,
} from './work-queue.ts';

export type { DeviceDirectory } from './device-access-hooks.ts';

export interface EmbeddedBrokerOptions {
  devices: DeviceDirectory;
  nowMs: () => number;
  port?: number;
  host?: string;
  /**
   * Largest packet a client may send, fixed header included (THREATS 31).
   * Default 256 KiB: a 64 KiB bundle block with its header fits with room.
   */
  maxPacketSizeBytes?: number;
  /** Bytes waiting for a client that is not reading before it is dropped (THREATS 32). Default 4 MiB. */
  maxQueuedBytes?: number;
  /** Told when a connection is dropped by the packet or queue guard. */
  onConnectionDropped?: (event: { reason: ConnectionDropReason; message: string }) => void;
  /**
   * Told when an admitted device's session starts and ends. A device taking
   * over its own client id is reported offline, then online.
   */
  onClientConnection?: (deviceId: string, online: boolean) => void;
  /** Errors thrown by `subscribe` handlers and `onClientConnection`. */
  onError?: (error: unknown) => void;
}

export interface EmbeddedBroker {
  readonly port: number;
  /** Publishes as the control plane (commands, bundle blocks). */
  publish(
    topic: string,
    payload: Uint8Array,
    options?: { qos?: 0 | 1; retain?: boolean },
  ): Promise<void>;
  /**
   * Delivers what devices publish to topics matching `filter` to `handler`,
   * in-process as the control plane, at most IN_PROCESS_CONCURRENCY at a time
   * and never holding up the broker's other deliveries.
   */
  subscribe(
    filter: string,
    handler: (topic: string, payload: Uint8Array) => Promise<void>,
  ): Promise<void>;
  /** Disconnects a device now (after revocation). */
  disconnect(deviceId: string): void;
  /** Stops listening and drops every connection. */
  close(): Promise<void>;
}

export const DEFAULT_MAX_PACKET_SIZE_BYTES = 256 * 1024;
export const DEFAULT_MAX_QUEUED_BYTES = 4 * 1024 * 1024;

export async function startEmbeddedBroker(options: EmbeddedBrokerOptions): Promise<EmbeddedBroker> {
  const deviceOf: DeviceOf = new WeakMap();
  const broker = await Aedes.createBroker(deviceAccessHooks(options, deviceOf));
  const onError = (error: unknown) => options.onError?.(error);
  const queue = createWorkQueue({
    concurrency: IN_PROCESS_CONCURRENCY,
    maxQueued: IN_PROCESS_MAX_QUEUED,
    onError,
  });
  storeOnlyAllowedSubscriptions(broker, deviceOf);
  indexRetainedMessages(broker);
  const connected = trackConnections(broker, options);
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    const connection = guardConnection(socket, {
      maxPacketSizeBytes: options.maxPacketSizeBytes ?? DEFAULT_MAX_PACKET_SIZE_BYTES,
      maxQueuedBytes: options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES,
      onDrop: (reason, message) => options.onConnectionDropped?.({ reason, message }),
    });
    broker.handle(connection);
  });
  const port = await listen(server, options.port ?? 0, options.host ?? '127.0.0.1');
  return {
    port,
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
    subscribe: createInProcessSubscriber(broker, queue, onError),
    disconnect(deviceId) {
      connected.get(deviceId)?.close();
    },
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        broker.close(() => {
          for (const socket of sockets) socket.destroy(); // connections that never sent CONNECT
        });
      });
      // Messages taken in before the close are applied before the caller goes on
      // (and closes the database under them).
      await queue.drain();
    },
  };
}

/** The live client of each admitted device, reported to `onClientConnection`. */
function trackConnections(broker: Aedes, options: EmbeddedBrokerOptions): Map<string, Client> {
  const connected = new Map<string, Client>();
  const report = (deviceId: string, online: boolean) => {
    try {
      options.onClientConnection?.(deviceId, online);
    } catch (error) {
      options.onError?.(error);
    }
  };
  broker.on('client', (client) => {
    connected.set(client.id, client);
    report(client.id, true);
  });
  broker.on('clientDisconnect', (client) => {
    // aedes closes a session taken over before it admits the new one; an
    // older client closing late must not unlist its successor.
    if (connected.get(client.id) !== client) return;
    connected.delete(client.id);
    report(client.id, false);
  });
  return connected;
}

async function listen(server: Server, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return (server.address() as AddressInfo).port;
}

/**
 * Hands each delivery to `handler` and acks aedes at once, so the broker never
 * waits on the control plane's database. The work is queued here and run
 * `IN_PROCESS_CONCURRENCY` at a time (one at a time was too slow for a
 * reconnect storm: 120 devices reporting at once took 120 database round
 * trips in a row). Past `IN_PROCESS_MAX_QUEUED` waiting, a device's `state`
 * or `evt` message replaces the one of its topic still waiting (it is never
 * dropped), and any other message is dropped and reported (work-queue.ts).
 */
function createInProcessSubscriber(
  broker: Aedes,
  queue: WorkQueue,
  onError: (error: unknown) => void,
) {
  let subscriptions = 0;
  return (filter: string, handler: (topic: string, payload: Uint8Array) => Promise<void>) =>
    new Promise<void>((resolve) => {
      const subscription = (subscriptions += 1);
      const deliver = (packet: { topic: string; payload: string | Buffer }, ack: () => void) => {
        ack();
        const payload = new Uint8Array(Buffer.from(packet.payload));
        const work = () => handler(packet.topic, payload);
        const key = supersedingKey(subscription, packet.topic);
        if (key !== null) queue.pushLatest(key, work);
        else if (!queue.push(work)) {
          onError(new Error(`control plane busy: dropped a message on ${packet.topic}`));
        }
      };
      broker.subscribe(filter, deliver, resolve);
    });
}
