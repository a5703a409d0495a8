/**
 * The agent's MQTT session (MQTT 3.1.1, as the embedded aedes broker speaks):
 *
 * - client id = username = device id; the password is a short-lived
 *   credential signed by the device key, re-signed before every connection
 *   attempt (protocol `signMqttCredential`);
 * - a persistent session (`clean: false`), so QoS 1 commands queued while the
 *   device was away arrive after it reconnects (THREATS 34);
 * - the last will is the device's signed, retained `state` with `online:
 *   false`;
 * - reconnection with exponential backoff and full jitter, so a fleet that
 *   lost its broker does not come back in one wave (THREATS 25). mqtt.js's
 *   own reconnect uses one fixed period, so it is off (`reconnectPeriod: 0`)
 *   and this module reconnects, handing mqtt.js its own message stores so
 *   nothing queued is lost.
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';

export interface AgentSessionOptions {
  url: string;
  deviceId: string;
  /** A fresh signed credential (the MQTT password), asked for before each attempt. */
  credential: () => Uint8Array;
  /** The signed offline state published by the broker as the last will. */
  will: () => Uint8Array;
  willTopic: string;
  onMessage: (topic: string, payload: Uint8Array) => void;
  /** Runs after every (re)connection, e.g. to publish the retained state. */
  onConnect?: (sessionPresent: boolean) => void;
  onDisconnect?: (reason: string) => void;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  connectTimeoutMs?: number;
  keepaliveSeconds?: number;
  random?: () => number;
}

export interface AgentSession {
  /** Starts connecting; resolves on the first successful connection or rejects after `timeoutMs`. */
  start(timeoutMs?: number): Promise<void>;
  connected(): boolean;
  publish(
    topic: string,
    payload: Uint8Array,
    options?: { qos?: 0 | 1; retain?: boolean },
  ): Promise<void>;
  subscribe(topic: string): Promise<void>;
  unsubscribe(topic: string): Promise<void>;
  /** Drops the connection as a network fault would (tests, fault injection); reconnection follows. */
  dropConnection(): void;
  /** Dies as a power cut would: the socket goes without a DISCONNECT (so the broker publishes the will), and no reconnection follows. */
  kill(): void;
  /** Disconnects cleanly (no will) and stops reconnecting. */
  close(): Promise<void>;
}

export function createAgentSession(options: AgentSessionOptions): AgentSession {
  const random = options.random ?? Math.random;
  const minBackoffMs = options.minBackoffMs ?? 500;
  const maxBackoffMs = options.maxBackoffMs ?? 60_000;
  const topics = new Set<string>();
  let client: MqttClient | null = null;
  let failures = 0;
  let closing = false;
  let retryTimer: NodeJS.Timeout | null = null;

  /** Full jitter: uniform in [0, min(max, base * 2^n)] (AWS architecture blog, 2015). */
  function backoffMs(): number {
    const ceiling = Math.min(maxBackoffMs, minBackoffMs * 2 ** Math.min(failures, 20));
    return Math.max(minBackoffMs / 2, Math.round(random() * ceiling));
  }

  function clientOptions(): IClientOptions {
    return {
      clientId: options.deviceId,
      username: options.deviceId,
      password: Buffer.from(options.credential()),
      protocolVersion: 4,
      clean: false,
      reconnectPeriod: 0,
      resubscribe: false,
      connectTimeout: options.connectTimeoutMs ?? 10_000,
      keepalive: options.keepaliveSeconds ?? 30,
      will: {
        topic: options.willTopic,
        payload: Buffer.from(options.will()),
        qos: 1,
        retain: true,
      },
    };
  }

  function scheduleReconnect(c: MqttClient): void {
    if (closing || retryTimer) return;
    failures += 1;
    retryTimer = setTimeout(() => {
      retryTimer = null;
      if (closing) return;
      c.options.password = Buffer.from(options.credential());
      c.options.will = {
        topic: options.willTopic,
        payload: Buffer.from(options.will()),
        qos: 1,
        retain: true,
      };
      // Keep mqtt.js's stores: QoS 1 messages not yet acknowledged are sent again.
      c.reconnect({ incomingStore: c.incomingStore, outgoingStore: c.outgoingStore });
    }, backoffMs());
  }

  async function resubscribe(c: MqttClient): Promise<void> {
    if (topics.size === 0) return;
    await c.subscribeAsync([...topics], { qos: 1 }).catch(() => undefined);
  }

  function wire(c: MqttClient): void {
    c.on('connect', (connack) => {
      failures = 0;
      // A kept session holds our subscriptions, but topics added while offline
      // are not in it: subscribing again is idempotent, so always do.
      void resubscribe(c);
      options.onConnect?.(connack.sessionPresent);
    });
    // A plain Uint8Array view of mqtt.js' payload, not a copy: copying every
    // 64 KiB block frame was 9% of a 1,000-agent fleet's CPU in a rollout
    // (simulator/bench/README.md). Nothing writes into that memory later:
    // mqtt-packet slices it from socket chunks that are never reused.
    // A view rather than the Buffer itself, whose slice() does not copy.
    c.on('message', (topic, payload) =>
      options.onMessage(topic, new Uint8Array(payload.buffer, payload.byteOffset, payload.length)),
    );
    c.on('close', () => {
      options.onDisconnect?.('connection closed');
      scheduleReconnect(c);
    });
    c.on('error', () => undefined); // refused CONNACKs and socket errors end in 'close'
  }

  return {
    start(timeoutMs = 30_000) {
      closing = false;
      const c = mqtt.connect(options.url, clientOptions());
      client = c;
      wire(c);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          c.off('connect', onFirst);
          reject(new Error(`no MQTT connection to ${options.url} within ${timeoutMs} ms`));
        }, timeoutMs);
        const onFirst = () => {
          clearTimeout(timer);
          resolve();
        };
        c.once('connect', onFirst);
      });
    },
    connected: () => client?.connected === true,
    async publish(topic, payload, publishOptions = {}) {
      if (!client) throw new Error('MQTT session not started');
      await client.publishAsync(topic, Buffer.from(payload), {
        qos: publishOptions.qos ?? 1,
        retain: publishOptions.retain ?? false,
      });
    },
    async subscribe(topic) {
      topics.add(topic);
      // A connection lost mid-subscribe is not a failure: every (re)connection
      // subscribes to all recorded topics again.
      if (client?.connected) await client.subscribeAsync(topic, { qos: 1 }).catch(() => undefined);
    },
    async unsubscribe(topic) {
      topics.delete(topic);
      if (client?.connected) await client.unsubscribeAsync(topic);
    },
    dropConnection() {
      client?.stream.destroy();
    },
    kill() {
      closing = true;
      if (retryTimer) clearTimeout(retryTimer);
      retryTimer = null;
      client?.stream.destroy();
    },
    async close() {
      closing = true;
      if (retryTimer) clearTimeout(retryTimer);
      retryTimer = null;
      await client?.endAsync(false).catch(() => client?.end(true));
    },
  };
}
