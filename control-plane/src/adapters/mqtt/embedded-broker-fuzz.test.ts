/**
 * Seeded fuzzing of the embedded broker over raw sockets (THREATS 33): random
 * bytes, random fixed headers, and valid packets with bytes flipped, sent
 * before and after an accepted CONNECT. The broker must survive all of it (an
 * uncaught exception fails the run) and serve a well-behaved device after.
 * The seed is in the test name: a failure replays exactly.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Socket } from 'node:net';
import { deviceTopic } from '@fleet/protocol';
import {
  collect,
  credential,
  encode,
  openSocket,
  seededRandom,
  startTestBroker,
  until,
  type TestBroker,
  type TestDevice,
} from './__fixtures__/test-broker.ts';

const SEED = 0x5eed_2024;
const CASES = 96;
const PARALLEL = 8;
/** How long a case's socket stays open for the broker to react. */
const CASE_MS = 150;

let t: TestBroker;
let F: TestDevice;
const telemetry: string[] = [];

before(async () => {
  t = await startTestBroker();
  F = await t.device('dev-fuzz');
  await t.broker.subscribe('fleet/v1/dev/+/telemetry', (topic) => {
    telemetry.push(topic);
    return Promise.resolve();
  });
});
after(() => t.close());

const random = seededRandom(SEED);
const int = (below: number) => Math.floor(random() * below);
const randomBytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));

/** Packets a device could send once connected, valid before mutation. */
function devicePackets(): Buffer[] {
  const own = deviceTopic(F.id, 'telemetry');
  return [
    encode({
      cmd: 'publish',
      topic: own,
      payload: randomBytes(int(300)),
      qos: 0,
      retain: false,
      dup: false,
    }),
    encode({
      cmd: 'publish',
      topic: own,
      payload: randomBytes(20),
      qos: 1,
      messageId: 1 + int(9),
      retain: false,
      dup: false,
    }),
    encode({
      cmd: 'subscribe',
      messageId: 2,
      subscriptions: [{ topic: deviceTopic(F.id, 'cmd'), qos: 1 }],
    }),
    encode({ cmd: 'unsubscribe', messageId: 3, unsubscriptions: ['fleet/v1/#'] }),
    encode({ cmd: 'puback', messageId: 4 }),
    encode({ cmd: 'pubrel', messageId: 5 }),
    encode({ cmd: 'pingreq' }),
  ];
}

function connectPacket(): Buffer {
  return encode({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 4,
    clean: int(2) === 0,
    keepalive: int(120),
    clientId: F.id,
    username: F.id,
    password: credential(F),
  });
}

/** Flips, drops or repeats a few bytes. */
function mutate(packet: Buffer): Buffer {
  const bytes = Buffer.from(packet);
  for (let n = 1 + int(3); n > 0; n -= 1) bytes[int(bytes.length)] = int(256);
  if (int(4) === 0) return bytes.subarray(0, int(bytes.length));
  if (int(4) === 0) return Buffer.concat([bytes, bytes.subarray(int(bytes.length))]);
  return bytes;
}

function mutatedStream(): Buffer {
  const valid = devicePackets();
  const parts = Array.from({ length: 1 + int(6) }, () => valid[int(valid.length)] as Buffer);
  return Buffer.concat(parts.map((p) => (int(2) === 0 ? mutate(p) : p)));
}

/** One fuzz case: what to send, and whether to complete CONNECT first. */
function fuzzCase(i: number): { connectFirst: boolean; bytes: Buffer } {
  switch (i % 5) {
    case 0: // noise
      return { connectFirst: false, bytes: randomBytes(1 + int(4096)) };
    case 1: {
      // a random fixed header announcing up to ~300 KiB, then noise
      const length = int(300 * 1024);
      const varint = [(length & 0x7f) | 0x80, ((length >> 7) & 0x7f) | 0x80, (length >> 14) & 0x7f];
      return {
        connectFirst: false,
        bytes: Buffer.concat([Buffer.from([int(256), ...varint]), randomBytes(int(2048))]),
      };
    }
    case 2: // a mutated CONNECT
      return { connectFirst: false, bytes: mutate(connectPacket()) };
    case 3: // CONNECT and mutated packets in one write, before CONNACK
      return { connectFirst: false, bytes: Buffer.concat([connectPacket(), mutatedStream()]) };
    default: // mutated packets from an accepted device, then noise
      return { connectFirst: true, bytes: Buffer.concat([mutatedStream(), randomBytes(int(64))]) };
  }
}

/** Sends one case; true when the broker closed the connection within CASE_MS. */
async function run(i: number): Promise<boolean> {
  const { connectFirst, bytes } = fuzzCase(i);
  const socket: Socket = connectFirst ? await t.rawConnect(F) : await openSocket(t.broker.port);
  socket.on('error', () => undefined); // resets are expected
  const closed = new Promise<boolean>((resolve) => {
    socket.once('close', () => resolve(true));
    setTimeout(() => resolve(false), CASE_MS);
  });
  socket.write(bytes);
  const byBroker = await closed;
  socket.destroy();
  return byBroker;
}

describe('embedded broker: fuzzing (THREATS 33)', () => {
  it(`survives ${CASES} garbage and mutated streams (seed ${SEED.toString(16)}) and serves a device after`, async () => {
    let closedByBroker = 0;
    for (let start = 0; start < CASES; start += PARALLEL) {
      const batch = Array.from({ length: PARALLEL }, (_, k) => run(start + k));
      closedByBroker += (await Promise.all(batch)).filter(Boolean).length;
    }
    // Not vacuous: most streams were refused, not just left unread.
    assert.ok(closedByBroker > CASES / 2, `only ${closedByBroker} of ${CASES} closed`);

    const good = await t.device('dev-good');
    const client = await t.connectAs(good);
    await client.subscribeAsync(deviceTopic(good.id, 'cmd'), { qos: 1 });
    await t.broker.publish(deviceTopic(good.id, 'cmd'), new Uint8Array(4));
    await client.publishAsync(deviceTopic(good.id, 'telemetry'), 'ok', { qos: 1 });
    await until(() => collect(client).length === 1, 2000, 'the command after fuzzing');
    await until(() => telemetry.includes(deviceTopic(good.id, 'telemetry')), 2000, 'telemetry');
  });
});
