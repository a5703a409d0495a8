import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import nacl from 'tweetnacl';
import { testKeys, type TestKey } from '../__fixtures__/trust.ts';
import { isFleetError } from '../errors.ts';
import { fromBase64, toBase64, utf8 } from '../encoding/bytes.ts';
import { canonicalJson } from '../encoding/json.ts';
import { preAuthEncoding, signEnvelope, type SignedEnvelope } from '../crypto/envelope.ts';
import { hasCanonicalScalar } from '../crypto/ed25519.ts';
import { MANIFEST_PAYLOAD_TYPE } from '../bundle/manifest.ts';
import { blocksRequest, health, patched, progress, state, wire } from './__fixtures__/examples.ts';
import { MAX_BLOCK_COUNT, UPDATE_STATES } from './common.ts';
import type {
  BlocksRequestMessage,
  DeviceMessage,
  HealthMessage,
  ProgressMessage,
  StateMessage,
} from './device-messages.ts';
import { MAX_CONTROL_MESSAGE_BYTES, MAX_DEVICE_MESSAGE_BYTES } from './parse.ts';
import {
  DEVICE_MESSAGE_PAYLOAD_TYPE,
  signDeviceMessage,
  verifyDeviceMessage,
} from './device-envelope.ts';
import { assertRejected as refused, malleate } from '../__fixtures__/refusals.ts';

let a: TestKey; // device dev-a
let b: TestKey; // device dev-b
before(async () => {
  [a, b] = (await testKeys(400, 2)) as [TestKey, TestKey];
});

const asA = () => ({ expectedDeviceId: 'dev-a', publicKey: a.publicKey });

/** An envelope of device-message type over any payload, signed by `signer`. */
function signRaw(payload: unknown, signer: TestKey): SignedEnvelope {
  return signEnvelope(DEVICE_MESSAGE_PAYLOAD_TYPE, canonicalJson(payload), [signer]);
}

describe('device-signed messages', () => {
  it('round-trip every device message type, from bytes and from an object', async () => {
    for (const message of [state(), progress(), health(), blocksRequest()] as DeviceMessage[]) {
      const envelope = signDeviceMessage({ deviceId: 'dev-a', message, signer: a });
      assert.equal(envelope.payloadType, DEVICE_MESSAGE_PAYLOAD_TYPE);
      assert.deepEqual(await verifyDeviceMessage(wire(envelope), asA()), message);
      assert.deepEqual(await verifyDeviceMessage(envelope, asA()), message);
    }
  });

  it('takes the key id from the caller when given, and refuses when it is not the key’s', async () => {
    const envelope = signDeviceMessage({ deviceId: 'dev-a', message: health(), signer: a });
    const withKeyId = { ...asA(), keyId: a.keyId };
    assert.deepEqual(await verifyDeviceMessage(wire(envelope), withKeyId), health());
    await refused(
      verifyDeviceMessage(wire(envelope), { ...asA(), keyId: b.keyId }),
      'BAD_SIGNATURE',
    );
  });

  it('signs the canonical JSON of { deviceId, message }', () => {
    const envelope = signDeviceMessage({ deviceId: 'dev-a', message: health(), signer: a });
    assert.deepEqual(
      fromBase64(envelope.payload),
      canonicalJson({ deviceId: 'dev-a', message: health() }),
    );
  });

  it('refuses a payload changed after signing, even into a valid message', async () => {
    const envelope = signDeviceMessage({ deviceId: 'dev-a', message: health(), signer: a });
    const payload = new TextDecoder().decode(fromBase64(envelope.payload));
    const forged = payload.replace('"errors":3', '"errors":0');
    assert.notEqual(forged, payload);
    await refused(
      verifyDeviceMessage({ ...envelope, payload: toBase64(utf8(forged)) }, asA()),
      'BAD_SIGNATURE',
    );
    const flipped = fromBase64(envelope.payload);
    flipped[10]! ^= 0x01;
    await refused(
      verifyDeviceMessage({ ...envelope, payload: toBase64(flipped) }, asA()),
      'BAD_SIGNATURE',
      /no valid signature by that device's key/,
    );
  });

  it("refuses a message signed by another device's key (replayed on A's topic)", async () => {
    const envelope = signDeviceMessage({ deviceId: 'dev-a', message: health(), signer: b });
    await refused(verifyDeviceMessage(wire(envelope), asA()), 'BAD_SIGNATURE');
  });

  it("refuses A's message replayed on B's topic: B's key does not verify it", async () => {
    const envelope = signDeviceMessage({ deviceId: 'dev-a', message: health(), signer: a });
    await refused(
      verifyDeviceMessage(wire(envelope), { expectedDeviceId: 'dev-b', publicKey: b.publicKey }),
      'BAD_SIGNATURE',
    );
  });

  it("refuses A's message verified as B with a key both hold (DEVICE_MISMATCH)", async () => {
    // A cloned device image, or a registry that looks keys up by key id: the
    // signature holds, and only the signed device id tells the devices apart.
    const envelope = signDeviceMessage({ deviceId: 'dev-a', message: health(), signer: a });
    await refused(
      verifyDeviceMessage(wire(envelope), { expectedDeviceId: 'dev-b', publicKey: a.publicKey }),
      'DEVICE_MISMATCH',
      /signed for device dev-a arrived as device dev-b/,
    );
  });

  it("refuses a state message whose inner deviceId is not the envelope's", async () => {
    const envelope = signRaw({ deviceId: 'dev-a', message: state('dev-b') }, a);
    await refused(
      verifyDeviceMessage(wire(envelope), asA()),
      'DEVICE_MISMATCH',
      /state message names device dev-b but is signed for dev-a/,
    );
    assert.throws(
      () => signDeviceMessage({ deviceId: 'dev-a', message: state('dev-b'), signer: a }),
      (e: unknown) => isFleetError(e, 'DEVICE_MISMATCH'),
    );
  });

  it('refuses an envelope with an extra field, from bytes and from an object', async () => {
    const envelope = { ...signDeviceMessage({ deviceId: 'dev-a', message: health(), signer: a }) };
    const extra = { ...envelope, sentAt: '2026-11-26T12:00:00Z' };
    await refused(verifyDeviceMessage(wire(extra), asA()), 'MALFORMED', /sentAt/);
    await refused(verifyDeviceMessage(extra, asA()), 'MALFORMED', /unknown field "sentAt"/);
    const sigExtra = structuredClone(envelope);
    Object.assign(sigExtra.signatures[0]!, { alg: 'ed25519' });
    await refused(verifyDeviceMessage(sigExtra, asA()), 'MALFORMED', /"signatures\.0\.alg"/);
  });

  it('refuses a malleated signature (S + L), which tweetnacl alone would accept', async () => {
    const envelope = signDeviceMessage({ deviceId: 'dev-a', message: health(), signer: a });
    const signature = fromBase64(envelope.signatures[0]!.sig);
    const malleated = malleate(signature);
    const signed = preAuthEncoding(envelope.payloadType, fromBase64(envelope.payload));
    assert.equal(nacl.sign.detached.verify(signed, malleated, a.publicKey), true);
    assert.equal(hasCanonicalScalar(malleated), false);
    const forged = { ...envelope, signatures: [{ keyid: a.keyId, sig: toBase64(malleated) }] };
    await refused(verifyDeviceMessage(forged, asA()), 'BAD_SIGNATURE');
  });

  it('parses nothing before the signature holds', async () => {
    // Neither JSON nor a message: an unsigned one fails on the signature, not the parse.
    const garbage = signEnvelope(DEVICE_MESSAGE_PAYLOAD_TYPE, utf8('{"deviceId":'), [b]);
    await refused(verifyDeviceMessage(garbage, asA()), 'BAD_SIGNATURE');
    const unsigned = { ...garbage, signatures: [] };
    await refused(verifyDeviceMessage(unsigned, asA()), 'BAD_SIGNATURE');
  });

  it('refuses a validly signed payload that is not a valid message, naming the field', async () => {
    const bad = { ...health(), errors: 500 };
    await refused(
      verifyDeviceMessage(wire(signRaw({ deviceId: 'dev-a', message: bad }, a)), asA()),
      'MALFORMED',
      /field "errors"/,
    );
    const extra = signRaw({ deviceId: 'dev-a', message: health(), round: 3 }, a);
    await refused(verifyDeviceMessage(extra, asA()), 'MALFORMED', /unknown field "round"/);
    const notJson = signEnvelope(DEVICE_MESSAGE_PAYLOAD_TYPE, utf8('{"deviceId":'), [a]);
    await refused(verifyDeviceMessage(notJson, asA()), 'MALFORMED', /not valid JSON/);
    const command = signRaw({ deviceId: 'dev-a', message: { ...health(), type: 'deploy' } }, a);
    await refused(verifyDeviceMessage(command, asA()), 'MALFORMED', /field "type"/);
  });

  it("refuses a device key's signature over another payload type (role confusion)", async () => {
    const payload = canonicalJson({ deviceId: 'dev-a', message: health() });
    const envelope = signEnvelope(MANIFEST_PAYLOAD_TYPE, payload, [a]);
    await refused(verifyDeviceMessage(envelope, asA()), 'MALFORMED', /payload type/);
    envelope.payloadType = DEVICE_MESSAGE_PAYLOAD_TYPE; // relabelled: the signature no longer holds
    await refused(verifyDeviceMessage(envelope, asA()), 'BAD_SIGNATURE');
  });

  it('refuses oversize envelopes with TOO_LARGE, as bytes and as objects', async () => {
    const envelope = signDeviceMessage({ deviceId: 'dev-a', message: health(), signer: a });
    const padded = new Uint8Array(MAX_DEVICE_MESSAGE_BYTES + 1).fill(0x20);
    padded.set(wire(envelope));
    await refused(verifyDeviceMessage(padded, asA()), 'TOO_LARGE');
    const huge = { ...envelope, payload: 'A'.repeat(MAX_DEVICE_MESSAGE_BYTES + 4) };
    await refused(verifyDeviceMessage(huge, asA()), 'TOO_LARGE');
  });

  it('holds every type but drift to MAX_CONTROL_MESSAGE_BYTES, even validly signed', async () => {
    // JSON whitespace keeps the payload valid: only its size is wrong.
    const json = `${JSON.stringify({ deviceId: 'dev-a', message: health() })}${' '.repeat(MAX_CONTROL_MESSAGE_BYTES)}`;
    const envelope = signEnvelope(DEVICE_MESSAGE_PAYLOAD_TYPE, utf8(json), [a]);
    await refused(
      verifyDeviceMessage(wire(envelope), asA()),
      'TOO_LARGE',
      /a health message's payload is \d+ base64 characters, the cap is 65536/,
    );
  });

  it('signs the largest possible device message to well under the wire cap', async () => {
    const long = (prefix: string) => prefix + 'a'.repeat(64 - prefix.length);
    const largest = patched(state(long('d')), {
      id: long('i'),
      agentVersion: long('1.0.0-'),
      hardware: long('h'),
      model: {
        name: long('m'),
        version: long('2.0.0-'),
        release: Number.MAX_SAFE_INTEGER,
        bundleId: 'f'.repeat(64),
      },
      update: {
        state: 'rolled_back',
        rolloutId: long('r'),
        bundleId: 'e'.repeat(64),
        // a control character is six bytes of JSON (\u0001): the worst case per unit
        error: { code: long('E'), message: '\u0001'.repeat(1000) },
      },
    }) as StateMessage;
    const envelope = signDeviceMessage({ deviceId: long('d'), message: largest, signer: a });
    const size = wire(envelope).length;
    assert.ok(size > 8_000 && size < MAX_CONTROL_MESSAGE_BYTES / 4, `${size} bytes`);
    assert.deepEqual(
      await verifyDeviceMessage(wire(envelope), {
        expectedDeviceId: long('d'),
        publicKey: a.publicKey,
      }),
      largest,
    );
  });

  it('signs the largest possible blocks-request (MAX_BLOCK_COUNT blocks) under the wire cap', async () => {
    const long = (prefix: string) => prefix + 'a'.repeat(64 - prefix.length);
    // The bitmap's base64 has the same length whatever bits are set.
    const missing = toBase64(new Uint8Array(MAX_BLOCK_COUNT / 8).fill(0xff));
    const largest: BlocksRequestMessage = {
      ...blocksRequest(),
      id: long('i'),
      // what an agent sends, Date#toISOString (the schema has no cap on fractional digits)
      ts: '2026-11-26T12:00:00.123Z',
      rolloutId: long('r'),
      bundleId: 'f'.repeat(64),
      blockCount: MAX_BLOCK_COUNT,
      missing,
    };
    const envelope = signDeviceMessage({ deviceId: long('d'), message: largest, signer: a });
    const size = wire(envelope).length;
    // 59,089 bytes of the 65,536 cap: a base64 bitmap inside a base64 payload.
    assert.ok(size > 58_000 && size < MAX_CONTROL_MESSAGE_BYTES, `${size} bytes`);
    assert.deepEqual(
      await verifyDeviceMessage(wire(envelope), {
        expectedDeviceId: long('d'),
        publicKey: a.publicKey,
      }),
      largest,
    );
  });

  it('refuses to sign an invalid message or for an invalid device id', () => {
    assert.throws(
      () =>
        signDeviceMessage({ deviceId: 'dev-a', message: { ...health(), errors: 500 }, signer: a }),
      (e: unknown) => isFleetError(e, 'MALFORMED') && /field "errors"/.test(e.message),
    );
    assert.throws(
      () => signDeviceMessage({ deviceId: 'dev/#', message: health(), signer: a }),
      (e: unknown) => isFleetError(e, 'MALFORMED') && /invalid device id/.test(e.message),
    );
  });
});

// Random valid messages: every constraint of the schema is met by construction.
const id = fc.stringMatching(/^[A-Za-z0-9_-]{8,64}$/);
const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/);
const timestamp = fc
  .integer({ min: Date.parse('2000-01-01T00:00:00Z'), max: Date.parse('2099-12-31T23:59:59Z') })
  .map((ms) => new Date(ms).toISOString());
const version = fc
  .tuple(fc.nat(999), fc.nat(999), fc.nat(999), fc.constantFrom('', '-rc.1', '-beta.2', '-0.3.7'))
  .map(([x, y, z, tail]) => `${x}.${y}.${z}${tail}`);
// Plain objects: fast-check may otherwise build null-prototype ones, which
// deepStrictEqual tells apart from what JSON.parse returns.
const plain = { noNullPrototype: true };
const model = fc.record(
  {
    name: fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,63}$/),
    version,
    release: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  },
  plain,
);
const header = { id, schemaVersion: fc.constant(1 as const), ts: timestamp };
const ms = fc.double({ min: 0, max: 1e7, noNaN: true, noDefaultInfinity: true });
const errorReport = fc.record(
  {
    code: fc.stringMatching(/^[A-Za-z0-9_.:-]{1,64}$/),
    message: fc.string({ unit: 'binary', maxLength: 400 }),
  },
  plain,
);

const healthMessage: fc.Arbitrary<HealthMessage> = fc
  .record(
    {
      ...header,
      model,
      window: fc.tuple(timestamp, timestamp),
      counts: fc
        .integer({ min: 0, max: 2 ** 40 })
        .chain((requests) =>
          fc.tuple(fc.constant(requests), fc.integer({ min: 0, max: requests })),
        ),
      latencies: fc.tuple(ms, ms, ms),
      confidence: fc.double({ min: 0, max: 1, noNaN: true }),
      probation: fc.boolean(),
    },
    plain,
  )
  .map(({ window, counts: [requests, errors], latencies, confidence, ...rest }) => {
    const [windowStart, windowEnd] = window.sort(); // fixed-width ISO strings sort by time
    const [p50, p95, p99] = latencies.sort((x, y) => x - y);
    return {
      type: 'health' as const,
      ...rest,
      windowStart,
      windowEnd,
      requests,
      errors,
      latencyMs: { p50, p95, p99 },
      meanConfidence: requests - errors === 0 ? null : confidence,
    };
  });

const progressMessage: fc.Arbitrary<ProgressMessage> = fc
  .record(
    {
      ...header,
      rolloutId: id,
      bundleId: hex64,
      state: fc.constantFrom(...UPDATE_STATES),
      counts: fc
        .integer({ min: 1, max: 256 * 1024 })
        .chain((blockCount) =>
          fc.tuple(fc.integer({ min: 0, max: blockCount }), fc.constant(blockCount)),
        ),
      error: fc.option(errorReport, { nil: undefined }),
    },
    plain,
  )
  .map(({ counts: [blocksReceived, blockCount], error, ...rest }) => ({
    type: 'progress' as const,
    ...rest,
    blocksReceived,
    blockCount,
    ...(error === undefined ? {} : { error }),
  }));

describe('device-signed messages, property', () => {
  it('random valid health and progress messages round-trip sign -> verify unchanged', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(healthMessage, progressMessage),
        fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/),
        async (message, deviceId) => {
          const envelope = signDeviceMessage({ deviceId, message, signer: a });
          const verified = await verifyDeviceMessage(wire(envelope), {
            expectedDeviceId: deviceId,
            publicKey: a.publicKey,
          });
          assert.deepEqual(verified, message);
        },
      ),
      { numRuns: 200 },
    );
  });
});
