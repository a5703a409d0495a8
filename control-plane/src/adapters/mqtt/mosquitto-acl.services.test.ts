/**
 * The documented Mosquitto setup (control-plane/docs/external-broker/) gives
 * devices exactly the topics of @fleet/protocol canPublish / canSubscribe
 * (THREATS 27-31, 34), checked against a private Mosquitto with real mqtt.js
 * clients. Skipped, visibly, where Mosquitto is not installed.
 *
 * Mosquitto 2.0 grants every SUBSCRIBE in its SUBACK and applies read ACLs
 * when it delivers, so each refusal here is a non-delivery, checked against a
 * positive control that the same message did go where it may.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { bundleBlocksTopic, deviceTopic } from '@fleet/protocol';
import {
  mosquittoMissing,
  startMosquitto,
  type MosquittoProcess,
} from './__fixtures__/mosquitto-process.ts';

const A = 'dev-a';
const B = 'dev-b';
const CONTROL_PLANE = 'fleet.control-plane';
const OBSERVER = 'fleet.test-observer'; // reads $SYS: the positive control for $SYS
const PASSWORDS: Record<string, string> = {
  [A]: 'password-a',
  [B]: 'password-b',
  [CONTROL_PLANE]: 'password-cp',
  [OBSERVER]: 'password-observer',
};
const BUNDLE = 'cd'.repeat(32);
const SETTLE_MS = 500;
const KiB = 1024;

const missing = mosquittoMissing();
let broker: MosquittoProcess | undefined;
const clients: MqttClient[] = [];

before(async () => {
  if (missing) return;
  broker = await startMosquitto({
    users: PASSWORDS,
    extraAcl: [`user ${OBSERVER}`, 'topic read $SYS/#'],
    extraConf: ['sys_interval 1'],
  });
});
after(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
  await broker?.stop();
});

/** Skips the test, visibly, when there is no Mosquitto; else its port. */
function portOrSkip(t: TestContext): number | null {
  if (missing || !broker) {
    t.skip(missing ?? 'mosquitto did not start');
    return null;
  }
  return broker.port;
}

async function connect(port: number, user: string, extra: IClientOptions = {}) {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 3000,
    clientId: user,
    username: user,
    password: PASSWORDS[user] ?? 'wrong',
    ...extra,
  });
  clients.push(client);
  return client;
}

function collect(client: MqttClient): string[] {
  const seen: string[] = [];
  client.on('message', (topic) => seen.push(topic));
  return seen;
}
const settle = (ms = SETTLE_MS) => new Promise((r) => setTimeout(r, ms));

describe('documented Mosquitto ACL', () => {
  it('refuses anonymous clients and wrong passwords (THREATS 27)', async (t) => {
    const port = portOrSkip(t);
    if (port === null) return;
    await assert.rejects(connect(port, A, { username: undefined, password: undefined }));
    await assert.rejects(connect(port, A, { password: 'not-a-password' }));
  });

  it('lets A publish its own topics only; nobody but the control plane writes cmd or blocks (THREATS 28, 30)', async (t) => {
    const port = portOrSkip(t);
    if (port === null) return;
    const cp = await connect(port, CONTROL_PLANE);
    await cp.subscribeAsync(['fleet/v1/dev/+/state', 'fleet/v1/dev/+/telemetry'], { qos: 1 });
    const cpSeen = collect(cp);
    const b = await connect(port, B);
    await b.subscribeAsync(
      [deviceTopic(B, 'cmd'), deviceTopic(B, 'blocks'), bundleBlocksTopic(BUNDLE)],
      {
        qos: 1,
      },
    );
    const bSeen = collect(b);

    const a = await connect(port, A);
    for (const topic of [
      deviceTopic(B, 'state'),
      deviceTopic(B, 'telemetry'),
      deviceTopic(B, 'cmd'),
      deviceTopic(B, 'blocks'),
      bundleBlocksTopic(BUNDLE),
    ]) {
      await a.publishAsync(topic, 'forged', { qos: 1, retain: topic.endsWith('blocks') });
    }
    await a.publishAsync(deviceTopic(A, 'state'), 'online', { qos: 1, retain: true });
    await settle();
    assert.deepEqual(cpSeen, [deviceTopic(A, 'state')]); // only A's own, of A's publishes
    assert.deepEqual(bSeen, []);

    await cp.publishAsync(deviceTopic(B, 'cmd'), 'cmd', { qos: 1 });
    await cp.publishAsync(bundleBlocksTopic(BUNDLE), 'block', { qos: 1 });
    await cp.publishAsync(deviceTopic(B, 'blocks'), 'repair', { qos: 1 });
    await settle();
    assert.deepEqual(
      bSeen.sort(),
      [bundleBlocksTopic(BUNDLE), deviceTopic(B, 'blocks'), deviceTopic(B, 'cmd')].sort(),
    );
  });

  it("drops A's last will on B's state when it fires; B's own will arrives (THREATS 28)", async (t) => {
    const port = portOrSkip(t);
    if (port === null) return;
    const cp = await connect(port, CONTROL_PLANE);
    await cp.subscribeAsync('fleet/v1/dev/+/state', { qos: 1 });
    const payloads: string[] = [];
    cp.on('message', (_topic, payload, packet) => {
      if (!packet.retain) payloads.push(payload.toString()); // not A's earlier 'online'
    });
    const will = (payload: string) => ({
      will: { topic: deviceTopic(B, 'state'), payload: Buffer.from(payload), qos: 1 as const },
    });
    const a = await connect(port, A, will('forged by A')); // Mosquitto 2.0 accepts the CONNECT
    const b = await connect(port, B, will('B offline'));
    a.stream.destroy(); // no DISCONNECT: the wills fire [MQTT-3.1.2-8]
    b.stream.destroy();
    await settle();
    assert.deepEqual(payloads, ['B offline']);
  });

  it("never delivers B's cmd, other devices' topics or $SYS to A, whatever A subscribes (THREATS 28)", async (t) => {
    const port = portOrSkip(t);
    if (port === null) return;
    const observer = await connect(port, OBSERVER);
    await observer.subscribeAsync('$SYS/#', { qos: 0 });
    const sys = collect(observer);
    const b = await connect(port, B);
    await b.subscribeAsync(deviceTopic(B, 'cmd'), { qos: 1 });
    const bSeen = collect(b);
    const a = await connect(port, A);
    const filters = [deviceTopic(B, 'cmd'), 'fleet/v1/#', '#', `+/v1/dev/${B}/cmd`, '$SYS/#'];
    await a.subscribeAsync([...filters, deviceTopic(A, 'cmd')], { qos: 1 });
    const aSeen = collect(a);

    const cp = await connect(port, CONTROL_PLANE);
    await cp.publishAsync(deviceTopic(B, 'cmd'), 'for B', { qos: 1 });
    await cp.publishAsync(deviceTopic(A, 'cmd'), 'for A', { qos: 1 });
    await b.publishAsync(deviceTopic(B, 'telemetry'), 'B telemetry', { qos: 1 });
    await settle(1500); // sys_interval 1: $SYS updates arrive meanwhile
    assert.deepEqual(bSeen, [deviceTopic(B, 'cmd')]);
    assert.ok(sys.length > 0, 'the observer receives $SYS');
    assert.deepEqual(aSeen, [deviceTopic(A, 'cmd')]);
  });

  it('lets the control plane, not a device, read devices through a shared subscription', async (t) => {
    const port = portOrSkip(t);
    if (port === null) return;
    const shared = (group: string) => `$share/${group}/fleet/v1/dev/+/telemetry`;
    const cp = await connect(port, CONTROL_PLANE);
    await cp.subscribeAsync(shared('control-plane'), { qos: 1 });
    const cpSeen = collect(cp);
    const a = await connect(port, A);
    await a.subscribeAsync(shared('devices'), { qos: 1 });
    const aSeen = collect(a);
    const b = await connect(port, B);
    await b.publishAsync(deviceTopic(B, 'telemetry'), 'B telemetry', { qos: 1 });
    await settle();
    assert.deepEqual(cpSeen, [deviceTopic(B, 'telemetry')]);
    assert.deepEqual(aSeen, []);
  });

  it("keeps a restored session to A's own topics, and delivers what was queued (THREATS 28, 34)", async (t) => {
    const port = portOrSkip(t);
    if (port === null) return;
    const first = await connect(port, A, { clean: false });
    await first.subscribeAsync([deviceTopic(A, 'cmd'), 'fleet/v1/#'], { qos: 1 });
    await first.endAsync();
    const cp = await connect(port, CONTROL_PLANE);
    await cp.publishAsync(deviceTopic(B, 'cmd'), 'for B', { qos: 1 });
    await cp.publishAsync(deviceTopic(A, 'cmd'), 'for A', { qos: 1 });

    const back = mqtt.connect(`mqtt://127.0.0.1:${port}`, {
      protocolVersion: 4,
      reconnectPeriod: 0,
      clean: false,
      clientId: A,
      username: A,
      password: PASSWORDS[A],
    });
    clients.push(back);
    const seen = collect(back); // before CONNACK: queued messages follow at once
    await settle();
    assert.deepEqual(seen, [deviceTopic(A, 'cmd')]);
  });

  it("does not let A take B's client id (THREATS 29)", async (t) => {
    const port = portOrSkip(t);
    if (port === null) return;
    const b = await connect(port, B);
    let bClosed = false;
    b.once('close', () => (bClosed = true));
    await connect(port, A, { clientId: B }); // use_username_as_clientid: becomes dev-a
    await settle();
    assert.equal(bClosed, false);
    await connect(port, B); // positive control: B's own id does take B's session over
    await settle();
    assert.equal(bClosed, true);
  });

  it('disconnects a client sending a packet over 256 KiB (THREATS 31)', async (t) => {
    const port = portOrSkip(t);
    if (port === null) return;
    const cp = await connect(port, CONTROL_PLANE);
    await cp.subscribeAsync('fleet/v1/dev/+/telemetry', { qos: 1 });
    const sizes: number[] = [];
    cp.on('message', (_topic, payload) => sizes.push(payload.length));
    const a = await connect(port, A);
    await a.publishAsync(deviceTopic(A, 'telemetry'), Buffer.alloc(200 * KiB), { qos: 1 });
    const closed = new Promise<void>((resolve) => a.once('close', () => resolve()));
    a.publish(deviceTopic(A, 'telemetry'), Buffer.alloc(300 * KiB), { qos: 0 });
    await Promise.race([closed, settle(2000).then(() => assert.fail('A was not disconnected'))]);
    await settle();
    assert.deepEqual(sizes, [200 * KiB]);
  });
});
