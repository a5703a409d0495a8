/**
 * Device state from MQTT: a signed `state` message (retained, or the last
 * will) updates the device record; forged, foreign, replayed, malformed and
 * revoked-device messages change nothing and are refused with their code.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  MAX_DEVICE_MESSAGE_BYTES,
  signDeviceMessage,
  utf8,
  type Signer,
  type StateMessage,
} from '@fleet/protocol';
import { assertRejected, testKey } from '@fleet/protocol/testing';
import { startTestControlPlane, type TestControlPlane } from '../__fixtures__/control-plane.ts';

let t: TestControlPlane;
let device: { id: string; signer: Signer };
before(async () => {
  t = await startTestControlPlane();
  device = await t.enrolDevice({ id: 'sensor-1' });
});
after(() => t.close());

function state(ts: string, overrides: Partial<StateMessage> = {}): StateMessage {
  return {
    type: 'state',
    id: `state-${ts.replace(/[^0-9]/g, '')}`,
    schemaVersion: 1,
    ts,
    deviceId: device.id,
    online: true,
    agentVersion: '0.2.0',
    hardware: 'rpi4',
    model: { name: 'mnist-2nn', version: '1.2.0', release: 3, bundleId: 'ab'.repeat(32) },
    update: { state: 'idle' },
    ...overrides,
  };
}
const signed = (message: StateMessage, signer = device.signer, deviceId = device.id) =>
  utf8(JSON.stringify(signDeviceMessage({ deviceId, message, signer })));
const current = () => t.cp.devices.get(device.id);

describe('device state messages', () => {
  it('applies a signed state: online, agent version, running model', async () => {
    assert.equal(
      await t.cp.devices.onStateMessage(device.id, signed(state('2026-11-26T12:00:01Z'))),
      true,
    );
    const row = await current();
    assert.equal(row.online, true);
    assert.equal(row.agentVersion, '0.2.0');
    assert.equal(row.modelVersion, '1.2.0');
    assert.equal(row.modelRelease, 3);
    const view = (await (await t.call('GET', `/v1/devices/${device.id}`)).json()) as {
      status: string;
    };
    assert.equal(view.status, 'online');
  });

  it('applies the last will (online: false) and ignores a replayed older state', async () => {
    const will = state('2026-11-26T12:00:05Z', { online: false });
    assert.equal(await t.cp.devices.onStateMessage(device.id, signed(will)), true);
    assert.equal(
      await t.cp.devices.onStateMessage(device.id, signed(state('2026-11-26T12:00:01Z'))),
      false,
    );
    assert.equal((await current()).online, false);
  });

  it('refuses a state signed by another key or carried on another device’s topic', async () => {
    const before = await current();
    const forged = signed(state('2026-11-26T12:01:00Z'), await testKey(77));
    await assertRejected(t.cp.devices.onStateMessage(device.id, forged), 'BAD_SIGNATURE');
    const other = await t.enrolDevice({ id: 'sensor-2' });
    const theirs = utf8(
      JSON.stringify(
        signDeviceMessage({
          deviceId: other.id,
          message: { ...state('2026-11-26T12:01:00Z'), deviceId: other.id },
          signer: other.signer,
        }),
      ),
    );
    await assertRejected(t.cp.devices.onStateMessage(device.id, theirs), 'BAD_SIGNATURE');
    assert.deepEqual(await current(), before);
  });

  it('refuses malformed payloads and unknown or revoked devices', async () => {
    const before = await current();
    await assertRejected(t.cp.devices.onStateMessage(device.id, utf8('{"x":')), 'MALFORMED');
    await assertRejected(
      t.cp.devices.onStateMessage(device.id, new Uint8Array(MAX_DEVICE_MESSAGE_BYTES + 1)),
      'TOO_LARGE',
    );
    await assertRejected(
      t.cp.devices.onStateMessage('ghost', signed(state('2026-11-26T12:02:00Z'))),
      'NOT_FOUND',
    );
    assert.deepEqual(await current(), before);
    await t.call('POST', `/v1/devices/${device.id}/revoke`, { json: { reason: 'test' } });
    await assertRejected(
      t.cp.devices.onStateMessage(device.id, signed(state('2026-11-26T12:03:00Z'))),
      'REVOKED',
    );
  });
});
