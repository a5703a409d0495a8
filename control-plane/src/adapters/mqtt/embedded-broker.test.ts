/**
 * The embedded broker's identity and ACLs, with real MQTT clients (THREATS
 * 27-30): every refusal is checked against a positive control, so a test
 * cannot pass merely because nothing was delivered at all.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import {
  deviceTopic,
  bundleBlocksTopic,
  generateKeyPair,
  keyIdOf,
  signMqttCredential,
  type Signer,
} from '@fleet/protocol';
import { startEmbeddedBroker, type EmbeddedBroker } from './embedded-broker.ts';

const WAIT_MS = 400;
interface TestDevice {
  id: string;
  signer: Signer;
  publicKey: Uint8Array;
  revoked: boolean;
}

let broker: EmbeddedBroker;
const devices = new Map<string, TestDevice>();
const clients: MqttClient[] = [];
const BUNDLE = 'ab'.repeat(32);

async function device(id: string): Promise<TestDevice> {
  const pair = generateKeyPair();
  const d = {
    id,
    publicKey: pair.publicKey,
    signer: { keyId: await keyIdOf(pair.publicKey), secretKey: pair.secretKey },
    revoked: false,
  };
  devices.set(id, d);
  return d;
}

function credential(d: TestDevice, clientId = d.id, nowMs = Date.now()): Buffer {
  return Buffer.from(signMqttCredential({ deviceId: d.id, clientId, nowMs, signer: d.signer }));
}

async function connect(options: IClientOptions): Promise<MqttClient> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, {
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    clean: true,
    ...options,
  });
  clients.push(client);
  return client;
}

const connectAs = (d: TestDevice, extra: IClientOptions = {}) =>
  connect({ clientId: d.id, username: d.id, password: credential(d), ...extra });

async function refusedConnect(options: IClientOptions): Promise<void> {
  await assert.rejects(
    connect(options),
    /Not authorized|Bad username or password|Identifier rejected|connack/i,
  );
}

/** Topics `client` receives within WAIT_MS. */
function collect(client: MqttClient): string[] {
  const seen: string[] = [];
  client.on('message', (topic) => seen.push(topic));
  return seen;
}
const settle = () => new Promise((r) => setTimeout(r, WAIT_MS));

let A: TestDevice;
let B: TestDevice;

before(async () => {
  broker = await startEmbeddedBroker({
    devices: { lookup: (id) => Promise.resolve(devices.get(id) ?? null) },
    nowMs: () => Date.now(),
  });
  A = await device('dev-a');
  B = await device('dev-b');
});
after(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
  await broker.close();
});

describe('embedded broker: identity', () => {
  it('accepts a device with a fresh credential of its own', async () => {
    const client = await connectAs(A);
    assert.equal(client.connected, true);
  });

  it('refuses anonymous clients and wrong credentials (THREATS 27)', async () => {
    await refusedConnect({ clientId: 'anon-1' });
    await refusedConnect({ clientId: A.id, username: A.id, password: credential(B, A.id) }); // B's key
    await refusedConnect({ clientId: A.id, username: A.id, password: Buffer.from('secret') });
    const stale = credential(A, A.id, Date.now() - 60 * 60 * 1000);
    await refusedConnect({ clientId: A.id, username: A.id, password: stale });
  });

  it("refuses B's client id with A's credential (THREATS 29)", async () => {
    await refusedConnect({ clientId: B.id, username: A.id, password: credential(A, B.id) });
    await refusedConnect({ clientId: B.id, username: A.id, password: credential(A) });
  });

  it("refuses a last will on another device's topic (THREATS 28)", async () => {
    await refusedConnect({
      clientId: A.id,
      username: A.id,
      password: credential(A),
      will: {
        topic: deviceTopic(B.id, 'state'),
        payload: Buffer.from('offline'),
        qos: 1,
        retain: true,
      },
    });
  });

  it('refuses, and disconnects, a revoked device', async () => {
    const C = await device('dev-c');
    const client = await connectAs(C);
    C.revoked = true;
    const closed = new Promise<void>((r) => client.once('close', () => r()));
    broker.disconnect(C.id);
    await closed;
    await refusedConnect({ clientId: C.id, username: C.id, password: credential(C) });
  });
});

describe('embedded broker: topics', () => {
  it("A's publishes to B's cmd and to bundle blocks never arrive; the control plane's do (THREATS 28, 30)", async () => {
    const b = await connectAs(B);
    await b.subscribeAsync([deviceTopic(B.id, 'cmd'), bundleBlocksTopic(BUNDLE)], { qos: 1 });
    const seen = collect(b);
    const a = await connectAs(A);
    a.publish(deviceTopic(B.id, 'cmd'), 'forged', { qos: 0 });
    a.publish(bundleBlocksTopic(BUNDLE), 'forged', { qos: 0, retain: true });
    await settle();
    assert.deepEqual(seen, []);
    await broker.publish(deviceTopic(B.id, 'cmd'), new TextEncoder().encode('{}'));
    await broker.publish(bundleBlocksTopic(BUNDLE), new Uint8Array(4));
    await settle();
    assert.deepEqual(seen.sort(), [bundleBlocksTopic(BUNDLE), deviceTopic(B.id, 'cmd')].sort());
  });

  it("refuses subscriptions that reach other devices or $SYS, grants A's own cmd (THREATS 28)", async () => {
    const a = await connectAs(A);
    for (const filter of [
      deviceTopic(B.id, 'cmd'),
      'fleet/v1/#',
      '#',
      '+/v1/dev/+/cmd',
      'fleet/v1/dev/+/telemetry',
      '$SYS/#',
    ]) {
      // SUBACK 0x80: mqtt.js reports the refused grant as a subscribe error
      await assert.rejects(a.subscribeAsync(filter, { qos: 1 }), /Subscribe error/, filter);
    }
    const own = await a.subscribeAsync(deviceTopic(A.id, 'cmd'), { qos: 1 });
    assert.equal(own[0]?.qos, 1);
  });
});
