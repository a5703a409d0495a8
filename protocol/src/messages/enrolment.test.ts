/**
 * Enrolment requests: a valid one verifies; each way of getting one wrong is
 * refused with its code, naming the field.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fromBase64, fromUtf8, toBase64, utf8 } from '../encoding/bytes.ts';
import { NOW_MS, testKey } from '../__fixtures__/trust.ts';
import { assertRejected } from '../__fixtures__/refusals.ts';
import {
  ENROLMENT_SKEW_MS,
  signEnrolmentRequest,
  verifyEnrolmentRequest,
  type Tags,
} from './enrolment.ts';

const TOKEN = `enr_${'A'.repeat(43)}`;

async function request(overrides: { tags?: Tags; nowMs?: number; keyNumber?: number } = {}) {
  const key = await testKey(overrides.keyNumber ?? 40);
  return signEnrolmentRequest({
    token: TOKEN,
    deviceId: 'dev-1',
    publicKey: key.publicKey,
    hardware: 'rpi4',
    tags: overrides.tags ?? { site: 'berlin' },
    agentVersion: '0.1.0',
    nowMs: overrides.nowMs ?? NOW_MS,
    signer: key,
  });
}

/** Re-encodes the envelope with its payload JSON changed, keeping the old signature. */
function tamper(bytes: Uint8Array, edit: (payload: Record<string, unknown>) => void): Uint8Array {
  const envelope = JSON.parse(fromUtf8(bytes)) as { payload: string };
  const payload = JSON.parse(fromUtf8(fromBase64(envelope.payload))) as Record<string, unknown>;
  edit(payload);
  envelope.payload = toBase64(utf8(JSON.stringify(payload)));
  return utf8(JSON.stringify(envelope));
}

describe('enrolment request', () => {
  it('verifies and returns the request and the key', async () => {
    const { request: r, publicKey } = await verifyEnrolmentRequest(await request(), NOW_MS);
    assert.equal(r.deviceId, 'dev-1');
    assert.deepEqual(r.tags, { site: 'berlin' });
    assert.deepEqual(publicKey, (await testKey(40)).publicKey);
  });

  it('refuses a request whose fields were changed after signing', async () => {
    const bytes = tamper(await request(), (p) => (p.deviceId = 'dev-2'));
    await assertRejected(verifyEnrolmentRequest(bytes, NOW_MS), 'SIGNATURE_THRESHOLD');
  });

  it('refuses a key swapped for another (no proof of possession)', async () => {
    const other = await testKey(41);
    const bytes = tamper(await request(), (p) => (p.publicKey = toBase64(other.publicKey)));
    await assertRejected(verifyEnrolmentRequest(bytes, NOW_MS), 'SIGNATURE_THRESHOLD');
  });

  it('names the bad field', async () => {
    const bytes = tamper(await request(), (p) => (p.hardware = 'Bad Class'));
    await assert.rejects(verifyEnrolmentRequest(bytes, NOW_MS), /MALFORMED.*hardware/);
    const extra = tamper(await request(), (p) => (p.admin = true));
    await assertRejected(verifyEnrolmentRequest(extra, NOW_MS), 'MALFORMED');
  });

  it('refuses a short key, too many tags and oversize input', async () => {
    const short = tamper(await request(), (p) => (p.publicKey = toBase64(new Uint8Array(16))));
    await assert.rejects(verifyEnrolmentRequest(short, NOW_MS), /MALFORMED.*publicKey/);
    const tags = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v']));
    await assert.rejects(request({ tags }), /at most 16 tags/);
    await assertRejected(verifyEnrolmentRequest(new Uint8Array(9000), NOW_MS), 'TOO_LARGE');
    await assertRejected(verifyEnrolmentRequest(utf8('{nope'), NOW_MS), 'MALFORMED');
  });

  it('refuses a request issued too far from the clock', async () => {
    const old = await request({ nowMs: NOW_MS - ENROLMENT_SKEW_MS - 1000 });
    await assertRejected(verifyEnrolmentRequest(old, NOW_MS), 'EXPIRED');
    await verifyEnrolmentRequest(
      await request({ nowMs: NOW_MS - ENROLMENT_SKEW_MS + 1000 }),
      NOW_MS,
    );
  });
});
