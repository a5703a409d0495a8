/**
 * The control plane as a privileged client of an external MQTT 3.1.1 broker
 * (Mosquitto, EMQX, HiveMQ) given by `MQTT_URL`. The broker enforces device
 * ACLs (docs/external-broker.md); the control plane still verifies every
 * device message's signature, so a misconfigured broker cannot make it
 * accept a forged one. With `shareGroup`, subscriptions are shared
 * (`$share/{group}/...`) so replicas split the work.
 */
import mqtt from 'mqtt';
import { sharedSubscription, topicMatchesFilter } from '@fleet/protocol';
import type { BrokerLink, DeviceMessageHandler } from './broker-link.ts';
import {
  createWorkQueue,
  IN_PROCESS_CONCURRENCY,
  IN_PROCESS_MAX_QUEUED,
  supersedingKey,
} from './work-queue.ts';

export async function connectExternalBroker(options: {
  url: string;
  clientId: string;
  shareGroup?: string;
  onError?: (error: unknown) => void;
}): Promise<BrokerLink> {
  const client = await mqtt.connectAsync(options.url, {
    protocolVersion: 4,
    clientId: options.clientId,
    clean: true,
    reconnectPeriod: 2000,
    connectTimeout: 10_000,
  });
  const handlers: { filter: string; handler: DeviceMessageHandler }[] = [];
  const onError = (error: unknown) => options.onError?.(error);
  // The same bounded, 16-at-a-time application as on the embedded broker.
  const queue = createWorkQueue({
    concurrency: IN_PROCESS_CONCURRENCY,
    maxQueued: IN_PROCESS_MAX_QUEUED,
    onError,
  });
  client.on('message', (topic, payload) => {
    for (const [subscription, { filter, handler }] of handlers.entries()) {
      if (!topicMatchesFilter(filter, topic)) continue;
      const bytes = new Uint8Array(payload);
      const work = () => handler(topic, bytes);
      // When full, a device's state or evt replaces the waiting one of its topic; others are refused.
      const key = supersedingKey(subscription, topic);
      if (key !== null) queue.pushLatest(key, work);
      else if (!queue.push(work)) {
        onError(new Error(`control plane busy: dropped a message on ${topic}`));
      }
    }
  });
  const deviceUrl = new URL(options.url);
  deviceUrl.username = '';
  deviceUrl.password = '';
  return {
    kind: 'external',
    deviceUrl: deviceUrl.toString().replace(/\/$/, ''),
    publish: async (topic, payload, publishOptions = {}) => {
      await client.publishAsync(topic, Buffer.from(payload), {
        qos: publishOptions.qos ?? 1,
        retain: publishOptions.retain ?? false,
      });
    },
    async subscribe(filter, handler) {
      handlers.push({ filter, handler });
      const topic = options.shareGroup ? sharedSubscription(options.shareGroup, filter) : filter;
      const granted = await client.subscribeAsync(topic, { qos: 1 });
      if (granted.some((g) => g.qos === 128))
        throw new Error(`the broker refused the subscription ${topic}`);
    },
    disconnect: () => undefined, // the broker's own admin API does this; see docs/external-broker.md
    isUp: () => client.connected,
    async close() {
      await client.endAsync();
      await queue.drain(); // messages taken in before the close are applied first
    },
  };
}
