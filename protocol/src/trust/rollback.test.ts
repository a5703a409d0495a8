/**
 * Signed rollback instructions: one valid instruction, and each refusal on an
 * instruction or envelope that differs from it in exactly one way.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { NOW_MS, testKeys, testTrust, YESTERDAY, type TestTrust } from '../__fixtures__/trust.ts';
import { assertRejected as refused, assertRefused } from '../__fixtures__/refusals.ts';
import { fromBase64, fromUtf8, toBase64, utf8 } from '../encoding/bytes.ts';
import { canonicalJson } from '../encoding/json.ts';
import { signEnvelope, type SignedEnvelope, type Signer } from '../crypto/envelope.ts';
import { MANIFEST_PAYLOAD_TYPE } from '../bundle/manifest.ts';
import {
  DELETE,
  OLD_BUNDLE_ID,
  patched,
  rollback,
  rollbackInstruction,
  wire,
} from '../messages/__fixtures__/examples.ts';
import { parseCommand } from '../messages/parse.ts';
import {
  ROLLBACK_PAYLOAD_TYPE,
  type RollbackInstruction,
} from '../messages/rollback-instruction.ts';
import {
  MAX_ROLLBACK_ENVELOPE_BYTES,
  signRollbackInstruction,
  verifyRollbackAuthorization,
  type VerifyRollbackOptions,
} from './rollback.ts';

let trust: TestTrust;
let twoBundleKeys: Signer[];

before(async () => {
  trust = await testTrust(); // root 2-of-3 (keys 0-2), bundle 2-of-3 (keys 10-12)
  twoBundleKeys = trust.bundleKeys.slice(0, 2);
});

/**
 * Device dev-a, rpi4, serving mnist-2nn release 5; the command names release 4
 * in OLD_BUNDLE_ID, which is what the fixture instruction signs.
 */
function options(overrides: Partial<VerifyRollbackOptions> = {}): VerifyRollbackOptions {
  return {
    root: trust.root,
    nowMs: NOW_MS,
    deviceId: 'dev-a',
    hardwareClass: 'rpi4',
    modelName: 'mnist-2nn',
    installedRelease: 5,
    target: { bundleId: OLD_BUNDLE_ID, release: 4 },
    ...overrides,
  };
}

/** The fixture instruction with `changes` applied, signed by two bundle keys. */
function signed(changes: Record<string, unknown> = {}, signers = twoBundleKeys): SignedEnvelope {
  return signRollbackInstruction(
    patched(rollbackInstruction(), changes) as RollbackInstruction,
    signers,
  );
}

/** Any payload bytes under the rollback payload type (crafted content, real keys). */
function signedRaw(payload: Uint8Array, signers: Signer[] = twoBundleKeys): SignedEnvelope {
  return signEnvelope(ROLLBACK_PAYLOAD_TYPE, payload, signers);
}

describe('signed rollback instruction', () => {
  it('verifies from JSON bytes and as an object, returning the instruction', async () => {
    const envelope = signed();
    assert.equal(envelope.payloadType, ROLLBACK_PAYLOAD_TYPE);
    assert.equal(envelope.signatures.length, 2);
    assert.deepEqual(fromBase64(envelope.payload), canonicalJson(rollbackInstruction()));
    assert.deepEqual(
      await verifyRollbackAuthorization(wire(envelope), options()),
      rollbackInstruction(),
    );
    assert.deepEqual(await verifyRollbackAuthorization(envelope, options()), rollbackInstruction());
  });

  it('verifies as the authorization of a parsed rollback command', async () => {
    const command = parseCommand(
      wire({ ...rollback(trust.bundleKeys[0]!), authorization: signed() }),
    );
    assert.ok(command.type === 'rollback');
    const { bundleId, release } = command.target;
    const verified = await verifyRollbackAuthorization(
      command.authorization,
      options({ target: { bundleId, release } }),
    );
    assert.equal(verified.toBundleId, bundleId);
  });

  it('applies an unscoped instruction to any device, hardware and installed release above it', async () => {
    const envelope = signed({ devices: DELETE, hardware: DELETE, fromReleaseAtMost: DELETE });
    const verified = await verifyRollbackAuthorization(
      envelope,
      options({ deviceId: 'dev-z', hardwareClass: 'jetson-nano', installedRelease: 90 }),
    );
    assert.equal(verified.toRelease, 4);
  });

  it('applies at the edges: installed release equal to fromReleaseAtMost, one above toRelease', async () => {
    const { fromReleaseAtMost, toRelease } = rollbackInstruction();
    assert.deepEqual([fromReleaseAtMost, toRelease], [5, 4]);
    const verified = await verifyRollbackAuthorization(signed(), options({ installedRelease: 5 }));
    assert.equal(verified.toRelease, 4);
  });
});

describe('signed rollback instruction, signatures (THREATS 1, 3, 4, 6, 36)', () => {
  it('refuses a single bundle key below the 2-of-3 threshold', async () => {
    await refused(
      verifyRollbackAuthorization(signed({}, [trust.bundleKeys[0]!]), options()),
      'SIGNATURE_THRESHOLD',
      /1 valid signature\(s\) from distinct bundle .* keys, 2 required/,
    );
  });

  it('refuses one bundle key signing twice', async () => {
    const key = trust.bundleKeys[0]!;
    const envelope = signed({}, [key, key]);
    assert.equal(envelope.signatures.length, 2);
    await refused(
      verifyRollbackAuthorization(envelope, options()),
      'SIGNATURE_THRESHOLD',
      /1 valid signature/,
    );
  });

  it('does not count root-role keys, alone or beside one bundle key', async () => {
    const [r0, r1] = [trust.rootKeys[0]!, trust.rootKeys[1]!];
    await refused(
      verifyRollbackAuthorization(signed({}, [r0, r1]), options()),
      'SIGNATURE_THRESHOLD',
      /0 valid signature/,
    );
    await refused(
      verifyRollbackAuthorization(signed({}, [trust.bundleKeys[0]!, r0]), options()),
      'SIGNATURE_THRESHOLD',
      /1 valid signature/,
    );
  });

  it('refuses keys the root does not list (a rotated-out bundle key set, THREATS 11)', async () => {
    const others = await testKeys(50, 3);
    const rotated = await testTrust({ bundleKeys: others });
    await refused(
      verifyRollbackAuthorization(signed(), options({ root: rotated.root })),
      'SIGNATURE_THRESHOLD',
    );
    const byNewKeys = signed({}, others.slice(0, 2));
    await verifyRollbackAuthorization(byNewKeys, options({ root: rotated.root }));
  });

  it('refuses a payload changed after signing, even into a valid instruction', async () => {
    const envelope = signed();
    const text = fromUtf8(fromBase64(envelope.payload));
    const widened = text.replace('"devices":["dev-a","dev-b"]', '"devices":["dev-a","dev-c"]');
    assert.notEqual(widened, text);
    await refused(
      verifyRollbackAuthorization(
        { ...envelope, payload: toBase64(utf8(widened)) },
        options({ deviceId: 'dev-c' }),
      ),
      'SIGNATURE_THRESHOLD',
      /0 valid signature/,
    );
  });

  it('refuses a bundle-key signature over another payload type (a manifest relabelled)', async () => {
    const manifest = signEnvelope(
      MANIFEST_PAYLOAD_TYPE,
      canonicalJson(rollbackInstruction()),
      twoBundleKeys,
    );
    await refused(verifyRollbackAuthorization(manifest, options()), 'MALFORMED', /payloadType/);
    const relabelled = { ...manifest, payloadType: ROLLBACK_PAYLOAD_TYPE };
    await refused(verifyRollbackAuthorization(relabelled, options()), 'SIGNATURE_THRESHOLD');
  });

  it('reads nothing of the payload before the signatures hold', async () => {
    // Out of scope and not even JSON: unsigned, it fails on the signatures.
    const unsigned = { ...signedRaw(utf8('{"type":')), signatures: [] };
    await refused(verifyRollbackAuthorization(unsigned, options()), 'SIGNATURE_THRESHOLD');
  });
});

describe('signed rollback instruction, envelope and payload', () => {
  it('refuses oversize envelopes with TOO_LARGE, as bytes and as objects', async () => {
    const padded = new Uint8Array(MAX_ROLLBACK_ENVELOPE_BYTES + 1).fill(0x20);
    padded.set(wire(signed()));
    await refused(verifyRollbackAuthorization(padded, options()), 'TOO_LARGE');
    const huge = { ...signed(), payload: 'A'.repeat(MAX_ROLLBACK_ENVELOPE_BYTES + 4) };
    await refused(verifyRollbackAuthorization(huge, options()), 'TOO_LARGE', /payload is/);
  });

  it('refuses an envelope that is not a strict DSSE envelope', async () => {
    await refused(
      verifyRollbackAuthorization({ ...signed(), note: 'x' }, options()),
      'MALFORMED',
      /unknown field "note"/,
    );
    await refused(verifyRollbackAuthorization(utf8('{"payloadType":'), options()), 'MALFORMED');
    await refused(verifyRollbackAuthorization(null, options()), 'MALFORMED');
  });

  it('refuses a validly signed payload that is not a strict instruction, naming the field', async () => {
    const extra = { ...rollbackInstruction(), allDevices: true };
    await refused(
      verifyRollbackAuthorization(signedRaw(canonicalJson(extra)), options()),
      'MALFORMED',
      /unknown field "allDevices"/,
    );
    await refused(
      verifyRollbackAuthorization(signedRaw(utf8('{"type":')), options()),
      'MALFORMED',
      /not valid JSON/,
    );
    const backwards = { ...rollbackInstruction(), expires: '2026-11-01T00:00:00Z' };
    await refused(
      verifyRollbackAuthorization(signedRaw(canonicalJson(backwards)), options()),
      'MALFORMED',
      /field "expires"/,
    );
  });

  it('refuses everything under an expired trust root, before counting signatures', async () => {
    const stale = await testTrust({ expires: YESTERDAY });
    for (const envelope of [signed(), signed({}, [trust.bundleKeys[0]!])]) {
      await refused(
        verifyRollbackAuthorization(envelope, options({ root: stale.root })),
        'EXPIRED',
        /root v1 expired/,
      );
    }
  });
});

describe('signed rollback instruction, scope', () => {
  const cases: [string, Record<string, unknown>, Partial<VerifyRollbackOptions>, string, RegExp][] =
    [
      [
        'an expired instruction',
        { issuedAt: '2026-10-01T00:00:00Z', expires: '2026-11-26T12:00:00Z' },
        {},
        'EXPIRED',
        /rollback of mnist-2nn to release 4 expired/,
      ],
      [
        'another model',
        {},
        { modelName: 'kws-tiny' },
        'ROLLBACK_SCOPE',
        /for model mnist-2nn, the installed model is kws-tiny/,
      ],
      [
        'another target bundle',
        {},
        { target: { bundleId: 'c'.repeat(64), release: 4 } },
        'ROLLBACK_SCOPE',
        /signed for release 4 \(bundle b{64}\), the command names release 4 \(bundle c{64}\)/,
      ],
      [
        'another target release',
        {},
        { target: { bundleId: OLD_BUNDLE_ID, release: 3 } },
        'ROLLBACK_SCOPE',
        /the command names release 3/,
      ],
      [
        'a release equal to the installed one',
        {},
        { installedRelease: 4 },
        'ROLLBACK_SCOPE',
        /release 4 is not below the installed release 4/,
      ],
      [
        'a release above the installed one (a "rollback" forward)',
        {},
        { installedRelease: 3 },
        'ROLLBACK_SCOPE',
        /release 4 is not below the installed release 3/,
      ],
      [
        'a device with nothing installed',
        {},
        { installedRelease: 0 },
        'ROLLBACK_SCOPE',
        /not below the installed release 0/,
      ],
      [
        'an installed release above fromReleaseAtMost (a later fix)',
        {},
        { installedRelease: 6 },
        'ROLLBACK_SCOPE',
        /applies to releases up to 5, the installed release is 6/,
      ],
      [
        'a device not listed',
        {},
        { deviceId: 'dev-c' },
        'WRONG_DEVICE',
        /not addressed to device dev-c/,
      ],
      [
        'a hardware class not listed',
        {},
        { hardwareClass: 'jetson-nano' },
        'WRONG_HARDWARE',
        /rollback is for rpi4, not jetson-nano/,
      ],
    ];

  for (const [name, changes, overrides, code, message] of cases) {
    it(`refuses ${name}`, async () => {
      await refused(
        verifyRollbackAuthorization(signed(changes), options(overrides)),
        code,
        message,
      );
    });
  }
});

describe('signRollbackInstruction', () => {
  it('refuses an invalid instruction, naming the field, and no signers', () => {
    assertRefused(() => signed({ toRelease: 0 }), 'MALFORMED', /field "toRelease"/);
    assertRefused(() => signed({ extra: 1 }), 'MALFORMED', /unknown field "extra"/);
    assertRefused(() => signed({}, []), 'SIGNATURE_THRESHOLD', /no signing keys/);
  });

  it('refuses an instruction whose envelope would not fit in a rollback command', () => {
    const devices = Array.from({ length: 1000 }, (_, i) => `d${String(i).padStart(63, '0')}`);
    assertRefused(() => signed({ devices }), 'TOO_LARGE', /the cap is 65536/);
    const fits = Array.from({ length: 300 }, (_, i) => `d${String(i).padStart(63, '0')}`);
    assert.ok(wire(signed({ devices: fits })).length < MAX_ROLLBACK_ENVELOPE_BYTES);
  });
});
