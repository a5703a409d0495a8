/**
 * An embedded broker on port 0 with an in-memory device directory, and the
 * clients the broker tests need: mqtt.js devices, and raw sockets for the
 * clients mqtt.js would never be (ones that stop reading, or send garbage).
 * Every wait is bounded.
 */
import { connect as netConnect, type Socket } from 'node:net';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
// mqtt-packet is the encoder of mqtt and aedes themselves (not a direct
// dependency of this package): raw clients send exactly what mqtt.js would.
import { generate, type Packet } from 'mqtt-packet';
import { generateKeyPair, keyIdOf, signMqttCredential, type Signer } from '@fleet/protocol';
import {
  startEmbeddedBroker,
  type EmbeddedBroker,
  type EmbeddedBrokerOptions,
} from '../embedded-broker.ts';

/** What each client of `connect` has received, from its first byte on. */
const messagesOf = new WeakMap<MqttClient, string[]>();

export interface TestDevice {
  id: string;
  signer: Signer;
  publicKey: Uint8Array;
  revoked: boolean;
}

export interface TestBroker {
  broker: EmbeddedBroker;
  device(id: string): Promise<TestDevice>;
  connect(options: IClientOptions): Promise<MqttClient>;
  connectAs(d: TestDevice, extra?: IClientOptions): Promise<MqttClient>;
  /** A raw socket that has completed CONNECT as `d` (CONNACK 0 read). */
  rawConnect(d: TestDevice): Promise<Socket>;
  close(): Promise<void>;
}

export function credential(d: TestDevice, clientId = d.id, nowMs = Date.now()): Buffer {
  return Buffer.from(signMqttCredential({ deviceId: d.id, clientId, nowMs, signer: d.signer }));
}

export async function startTestBroker(
  options: Partial<EmbeddedBrokerOptions> = {},
): Promise<TestBroker> {
  const devices = new Map<string, TestDevice>();
  const clients: MqttClient[] = [];
  const sockets: Socket[] = [];
  const broker = await startEmbeddedBroker({
    devices: { lookup: (id) => Promise.resolve(devices.get(id) ?? null) },
    nowMs: () => Date.now(),
    ...options,
  });
  const connect = async (clientOptions: IClientOptions) => {
    const client = mqtt.connect(`mqtt://127.0.0.1:${broker.port}`, {
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 5000,
      clean: true,
      ...clientOptions,
    });
    clients.push(client);
    // From the start: a restored session's queued messages follow CONNACK at once.
    const seen: string[] = [];
    client.on('message', (topic) => seen.push(topic));
    messagesOf.set(client, seen);
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
      client.once('close', () => reject(new Error('connection closed before CONNACK')));
    });
    return client;
  };
  return {
    broker,
    async device(id) {
      const pair = generateKeyPair();
      const signer = { keyId: await keyIdOf(pair.publicKey), secretKey: pair.secretKey };
      const d = { id, publicKey: pair.publicKey, signer, revoked: false };
      devices.set(id, d);
      return d;
    },
    connect,
    connectAs: (d, extra = {}) =>
      connect({ clientId: d.id, username: d.id, password: credential(d), ...extra }),
    async rawConnect(d) {
      const socket = await openSocket(broker.port);
      sockets.push(socket);
      const connack = nextBytes(socket, 4);
      socket.write(
        encode({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 4,
          clean: true,
          keepalive: 0,
          clientId: d.id,
          username: d.id,
          password: credential(d),
        }),
      );
      // CONNACK, Remaining Length 2, no session present, return code 0 [MQTT-3.2.2]
      if (!(await connack).equals(Buffer.from([0x20, 0x02, 0x00, 0x00]))) {
        throw new Error(`${d.id}: no CONNACK 0 from the broker`);
      }
      return socket;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
      await broker.close();
    },
  };
}

export const encode = (packet: Packet): Buffer => generate(packet);

export function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** The next `count` bytes `socket` receives, within `timeoutMs`. */
export function nextBytes(socket: Socket, count: number, timeoutMs = 2000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0);
    const timer = setTimeout(
      () => finish(new Error(`no ${count} bytes in ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length >= count) finish(null);
    };
    function finish(error: Error | null) {
      clearTimeout(timer);
      socket.off('data', onData);
      if (error) reject(error);
      else resolve(received.subarray(0, count));
    }
    socket.on('data', onData);
  });
}

/** Resolves when `emitter` emits `event`; rejects after `timeoutMs`. */
export function eventWithin(
  emitter: { once(event: string, listener: () => void): unknown },
  event: string,
  timeoutMs: number,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no '${event}' in ${timeoutMs} ms`)),
      timeoutMs,
    );
    emitter.once(event, () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** The topics `client` has received since it connected (a live array). */
export function collect(client: MqttClient): string[] {
  const seen = messagesOf.get(client);
  if (!seen) throw new Error('not a client of this fixture');
  return seen;
}

/** Waits until `condition()` holds, polling; rejects after `timeoutMs`. */
export async function until(condition: () => boolean, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Long enough for a message that is coming to arrive on loopback. */
export const settle = (ms = 400) => new Promise((r) => setTimeout(r, ms));

/** `promise`, or a rejection naming `what` after `timeoutMs`. */
export async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${timeoutMs} ms: ${what}`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A seeded PRNG (mulberry32): the same seed, the same fuzz inputs. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = Math.imul(state ^ (state >>> 15), 1 | state);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}
