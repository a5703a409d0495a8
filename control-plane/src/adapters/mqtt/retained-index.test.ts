/**
 * The retained index against aedes' own store, with real MQTT clients: the
 * same retained messages reach a new subscriber whether its filters are
 * exact (answered from the index) or have wildcards (the store's scan),
 * after stores, replacements and clears; and an aedes without the index
 * gives the same answers.
 */
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { after, describe, it } from 'node:test';
import { Aedes } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';
import { indexRetainedMessages, type RetainedIndex } from './retained-index.ts';

interface Bench {
  port: number;
  index: RetainedIndex | null;
  close(): Promise<void>;
}

const benches: Bench[] = [];
const benchClients = new WeakMap<Bench, MqttClient[]>();
after(async () => {
  for (const bench of benches) await bench.close();
});

async function startBroker(indexed: boolean): Promise<Bench> {
  const broker = await Aedes.createBroker();
  const index = indexed ? indexRetainedMessages(broker) : null;
  const server: Server = createServer((socket) => broker.handle(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const clients: MqttClient[] = [];
  const bench: Bench = {
    port: (server.address() as AddressInfo).port,
    index,
    close: async () => {
      await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => broker.close(() => resolve()));
    },
  };
  benchClients.set(bench, clients);
  benches.push(bench);
  return bench;
}

async function client(bench: Bench): Promise<MqttClient> {
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${bench.port}`, {
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5000,
  });
  benchClients.get(bench)!.push(c);
  return c;
}

/** What a new client subscribing to `filters` receives as retained, within a bounded wait. */
async function retainedFor(bench: Bench, filters: string[]): Promise<string[]> {
  const c = await client(bench);
  const got: string[] = [];
  c.on('message', (topic, payload, packet) => {
    if (packet.retain) got.push(`${topic}=${payload.toString()}`);
  });
  await c.subscribeAsync(filters, { qos: 1 });
  // Retained messages follow the SUBACK at once on a local broker; the
  // assertions on what must arrive (a2 below) catch a wait too short.
  await new Promise((resolve) => setTimeout(resolve, 150));
  await c.endAsync();
  return got.sort();
}

async function publishRetained(bench: Bench, messages: [string, string][]): Promise<void> {
  const c = await client(bench);
  for (const [topic, payload] of messages) {
    await c.publishAsync(topic, payload, { qos: 1, retain: true });
  }
  await c.endAsync();
}

const SCENARIO: [string, string][] = [
  ['fleet/v1/dev/a/state', 'a1'],
  ['fleet/v1/dev/b/state', 'b1'],
  ['fleet/v1/dev/c/state', 'c1'],
  ['fleet/v1/dev/a/state', 'a2'], // replaces a1
  ['fleet/v1/dev/c/state', ''], // clears c
];

const QUERIES: string[][] = [
  ['fleet/v1/dev/a/state'],
  ['fleet/v1/dev/c/state'],
  ['fleet/v1/dev/a/state', 'fleet/v1/dev/b/state', 'fleet/v1/dev/nobody/state'],
  ['fleet/v1/dev/+/state'],
  ['fleet/v1/#'],
  ['fleet/v1/dev/a/state', 'fleet/v1/dev/+/state'],
];

describe('retained messages by topic (embedded broker)', () => {
  it('gives a new subscriber what aedes without the index gives, exact and wildcard', async () => {
    const indexed = await startBroker(true);
    const plain = await startBroker(false);
    for (const bench of [indexed, plain]) await publishRetained(bench, SCENARIO);
    for (const filters of QUERIES) {
      const want = await retainedFor(plain, filters);
      assert.deepEqual(await retainedFor(indexed, filters), want, filters.join(' '));
    }
    assert.deepEqual(await retainedFor(indexed, ['fleet/v1/dev/a/state']), [
      'fleet/v1/dev/a/state=a2',
    ]);
    assert.deepEqual(await retainedFor(indexed, ['fleet/v1/dev/c/state']), []);
    assert.equal(indexed.index!.size(), 2);
    const { indexed: fromIndex, scanned } = indexed.index!.stats();
    assert.ok(fromIndex >= 4, `exact SUBSCRIBEs answered from the index (${fromIndex})`);
    assert.ok(scanned >= 3, `wildcard SUBSCRIBEs scanned (${scanned})`);
  });
});
