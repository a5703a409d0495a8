/**
 * The embedded broker under clients that misbehave on the wire, each checked
 * against a client that behaves (THREATS 31-33): an oversize packet drops only
 * its sender and never reaches a subscriber; a malformed Remaining Length
 * closes the connection; a device that stops reading is dropped while the
 * others keep receiving promptly.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { deviceTopic } from '@fleet/protocol';
import type { ConnectionDropReason } from './guarded-connection.ts';
import {
  collect,
  encode,
  eventWithin,
  nextBytes,
  settle,
  startTestBroker,
  until,
  within,
  type TestBroker,
} from './__fixtures__/test-broker.ts';

const KiB = 1024;
let t: TestBroker;
const drops: ConnectionDropReason[] = [];
/** Payload sizes of the telemetry the control plane receives, by topic. */
const telemetry: { topic: string; sizeBytes: number }[] = [];

before(async () => {
  t = await startTestBroker({ onConnectionDropped: ({ reason }) => drops.push(reason) });
  await t.broker.subscribe('fleet/v1/dev/+/telemetry', (topic, payload) => {
    telemetry.push({ topic, sizeBytes: payload.length });
    return Promise.resolve();
  });
});
after(() => t.close());

/** The raw client subscribes to its own cmd at QoS 0 and reads the SUBACK. */
async function rawSubscribe(socket: Socket, topic: string): Promise<void> {
  const suback = nextBytes(socket, 5);
  socket.write(encode({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 0 }] }));
  // SUBACK, Remaining Length 3, packet id 1, granted QoS 0 [MQTT-3.9.3]
  assert.deepEqual([...(await suback)], [0x90, 0x03, 0x00, 0x01, 0x00]);
}

describe('embedded broker: packet size (THREATS 31)', () => {
  it('drops a 300 KiB PUBLISH and only its sender; a 200 KiB one and other clients get through', async () => {
    const A = await t.device('dev-big');
    const B = await t.device('dev-other');
    const a = await t.connectAs(A);
    const b = await t.connectAs(B);
    await b.subscribeAsync(deviceTopic(B.id, 'cmd'), { qos: 1 });

    await a.publishAsync(deviceTopic(A.id, 'telemetry'), Buffer.alloc(200 * KiB), { qos: 1 });
    await until(() => telemetry.length === 1, 2000, 'the 200 KiB control message');

    const closed = eventWithin(a, 'close', 2000);
    a.publish(deviceTopic(A.id, 'telemetry'), Buffer.alloc(300 * KiB), { qos: 0 });
    await closed;
    assert.deepEqual(drops, ['oversize']);

    await b.publishAsync(deviceTopic(B.id, 'telemetry'), 'still here', { qos: 1 });
    await t.broker.publish(deviceTopic(B.id, 'cmd'), new Uint8Array(8));
    await until(() => collect(b).length === 1 && telemetry.length === 2, 2000, "B's messages");
    await settle();
    assert.deepEqual(telemetry, [
      { topic: deviceTopic(A.id, 'telemetry'), sizeBytes: 200 * KiB },
      { topic: deviceTopic(B.id, 'telemetry'), sizeBytes: 'still here'.length },
    ]);
  });

  it('closes a connection whose Remaining Length runs past 4 bytes [MQTT-2.2.3]', async () => {
    drops.length = 0;
    const socket = await t.rawConnect(await t.device('dev-malformed'));
    const closed = eventWithin(socket, 'close', 2000);
    socket.write(Uint8Array.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]));
    await closed;
    assert.deepEqual(drops, ['malformed-length']);
  });
});

describe('embedded broker: slow consumers (THREATS 32)', () => {
  it('drops a device that stops reading; another keeps receiving promptly', async () => {
    drops.length = 0;
    const S = await t.device('dev-stalled');
    const B = await t.device('dev-reading');
    const stalled = await t.rawConnect(S);
    await rawSubscribe(stalled, deviceTopic(S.id, 'cmd'));
    stalled.pause(); // reads nothing more: the kernel buffers fill, then the broker's
    const b = await t.connectAs(B);
    await b.subscribeAsync(deviceTopic(B.id, 'cmd'), { qos: 1 });

    const block = new Uint8Array(64 * KiB);
    const slowest = { ms: 0 };
    // At most 64 MiB: far past the 4 MiB cap plus what loopback buffers hold.
    for (let i = 0; i < 1024 && !drops.includes('slow-consumer'); i += 1) {
      await within(
        t.broker.publish(deviceTopic(S.id, 'cmd'), block, { qos: 0 }),
        1000,
        `block ${i}`,
      );
      if (i % 32 === 0) await timedDelivery(b, B.id, slowest);
    }
    assert.deepEqual(drops, ['slow-consumer']);
    await timedDelivery(b, B.id, slowest);
    assert.ok(slowest.ms < 1000, `B waited ${slowest.ms} ms for a command`);

    const closed = eventWithin(stalled, 'close', 2000);
    stalled.resume(); // reads what was sent, then finds the connection closed
    stalled.on('error', () => undefined); // ECONNRESET is expected here
    await closed;
  });
});

/** Sends B a command and records how long it took to arrive. */
async function timedDelivery(
  b: Parameters<typeof collect>[0],
  deviceId: string,
  slowest: { ms: number },
) {
  const before = collect(b).length;
  const started = Date.now();
  await within(t.broker.publish(deviceTopic(deviceId, 'cmd'), new Uint8Array(8)), 1000, 'cmd to B');
  await until(() => collect(b).length > before, 2000, 'B receives its command');
  slowest.ms = Math.max(slowest.ms, Date.now() - started);
}
