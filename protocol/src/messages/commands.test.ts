import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { testKey, type TestKey } from '../__fixtures__/trust.ts';
import { fromUtf8, utf8 } from '../encoding/bytes.ts';
import { signEnvelope } from '../crypto/envelope.ts';
import {
  DELETE,
  cancel,
  deploy,
  patched,
  rollback,
  rollbackInstruction,
  wire,
} from './__fixtures__/examples.ts';
import { MAX_BLOCK_COUNT } from './common.ts';
import { MAX_REASON_LENGTH } from './commands.ts';
import { parseCommand, validateMessage } from './parse.ts';
import { rollbackInstructionSchema } from './rollback-instruction.ts';
import { assertRefused as refused } from '../__fixtures__/refusals.ts';

let key: TestKey;
before(async () => {
  key = await testKey(301);
});

/** Parses `base` with `changes` applied, as the agent would receive it. */
function parsePatched(base: unknown, changes: Record<string, unknown>) {
  return parseCommand(wire(patched(base, changes)));
}

/** Each row: changes to `base`, and the refusal message expected. */
function refusedAll(base: unknown, cases: [Record<string, unknown>, RegExp][]): void {
  for (const [changes, message] of cases) {
    refused(() => parsePatched(base, changes), 'MALFORMED', message);
  }
}

describe('deploy', () => {
  it('parses without the optional samplingRate and probation', () => {
    const parsed = parsePatched(deploy(key), { samplingRate: DELETE, probation: DELETE });
    assert.equal(parsed.type, 'deploy');
    assert.equal('probation' in parsed, false);
  });

  it("carries an optional drift sampling rate in (0, 1] that overrides the manifest's", () => {
    const driftOf = (changes: Record<string, unknown>) => {
      const parsed = parsePatched(deploy(key), changes);
      return parsed.type === 'deploy' ? parsed.drift : 'not a deploy';
    };
    assert.deepEqual(driftOf({ drift: { sampleRate: 0.25 } }), { sampleRate: 0.25 });
    assert.deepEqual(driftOf({ drift: { sampleRate: 1 } }), { sampleRate: 1 });
    assert.equal('drift' in parsePatched(deploy(key), {}), false, 'old deploys stay valid');
    refusedAll(deploy(key), [
      [{ drift: { sampleRate: 0 } }, /field "drift\.sampleRate"/],
      [{ drift: { sampleRate: 1.5 } }, /field "drift\.sampleRate"/],
      [{ drift: { sampleRate: '0.5' } }, /field "drift\.sampleRate"/],
      [{ drift: {} }, /field "drift\.sampleRate"/],
      [{ drift: { sampleRate: 0.5, flush: 10 } }, /unknown field "drift\.flush"/],
    ]);
  });

  it('refuses a blockCount other than ceil(sizeBytes / blockSizeBytes)', () => {
    refusedAll(deploy(key), [
      [{ 'bundle.blockCount': 2 }, /field "bundle\.blockCount": blockCount must equal/],
      [{ 'bundle.blockCount': 4 }, /field "bundle\.blockCount": blockCount must equal/],
    ]);
  });

  it('gets blockCount right at exact multiples and for one-block bundles', () => {
    const cases = [
      { sizeBytes: 131_072, blockSizeBytes: 65_536, good: 2, bad: 3 },
      { sizeBytes: 131_073, blockSizeBytes: 65_536, good: 3, bad: 2 },
      { sizeBytes: 1, blockSizeBytes: 65_536, good: 1, bad: 2 },
      { sizeBytes: 1000, blockSizeBytes: 1, good: 1000, bad: 999 },
      {
        sizeBytes: MAX_BLOCK_COUNT * 65_536,
        blockSizeBytes: 65_536,
        good: MAX_BLOCK_COUNT,
        bad: 1,
      },
    ];
    for (const { sizeBytes, blockSizeBytes, good, bad } of cases) {
      const at = (blockCount: number) =>
        parsePatched(deploy(key), {
          'bundle.sizeBytes': sizeBytes,
          'bundle.blockSizeBytes': blockSizeBytes,
          'bundle.blockCount': blockCount,
        });
      const parsed = at(good);
      assert.equal(parsed.type === 'deploy' && parsed.bundle.blockCount, good);
      refused(() => at(bad), 'MALFORMED', /field "bundle\.blockCount"/);
    }
  });

  it('refuses a bundle that needs more than MAX_BLOCK_COUNT blocks', () => {
    refusedAll(deploy(key), [
      [
        {
          'bundle.sizeBytes': MAX_BLOCK_COUNT * 65_536 + 1,
          'bundle.blockCount': MAX_BLOCK_COUNT + 1,
        },
        /field "bundle\.blockCount": Too big/,
      ],
    ]);
  });

  it('refuses blocks above 64 KiB, of zero or negative bytes, or fractional', () => {
    refusedAll(deploy(key), [
      [{ 'bundle.blockSizeBytes': 65_537 }, /field "bundle\.blockSizeBytes"/],
      [{ 'bundle.blockSizeBytes': 0 }, /field "bundle\.blockSizeBytes"/],
      [{ 'bundle.blockSizeBytes': -65_536 }, /field "bundle\.blockSizeBytes"/],
      [
        { 'bundle.blockSizeBytes': 1.5, 'bundle.blockCount': 100_000 },
        /field "bundle\.blockSizeBytes"/,
      ],
    ]);
  });

  it('refuses a size that is zero, negative, fractional or beyond safe integers', () => {
    refusedAll(
      deploy(key),
      [0, -1, 1.5, 2 ** 53, 1e308].map((sizeBytes) => [
        { 'bundle.sizeBytes': sizeBytes },
        /field "bundle\.sizeBytes"/,
      ]),
    );
  });

  it('refuses a bundle id that is not 64 lowercase hex', () => {
    refusedAll(
      deploy(key),
      ['A'.repeat(64), 'a'.repeat(63), 'a'.repeat(65), '../' + 'a'.repeat(61)].map((bundleId) => [
        { 'bundle.bundleId': bundleId },
        /field "bundle\.bundleId"/,
      ]),
    );
  });

  it('refuses a block root that is missing or not 64 lowercase hex', () => {
    refusedAll(deploy(key), [
      [{ 'bundle.blockRoot': DELETE }, /field "bundle\.blockRoot"/],
      ...['C'.repeat(64), 'c'.repeat(63), 'c'.repeat(65), ''].map(
        (blockRoot): [Record<string, unknown>, RegExp] => [
          { 'bundle.blockRoot': blockRoot },
          /field "bundle\.blockRoot": a block root is a SHA-256 Merkle root/,
        ],
      ),
    ]);
  });

  it('refuses a manifest envelope of another payload type, with an extra field, or none', () => {
    const root = signEnvelope('application/vnd.fleet.root+json', utf8('{}'), [key]);
    refusedAll(deploy(key), [
      [{ 'bundle.manifestEnvelope': root }, /field "bundle\.manifestEnvelope\.payloadType"/],
      [{ 'bundle.manifestEnvelope.note': 'x' }, /unknown field "bundle\.manifestEnvelope\.note"/],
      [{ 'bundle.manifestEnvelope': DELETE }, /field "bundle\.manifestEnvelope"/],
    ]);
  });

  it('refuses a model with a non-canonical version, a bad name or release 0', () => {
    refusedAll(deploy(key), [
      [{ 'model.version': 'v1.2.0' }, /field "model\.version": not a semantic version/],
      [{ 'model.version': '1.2' }, /field "model\.version"/],
      [{ 'model.version': '1.2.0-'.padEnd(65, 'a') }, /field "model\.version"/],
      [{ 'model.name': 'MNIST' }, /field "model\.name"/],
      [{ 'model.name': 'a'.repeat(65) }, /field "model\.name"/],
      [{ 'model.release': 0 }, /field "model\.release"/],
      [{ 'model.release': 4.5 }, /field "model\.release"/],
    ]);
  });

  it('refuses a sampling rate or probation bounds outside their ranges', () => {
    refusedAll(deploy(key), [
      [{ samplingRate: 1.01 }, /field "samplingRate"/],
      [{ samplingRate: -0.1 }, /field "samplingRate"/],
      [{ 'probation.maxErrorRate': 2 }, /field "probation\.maxErrorRate"/],
      [{ 'probation.minMeanConfidence': -1 }, /field "probation\.minMeanConfidence"/],
      [{ 'probation.durationMs': 0 }, /field "probation\.durationMs"/],
      [{ 'probation.maxLatencyP95Ms': 0 }, /field "probation\.maxLatencyP95Ms"/],
      [{ 'probation.maxRestarts': 3 }, /unknown field "probation\.maxRestarts"/],
      [{ deadline: 'tomorrow' }, /field "deadline"/],
      [{ rolloutId: DELETE }, /field "rolloutId"/],
    ]);
  });
});

describe('rollback', () => {
  it('parses without a rollout id (an operator-initiated rollback)', () => {
    assert.equal(parsePatched(rollback(key), { rolloutId: DELETE }).type, 'rollback');
  });

  it('accepts a reason of 500 characters and refuses 501', () => {
    const reason = (length: number) => ({ reason: 'r'.repeat(length) });
    assert.equal(parsePatched(rollback(key), reason(MAX_REASON_LENGTH)).type, 'rollback');
    refusedAll(rollback(key), [[reason(MAX_REASON_LENGTH + 1), /field "reason": Too big/]]);
  });

  it('refuses a reason holding a lone surrogate (no canonical JSON form)', () => {
    const text = fromUtf8(wire(rollback(key)));
    assert.ok(text.includes('canary error'));
    const bytes = utf8(text.replace('canary error', '\\ud800'));
    refused(
      () => parseCommand(bytes),
      'MALFORMED',
      /field "reason": contains a lone UTF-16 surrogate/,
    );
  });

  it('refuses an authorization that is not a rollback instruction envelope', () => {
    const manifest = signEnvelope('application/vnd.fleet.bundle-manifest+json', utf8('{}'), [key]);
    refusedAll(rollback(key), [
      [{ authorization: manifest }, /field "authorization\.payloadType"/],
      [{ authorization: DELETE }, /field "authorization"/],
    ]);
  });

  it('refuses an authorization with more than 16 signatures', () => {
    const signatures = rollback(key).authorization.signatures;
    const many = Array.from({ length: 17 }, () => signatures[0]);
    refusedAll(rollback(key), [
      [{ 'authorization.signatures': many }, /field "authorization\.signatures": Too big/],
    ]);
  });

  it('refuses a target without its bundle id', () => {
    refusedAll(rollback(key), [[{ 'target.bundleId': DELETE }, /field "target\.bundleId"/]]);
  });
});

describe('cancel', () => {
  it('parses without a reason', () => {
    assert.equal(parsePatched(cancel(), { reason: DELETE }).type, 'cancel');
  });

  it('refuses a cancel without a rollout id, or with an overlong reason', () => {
    refusedAll(cancel(), [
      [{ rolloutId: DELETE }, /field "rolloutId"/],
      [{ reason: 'x'.repeat(501) }, /field "reason"/],
    ]);
  });
});

describe('rollback instruction payload', () => {
  const check = (value: unknown) =>
    validateMessage(rollbackInstructionSchema, value, 'rollback instruction');

  it('parses a full instruction and a minimal one', () => {
    assert.deepEqual(check(rollbackInstruction()), rollbackInstruction());
    const minimal = patched(rollbackInstruction(), {
      fromReleaseAtMost: DELETE,
      devices: DELETE,
      hardware: DELETE,
    });
    assert.deepEqual(check(minimal), minimal);
  });

  it('refuses unknown fields, another type or schema version, and bad scopes', () => {
    const manyDevices = Array.from({ length: 1001 }, (_, i) => `d${i}`);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ allDevices: true }, /unknown field "allDevices"/],
      [{ type: 'fleet-bundle' }, /field "type"/],
      [{ schemaVersion: 2 }, /field "schemaVersion"/],
      [{ toBundleId: DELETE }, /field "toBundleId"/],
      [{ toBundleId: 'B'.repeat(64) }, /field "toBundleId"/],
      [{ toRelease: 0 }, /field "toRelease"/],
      [{ devices: [] }, /field "devices"/],
      [{ devices: manyDevices }, /field "devices": Too big/],
      [{ devices: ['dev-a', '../dev-b'] }, /field "devices\.1"/],
      [{ hardware: ['RPI4'] }, /field "hardware\.0"/],
      [{ expires: rollbackInstruction().issuedAt }, /field "expires": expires must be after/],
    ];
    for (const [changes, message] of cases) {
      refused(() => check(patched(rollbackInstruction(), changes)), 'MALFORMED', message);
    }
  });
});
