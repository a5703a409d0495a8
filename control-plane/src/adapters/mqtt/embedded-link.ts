/**
 * The BrokerLink over the embedded aedes broker: the control plane publishes
 * and subscribes in-process, sees connects and disconnects as they happen,
 * and can drop a revoked device at once.
 */
import type { DeviceDirectory } from './embedded-broker.ts';
import { startEmbeddedBroker } from './embedded-broker.ts';
import type { BrokerLink } from './broker-link.ts';

export async function startEmbeddedLink(options: {
  devices: DeviceDirectory;
  nowMs: () => number;
  host: string;
  port: number;
  onError?: (error: unknown) => void;
}): Promise<BrokerLink> {
  const listeners: ((deviceId: string, online: boolean) => void)[] = [];
  let up = true;
  const broker = await startEmbeddedBroker({
    devices: options.devices,
    nowMs: options.nowMs,
    host: options.host,
    port: options.port,
    onError: options.onError,
    onClientConnection: (deviceId, online) => {
      for (const listener of listeners) listener(deviceId, online);
    },
  });
  return {
    kind: 'embedded',
    deviceUrl: `mqtt://${options.host}:${broker.port}`,
    publish: (topic, payload, publishOptions) => broker.publish(topic, payload, publishOptions),
    subscribe: (filter, handler) => broker.subscribe(filter, handler),
    disconnect: (deviceId) => broker.disconnect(deviceId),
    onConnection: (listener) => listeners.push(listener),
    isUp: () => up,
    async close() {
      up = false;
      await broker.close();
    },
  };
}
