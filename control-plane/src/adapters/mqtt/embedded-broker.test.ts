/**
 * The embedded broker's identity and ACLs, with real MQTT clients (THREATS
 * 27-30): every refusal is checked against a positive control, so a test
 * cannot pass merely because nothing was delivered at all.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { IClientOptions } from 'mqtt';
import { deviceTopic, bundleBlocksTopic } from '@fleet/protocol';
import {
  collect,
  credential,
  eventWithin,
  settle,
  startTestBroker,
  until,
  type TestBroker,
  type TestDevice,
} from './__fixtures__/test-broker.ts';

let t: TestBroker;
const BUNDLE = 'ab'.repeat(32);
/** What the control plane receives through its in-process subscription. */
const received: { topic: string; payload: string }[] = [];
/** Sessions as `onClientConnection` reports them. */
const sessions: { deviceId: string; online: boolean }[] = [];

async function refusedConnect(options: IClientOptions): Promise<void> {
  await assert.rejects(
    t.connect(options),
    /Not authorized|Bad username or password|Identifier rejected|connack/i,
  );
}

let A: TestDevice;
let B: TestDevice;

before(async () => {
  t = await startTestBroker({
    onClientConnection: (deviceId, online) => sessions.push({ deviceId, online }),
  });
  A = await t.device('dev-a');
  B = await t.device('dev-b');
  await t.broker.subscribe('fleet/v1/dev/+/+', (topic, payload) => {
    received.push({ topic, payload: Buffer.from(payload).toString() });
    return Promise.resolve();
  });
});
after(() => t.close());

describe('embedded broker: identity', () => {
  it('accepts a device with a fresh credential of its own', async () => {
    const client = await t.connectAs(A);
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

  it("refuses a last will on another device's topic, or a retained will off `state` (THREATS 28)", async () => {
    const will = (topic: string, retain: boolean) => ({
      clientId: A.id,
      username: A.id,
      password: credential(A),
      will: { topic, payload: Buffer.from('offline'), qos: 1 as const, retain },
    });
    await refusedConnect(will(deviceTopic(B.id, 'state'), true));
    await refusedConnect(will(deviceTopic(A.id, 'evt'), true));
    const own = await t.connect(will(deviceTopic(A.id, 'state'), true)); // positive control
    assert.equal(own.connected, true);
  });

  it('refuses, and disconnects, a revoked device', async () => {
    const C = await t.device('dev-c');
    const client = await t.connectAs(C);
    C.revoked = true;
    const closed = eventWithin(client, 'close', 2000);
    t.broker.disconnect(C.id);
    await closed;
    await refusedConnect({ clientId: C.id, username: C.id, password: credential(C) });
  });

  it('reports a takeover as offline then online, and disconnects the newest session', async () => {
    const D = await t.device('dev-d');
    const first = await t.connectAs(D);
    const firstClosed = eventWithin(first, 'close', 2000);
    const second = await t.connectAs(D); // [MQTT-3.1.4-2]: the first session is closed
    await firstClosed;
    const secondClosed = eventWithin(second, 'close', 2000);
    t.broker.disconnect(D.id);
    await secondClosed;
    const ofD = () => sessions.filter((s) => s.deviceId === D.id).map((s) => s.online);
    await until(() => ofD().length === 4, 2000, "D's four session events");
    assert.deepEqual(ofD(), [true, false, true, false]);
  });
});

describe('embedded broker: topics', () => {
  it("A's publishes to B's cmd and to bundle blocks never arrive; the control plane's do (THREATS 28, 30)", async () => {
    const b = await t.connectAs(B);
    await b.subscribeAsync([deviceTopic(B.id, 'cmd'), bundleBlocksTopic(BUNDLE)], { qos: 1 });
    const seen = collect(b);
    const a = await t.connectAs(A);
    a.publish(deviceTopic(B.id, 'cmd'), 'forged', { qos: 0 });
    a.publish(bundleBlocksTopic(BUNDLE), 'forged', { qos: 0, retain: true });
    await settle();
    assert.deepEqual(seen, []);
    await t.broker.publish(deviceTopic(B.id, 'cmd'), new TextEncoder().encode('{}'));
    await t.broker.publish(bundleBlocksTopic(BUNDLE), new Uint8Array(4));
    await settle();
    assert.deepEqual(seen.sort(), [bundleBlocksTopic(BUNDLE), deviceTopic(B.id, 'cmd')].sort());
  });

  it("A's publishes on B's topics, on $SYS and outside fleet/ close A's connection; its own arrive", async () => {
    received.length = 0;
    const forged = [
      deviceTopic(B.id, 'state'),
      deviceTopic(B.id, 'telemetry'),
      deviceTopic(A.id, 'cmd'),
      '$SYS/broker/heartbeat',
      'elsewhere/topic',
    ];
    for (const topic of forged) {
      const a = await t.connectAs(A);
      const closed = eventWithin(a, 'close', 2000);
      a.publish(topic, 'forged', { qos: 0 });
      await closed; // aedes closes a client whose PUBLISH is refused
    }
    const a = await t.connectAs(A);
    await a.publishAsync(deviceTopic(A.id, 'telemetry'), 'own', { qos: 1 });
    const own = { topic: deviceTopic(A.id, 'telemetry'), payload: 'own' };
    await until(() => received.some((r) => r.payload === 'own'), 2000, "A's own telemetry");
    assert.deepEqual(
      received.filter((r) => r.payload !== 'offline'),
      [own],
    ); // 'offline': A's will
  });

  it('lets a device retain only its own state (THREATS 28, 30)', async () => {
    received.length = 0;
    const a = await t.connectAs(A);
    const closed = eventWithin(a, 'close', 2000);
    a.publish(deviceTopic(A.id, 'telemetry'), 'kept', { qos: 0, retain: true });
    await closed;
    const again = await t.connectAs(A);
    await again.publishAsync(deviceTopic(A.id, 'state'), 'online', { qos: 1, retain: true });
    await until(() => received.some((r) => r.payload === 'online'), 2000, "A's retained state");
    assert.deepEqual(
      received.filter((r) => r.payload !== 'offline'),
      [{ topic: deviceTopic(A.id, 'state'), payload: 'online' }],
    );
  });

  it("refuses subscriptions that reach other devices or $SYS, grants A's own cmd (THREATS 28)", async () => {
    const a = await t.connectAs(A);
    for (const filter of [
      deviceTopic(B.id, 'cmd'),
      'fleet/v1/#',
      '#',
      '+/#',
      '+/v1/dev/+/cmd',
      `+/v1/dev/${B.id}/cmd`,
      `fleet/+/dev/${A.id}/cmd`,
      `fleet/v1/+/${B.id}/cmd`,
      `fleet/v1/dev/${B.id}/#`,
      `fleet/v1/dev/${A.id}/#`,
      'fleet/v1/dev/+/telemetry',
      'fleet/v1/bundle/#',
      '$SYS/#',
      '$SYS/+/heartbeat',
    ]) {
      // SUBACK 0x80: mqtt.js reports the refused grant as a subscribe error
      await assert.rejects(a.subscribeAsync(filter, { qos: 1 }), /Subscribe error/, filter);
    }
    const own = await a.subscribeAsync(deviceTopic(A.id, 'cmd'), { qos: 1 });
    assert.equal(own[0]?.qos, 1);
    const blocks = await a.subscribeAsync('fleet/v1/bundle/+/blocks', { qos: 1 });
    assert.equal(blocks[0]?.qos, 1);
  });
});
