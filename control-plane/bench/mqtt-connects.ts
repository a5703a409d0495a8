/**
 * Authenticated MQTT connects per second against the embedded broker: the
 * broker runs here with the control plane's device registry as its
 * directory (so each CONNECT costs a database lookup and a signature check),
 * and the clients run in a forked process (mqtt-connect-child.ts).
 */
import { fileURLToPath } from 'node:url';
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

export interface MqttConnectFigures extends MqttConnectSummary {
  /** Where the broker looked devices up. */
  directory: string;
  concurrency: number;
  /** What the broker reported dropping or failing while it ran. */
  brokerErrors: string[];
}

export async function measureMqttConnects(options: {
  devices: DeviceDirectory;
  directory: string;
  keys: readonly BenchDeviceKey[];
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
    const job: MqttConnectJob = {
      port: broker.port,
      concurrency: options.concurrency,
      devices: options.keys.map((k) => ({
        id: k.id,
        secretKey: toBase64(k.secretKey),
        keyId: k.keyId,
      })),
    };
    const summary = await runInChild<MqttConnectSummary>(CHILD, job);
    return {
      ...summary,
      directory: options.directory,
      concurrency: options.concurrency,
      brokerErrors: brokerErrors.slice(0, 10),
    };
  } finally {
    await broker.close();
  }
}
