/**
 * Persistent sessions (clean:false) on the embedded broker: queued QoS 1
 * messages reach a device that comes back (THREATS 34), and a restored or
 * queued session never gives a device more than `canSubscribe` would
 * (THREATS 28), nor outlives its revocation.
 *
 * aedes restores a session's subscriptions through authorizeSubscribe again,
 * but it also stores every filter of a SUBSCRIBE packet in which one filter was
 * granted, and queues matching messages for it: without the broker's guards, a
 * refused `fleet/v1/dev/B/cmd` sent beside A's own cmd delivers B's commands
 * to A at its next reconnect.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { deviceTopic } from '@fleet/protocol';
import {
  collect,
  credential,
  settle,
  startTestBroker,
  until,
  type TestBroker,
  type TestDevice,
} from './__fixtures__/test-broker.ts';

let t: TestBroker;
let B: TestDevice;
const persistent = { clean: false } as const;
const bytes = (text: string) => new TextEncoder().encode(text);

before(async () => {
  t = await startTestBroker();
  B = await t.device('dev-b');
});
after(() => t.close());

describe('embedded broker: persistent sessions', () => {
  it('delivers a QoS 1 command queued while the device was away (THREATS 34)', async () => {
    const A = await t.device('dev-a1');
    const first = await t.connectAs(A, persistent);
    await first.subscribeAsync(deviceTopic(A.id, 'cmd'), { qos: 1 });
    await first.endAsync();
    await t.broker.publish(deviceTopic(A.id, 'cmd'), bytes('queued'), { qos: 1 });

    const back = await t.connectAs(A, persistent);
    await until(() => collect(back).length > 0, 2000, 'the queued command');
    assert.deepEqual(collect(back), [deviceTopic(A.id, 'cmd')]);
  });

  it('never hands A the commands of B through a stored session (THREATS 28)', async () => {
    const A = await t.device('dev-a2');
    const first = await t.connectAs(A, persistent);
    // One SUBSCRIBE: own cmd granted, the others refused (SUBACK 1, 128, 128).
    const filters = [deviceTopic(A.id, 'cmd'), deviceTopic(B.id, 'cmd'), 'fleet/v1/#'];
    await assert.rejects(first.subscribeAsync(filters, { qos: 1 }), /Subscribe error/);
    await t.broker.publish(deviceTopic(B.id, 'cmd'), bytes('for B, A online'), { qos: 1 });
    await settle();
    assert.deepEqual(collect(first), []);
    await first.endAsync();

    await t.broker.publish(deviceTopic(B.id, 'cmd'), bytes('for B, A away'), { qos: 1 });
    await t.broker.publish(deviceTopic(A.id, 'cmd'), bytes('for A'), { qos: 1 });
    const back = await t.connectAs(A, persistent);
    await until(() => collect(back).length > 0, 2000, "A's own queued command");
    await settle();
    assert.deepEqual(collect(back), [deviceTopic(A.id, 'cmd')]);
  });

  it('refuses a revoked device its stored session and queued messages', async () => {
    const C = await t.device('dev-c');
    const first = await t.connectAs(C, persistent);
    await first.subscribeAsync(deviceTopic(C.id, 'cmd'), { qos: 1 });
    await first.endAsync();
    await t.broker.publish(deviceTopic(C.id, 'cmd'), bytes('queued'), { qos: 1 });
    C.revoked = true;
    await assert.rejects(
      t.connect({ clientId: C.id, username: C.id, password: credential(C), ...persistent }),
      /Not authorized/,
    );
  });
});
