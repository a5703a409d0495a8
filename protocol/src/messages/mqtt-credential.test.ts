import { describe, it } from 'node:test';
import { testKey } from '../__fixtures__/trust.ts';
import { assertRejected } from '../__fixtures__/refusals.ts';
import { signMqttCredential, verifyMqttCredential } from './mqtt-credential.ts';

const NOW = Date.parse('2026-11-26T12:00:00Z');

describe('MQTT credentials', () => {
  it('verifies a fresh credential bound to the device and client id', async () => {
    const k = await testKey(500);
    const password = signMqttCredential({
      deviceId: 'dev-1',
      clientId: 'dev-1',
      nowMs: NOW,
      signer: k,
    });
    await verifyMqttCredential(password, {
      deviceId: 'dev-1',
      clientId: 'dev-1',
      publicKey: k.publicKey,
      nowMs: NOW + 1000,
    });
  });

  it('refuses another id, another key, expiry, a future issue time and an overlong lifetime', async () => {
    const k = await testKey(501);
    const other = await testKey(502);
    const ok = { deviceId: 'dev-1', clientId: 'dev-1', publicKey: k.publicKey, nowMs: NOW };
    const sign = (o: Partial<Parameters<typeof signMqttCredential>[0]> = {}) =>
      signMqttCredential({ deviceId: 'dev-1', clientId: 'dev-1', nowMs: NOW, signer: k, ...o });
    await assertRejected(verifyMqttCredential(sign({ clientId: 'dev-2' }), ok), 'DEVICE_MISMATCH');
    await assertRejected(verifyMqttCredential(sign({ signer: other }), ok), 'SIGNATURE_THRESHOLD');
    await assertRejected(
      verifyMqttCredential(sign(), { ...ok, nowMs: NOW + 11 * 60_000 }),
      'EXPIRED',
    );
    await assertRejected(verifyMqttCredential(sign({ nowMs: NOW + 10 * 60_000 }), ok), 'EXPIRED');
    await assertRejected(verifyMqttCredential(sign({ lifetimeMs: 24 * 3600_000 }), ok), 'EXPIRED');
    await assertRejected(
      verifyMqttCredential(new TextEncoder().encode('hunter2'), ok),
      'MALFORMED',
    );
  });

  it('accepts the stored key id in place of hashing the key, and only the right one', async () => {
    const k = await testKey(503);
    const other = await testKey(504);
    const password = signMqttCredential({
      deviceId: 'dev-1',
      clientId: 'dev-1',
      nowMs: NOW,
      signer: k,
    });
    const expected = { deviceId: 'dev-1', clientId: 'dev-1', publicKey: k.publicKey, nowMs: NOW };
    await verifyMqttCredential(password, { ...expected, keyId: k.keyId });
    // A credential signed by another key is refused whichever key id the caller passes.
    const forged = signMqttCredential({
      deviceId: 'dev-1',
      clientId: 'dev-1',
      nowMs: NOW,
      signer: other,
    });
    await assertRejected(
      verifyMqttCredential(forged, { ...expected, keyId: other.keyId }),
      'SIGNATURE_THRESHOLD',
    );
    await assertRejected(
      verifyMqttCredential(forged, { ...expected, keyId: k.keyId }),
      'SIGNATURE_THRESHOLD',
    );
  });
});
