import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { testKeys } from '../__fixtures__/trust.ts';
import { assertRejected as refusal } from '../__fixtures__/refusals.ts';
import { toBase64, utf8 } from '../encoding/bytes.ts';
import { signEnvelope, verifyThreshold, type ThresholdRule } from './envelope.ts';

const TYPE = 'application/vnd.fleet.test+json';
const payload = utf8('{"hello":"fleet"}');

async function setup() {
  const [a, b, c, other] = await testKeys(100, 4);
  const keys = new Map([a!, b!, c!, other!].map((k) => [k.keyId, k.publicKey]));
  const rule: ThresholdRule = {
    payloadType: TYPE,
    keys,
    roleKeyIds: [a!.keyId, b!.keyId, c!.keyId],
    threshold: 2,
    role: 'test',
  };
  return { a: a!, b: b!, c: c!, other: other!, rule };
}

describe('signed envelopes', () => {
  it('accepts a threshold of distinct role keys and returns the exact payload', async () => {
    const { a, c, rule } = await setup();
    const result = await verifyThreshold(signEnvelope(TYPE, payload, [a, c]), rule);
    assert.deepEqual(result.payload, payload);
    assert.deepEqual(result.signedBy, [a.keyId, c.keyId]);
  });

  it('refuses signatures below the threshold', async () => {
    const { a, rule } = await setup();
    await refusal(verifyThreshold(signEnvelope(TYPE, payload, [a]), rule), 'SIGNATURE_THRESHOLD');
  });

  it('counts one key signing twice once (THREATS 3)', async () => {
    const { a, rule } = await setup();
    await refusal(
      verifyThreshold(signEnvelope(TYPE, payload, [a, a]), rule),
      'SIGNATURE_THRESHOLD',
    );
  });

  it('counts one public key listed under two ids once (THREATS 3)', async () => {
    const { a, rule } = await setup();
    const alias = 'f'.repeat(64);
    const keys = new Map(rule.keys);
    keys.set(alias, a.publicKey);
    const envelope = signEnvelope(TYPE, payload, [a, { keyId: alias, secretKey: a.secretKey }]);
    await refusal(
      verifyThreshold(envelope, { ...rule, keys, roleKeyIds: [...rule.roleKeyIds, alias] }),
      'SIGNATURE_THRESHOLD',
    );
  });

  it('does not count a known key of another role (THREATS 4)', async () => {
    const { a, other, rule } = await setup();
    await refusal(
      verifyThreshold(signEnvelope(TYPE, payload, [a, other]), rule),
      'SIGNATURE_THRESHOLD',
    );
  });

  it('refuses a valid signature over a different payload', async () => {
    const { a, b, rule } = await setup();
    const envelope = signEnvelope(TYPE, payload, [a, b]);
    envelope.payload = toBase64(utf8('{"hello":"fleet","extra":1}'));
    await refusal(verifyThreshold(envelope, rule), 'SIGNATURE_THRESHOLD');
  });

  it('refuses a signature made for another payload type (role confusion)', async () => {
    const { a, b, rule } = await setup();
    const envelope = signEnvelope('application/vnd.fleet.other+json', payload, [a, b]);
    await refusal(verifyThreshold(envelope, rule), 'MALFORMED');
    envelope.payloadType = TYPE; // relabelled: the signatures no longer hold
    await refusal(verifyThreshold(envelope, rule), 'SIGNATURE_THRESHOLD');
  });

  it('ignores garbage signatures and still counts the good ones', async () => {
    const { a, b, rule } = await setup();
    const envelope = signEnvelope(TYPE, payload, [a, b]);
    envelope.signatures.unshift({ keyid: a.keyId, sig: 'AAAA' });
    const result = await verifyThreshold(envelope, rule);
    assert.deepEqual(result.signedBy, [a.keyId, b.keyId]);
  });
});
