/**
 * Authenticated MQTT connects per second against the embedded broker: the
 * broker runs here with the control plane's device registry as its
 * directory (so each CONNECT costs a database lookup and a signature check),
 * and the clients run in a forked process (mqtt-connect-child.ts).
 */
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Aedes } from 'aedes';
import { generateKeyPair, keyIdOf, toBase64 } from '@fleet/protocol';
import { startEmbeddedBroker, type DeviceDirectory } from '../src/adapters/mqtt/embedded-broker.ts';
import { benchDeviceId } from './bench-fleet.ts';
import { runInChild } from './child-process.ts';
import type { MqttConnectJob, MqttConnectSummary } from './mqtt-connect-child.ts';

const CHILD = fileURLToPath(new URL('./mqtt-connect-child.ts', import.meta.url));

/** A bench device's ed25519 key pair (`id` is benchDeviceId(index)). */
export interface BenchDeviceKey {
  id: string;
  publicKey: Uint8Array;
  secretKey: Uint8Array;
  keyId: string;
}

/** Keys for devices 0..count-1 (tweetnacl: ~10 ms each on a small machine). */
export async function generateBenchKeys(
  count: number,
  onProgress?: (done: number) => void,
): Promise<BenchDeviceKey[]> {
  const keys: BenchDeviceKey[] = [];
  for (let i = 0; i < count; i++) {
    const pair = generateKeyPair();
    keys.push({ id: benchDeviceId(i), ...pair, keyId: await keyIdOf(pair.publicKey) });
    if ((i + 1) % 500 === 0) onProgress?.(i + 1);
  }
  return keys;
}

const jobDevices = (keys: readonly BenchDeviceKey[]): MqttConnectJob['devices'] =>
  keys.map((k) => ({ id: k.id, secretKey: toBase64(k.secretKey), keyId: k.keyId }));

export interface MqttConnectFigures extends MqttConnectSummary {
  /** Where the broker looked devices up. */
  directory: string;
  /** Devices that connected untimed before the measured ones. */
  warmupDevices: number;
  concurrency: number;
  /** What the broker reported dropping or failing while it ran. */
  brokerErrors: string[];
}

/** Devices that connect untimed first (see BenchOptions.mqttWarmupDevices), and the measured ones. */
export interface MqttBenchKeys {
  warmup: readonly BenchDeviceKey[];
  measured: readonly BenchDeviceKey[];
}

/** Runs the generator against `port`: the warm-up devices untimed, then the measured ones. */
async function connectWarmThenMeasure(
  port: number,
  keys: MqttBenchKeys,
  concurrency: number,
): Promise<MqttConnectSummary> {
  if (keys.warmup.length > 0) {
    const warmup = await runInChild<MqttConnectSummary>(CHILD, {
      port,
      concurrency,
      devices: jobDevices(keys.warmup),
    });
    if (warmup.notConnected > 0) {
      throw new Error(
        `warm-up: ${warmup.notConnected} of ${warmup.attempted} devices did not connect: ` +
          JSON.stringify(warmup.failures),
      );
    }
  }
  return runInChild<MqttConnectSummary>(CHILD, {
    port,
    concurrency,
    devices: jobDevices(keys.measured),
  });
}

export async function measureMqttConnects(options: {
  devices: DeviceDirectory;
  directory: string;
  keys: MqttBenchKeys;
  concurrency: number;
}): Promise<MqttConnectFigures> {
  const brokerErrors: string[] = [];
  const broker = await startEmbeddedBroker({
    devices: options.devices,
    nowMs: () => Date.now(),
    port: 0,
    onConnectionDropped: (event) => brokerErrors.push(`${event.reason}: ${event.message}`),
    onError: (error) => brokerErrors.push(String(error)),
  });
  try {
    const summary = await connectWarmThenMeasure(broker.port, options.keys, options.concurrency);
    return {
      ...summary,
      warmupDevices: options.keys.warmup.length,
      directory: options.directory,
      concurrency: options.concurrency,
      brokerErrors: brokerErrors.slice(0, 10),
    };
  } finally {
    await broker.close();
  }
}

/**
 * The peers of the authenticated figure, from the same generator and keys:
 * - `bareAedes`: aedes on a plain TCP server, no authentication, no guards
 *   (the CONNECT's password is ignored): what aedes itself costs here;
 * - `memoryDirectory`: the embedded broker with its guards and the signature
 *   check, devices looked up in a Map instead of the database.
 */
export async function measurePeerConnects(options: {
  keys: MqttBenchKeys;
  concurrency: number;
}): Promise<{ bareAedes: MqttConnectFigures; memoryDirectory: MqttConnectFigures }> {
  const byId = new Map([...options.keys.warmup, ...options.keys.measured].map((k) => [k.id, k]));
  const memoryDirectory = await measureMqttConnects({
    devices: {
      lookup: (id) => {
        const key = byId.get(id);
        return Promise.resolve(
          key ? { publicKey: key.publicKey, revoked: false, keyId: key.keyId } : null,
        );
      },
    },
    directory: 'in-memory Map',
    keys: options.keys,
    concurrency: options.concurrency,
  });
  const aedes = await Aedes.createBroker();
  const server = createServer((socket) => aedes.handle(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const summary = await connectWarmThenMeasure(
      (server.address() as AddressInfo).port,
      options.keys,
      options.concurrency,
    );
    return {
      memoryDirectory,
      bareAedes: {
        ...summary,
        warmupDevices: options.keys.warmup.length,
        directory: 'none: bare aedes, no authentication',
        concurrency: options.concurrency,
        brokerErrors: [],
      },
    };
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
  }
}
