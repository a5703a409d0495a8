/**
 * Contract test: `topicMatchesFilter` agrees with a real broker's wildcard
 * matching. The broker's own authorization and the control plane's dispatch
 * both rely on our matcher predicting what a subscription will receive.
 *
 * Runs against an embedded aedes by default, and against the broker at
 * MQTT_URL when it is set (CI: Mosquitto). Every topic lives under a random
 * per-run prefix, so parallel runs and other traffic cannot interfere; for
 * that reason the `$`-topic rule [MQTT-4.7.2-1] is not checked here (it has
 * unit tests in protocol/src/topics/match.test.ts), only `+`, `#`, `#`
 * matching its parent level, and empty levels.
 *
 * One client per filter: MQTT 3.1.1 may deliver a message once to a client
 * whose subscriptions overlap, which would blur which filter received it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Aedes } from 'aedes';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { topicMatchesFilter } from '@fleet/protocol';

const DELIVERY_TIMEOUT_MS = 10_000;

const RUN_ID = randomBytes(6).toString('hex');
const PREFIX = `fleet-test/${RUN_ID}`;
/** Published last; lies outside PREFIX, so no filter under test matches it. */
const MARKER_TOPIC = `fleet-test/${RUN_ID}-done`;

/** Filters under PREFIX (`.` is PREFIX itself). */
const FILTERS = [
  'a/b',
  'a/+',
  '+/b',
  'a/+/c',
  'a/+/+',
  '+/+',
  'a/#',
  'a/b/#',
  '#',
  '+/#',
  'a//c',
  'a/+/',
  '+//+',
  'x/#',
  'a/b/c/d',
  'é/+',
].map((f) => `${PREFIX}/${f}`);

/**
 * Topics under PREFIX, where the empty string is PREFIX itself (for `PREFIX/#`),
 * and one sibling of PREFIX that no filter may reach.
 */
const TOPICS = [
  '',
  'a',
  'a/b',
  'A/b',
  'a/c',
  'b',
  'x',
  'x/y',
  'a/b/c',
  'a/b/c/d',
  'a/b/c/d/e',
  'a//c',
  'a/x/c',
  'a/',
  'a/b/',
  'a//',
  '/b',
  'b/b',
  'c/b',
  'é/1',
]
  .map((t) => (t === '' ? PREFIX : `${PREFIX}/${t}`))
  .concat(`${PREFIX}-sibling/a`);

function clientOptions(role: string): IClientOptions {
  return {
    protocolVersion: 4,
    clientId: `fleet-test-${RUN_ID}-${role}`,
    clean: true,
    connectTimeout: 5000,
    reconnectPeriod: 0,
  };
}

interface BrokerUnderTest {
  url: string;
  close(): Promise<void>;
}

/** The broker at MQTT_URL, or an aedes on a free local port. */
async function startBroker(): Promise<BrokerUnderTest> {
  const external = process.env.MQTT_URL;
  if (external) return { url: external, close: () => Promise.resolve() };

  const broker = await Aedes.createBroker();
  const server = createServer(broker.handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    close: async () => {
      await new Promise<void>((resolve) => broker.close(resolve));
      await new Promise<void>((resolve, reject) =>
        server.close((err) => (err ? reject(err) : resolve())),
      );
    },
  };
}

/** Rejects when `promise` has not settled within `ms`; never leaves a timer behind. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A client subscribed to one filter under test, plus the marker topic. */
interface Probe {
  filter: string;
  client: MqttClient;
  received: Set<string>;
  markerSeen: Promise<void>;
}

async function connectProbe(url: string, filter: string, index: number): Promise<Probe> {
  const client = await mqtt.connectAsync(url, clientOptions(`probe-${index}`));
  const received = new Set<string>();
  const markerSeen = new Promise<void>((resolve) => {
    client.on('message', (topic) => {
      if (topic === MARKER_TOPIC) resolve();
      else received.add(topic); // a set: QoS 1 may deliver a message twice
    });
  });
  const grants = await client.subscribeAsync({ [filter]: { qos: 1 }, [MARKER_TOPIC]: { qos: 1 } });
  for (const grant of grants) {
    assert.notEqual(grant.qos, 128, `the broker refused the subscription ${grant.topic}`);
  }
  return { filter, client, received, markerSeen };
}

/** Publishes every topic in order, waiting for each PUBACK, then the marker. */
async function publishAll(url: string): Promise<MqttClient> {
  const publisher = await mqtt.connectAsync(url, clientOptions('publisher'));
  for (const topic of TOPICS) {
    await publisher.publishAsync(topic, topic, { qos: 1, retain: false });
  }
  await publisher.publishAsync(MARKER_TOPIC, 'done', { qos: 1, retain: false });
  return publisher;
}

describe(`broker topic matching (${process.env.MQTT_URL ? 'MQTT_URL' : 'embedded aedes'})`, () => {
  let broker: BrokerUnderTest | undefined;
  const clients: MqttClient[] = [];
  let probes: Probe[] = [];

  before(async () => {
    broker = await startBroker();
    const { url } = broker;
    probes = await Promise.all(FILTERS.map((filter, i) => connectProbe(url, filter, i)));
    clients.push(...probes.map((p) => p.client));
    clients.push(await publishAll(url));
    await within(
      Promise.all(probes.map((p) => p.markerSeen)),
      DELIVERY_TIMEOUT_MS,
      'waiting for the marker message on every probe',
    );
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await broker?.close();
  });

  it('covers each filter with topics it matches and topics it does not', () => {
    for (const filter of FILTERS) {
      const matches = TOPICS.filter((t) => topicMatchesFilter(filter, t)).length;
      assert.ok(matches > 0 && matches < TOPICS.length, `${filter} matches ${matches} topics`);
      assert.equal(topicMatchesFilter(filter, MARKER_TOPIC), false);
    }
  });

  for (const filter of FILTERS) {
    it(`delivers to ${filter.slice(PREFIX.length + 1)} exactly what topicMatchesFilter predicts`, () => {
      const probe = probes.find((p) => p.filter === filter);
      assert.ok(probe, 'probe was not set up');
      const expected = TOPICS.filter((t) => topicMatchesFilter(filter, t)).sort();
      assert.deepEqual([...probe.received].sort(), expected);
    });
  }
});
