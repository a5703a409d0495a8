/**
 * `fl-update` and `fl-update-part`: schema bounds and refinements, signing and
 * verifying through the device envelope with the device binding, and the
 * largest possible part signing under its own cap.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { testKeys, type TestKey } from '../__fixtures__/trust.ts';
import { assertRefused as refused, assertRejected as rejected } from '../__fixtures__/refusals.ts';
import { toBase64, utf8 } from '../encoding/bytes.ts';
import { canonicalJson } from '../encoding/json.ts';
import { signEnvelope } from '../crypto/envelope.ts';
import { DELETE, patched, wire } from './__fixtures__/examples.ts';
import { flUpdate, flUpdatePart } from './__fixtures__/fl-examples.ts';
import {
  flUpdateMessageSchema,
  MAX_FL_PART_BYTES,
  MAX_FL_PART_MESSAGE_BYTES,
  MAX_FL_UPDATE_BYTES,
  type FlUpdatePartMessage,
} from './fl-update.ts';
import {
  DEVICE_MESSAGE_PAYLOAD_TYPE,
  signDeviceMessage,
  verifyDeviceMessage,
} from './device-envelope.ts';
import {
  MAX_CONTROL_MESSAGE_BYTES,
  MAX_DEVICE_MESSAGE_BYTES,
  maxDeviceMessageBytes,
  parseDeviceMessage,
} from './parse.ts';
import type { DeviceMessage } from './device-messages.ts';

let a: TestKey;
before(async () => {
  [a] = (await testKeys(470, 1)) as [TestKey];
});
const asA = () => ({ expectedDeviceId: 'dev-a', publicKey: a.publicKey });

const parseUpdate = (changes: Record<string, unknown>) =>
  parseDeviceMessage(wire(patched(flUpdate(), changes)));
const parsePart = (changes: Record<string, unknown>) =>
  parseDeviceMessage(wire(patched(flUpdatePart(), changes)));
const dataOf = (bytes: number) => toBase64(new Uint8Array(bytes).fill(0xa5));

describe('fl-update', () => {
  it('parses an ok update and a failed one', () => {
    assert.deepEqual(parseDeviceMessage(wire(flUpdate())), flUpdate());
    const failed = parseUpdate({
      status: 'failed',
      reason: 'only 3 labelled samples, the round needs 20',
      update: DELETE,
      sampleCount: 3,
      metrics: {
        lossBefore: null,
        lossAfter: null,
        accuracyBefore: null,
        accuracyAfter: null,
        trainMs: null,
      },
    });
    assert.equal(failed.type === 'fl-update' && failed.status, 'failed');
  });

  it('ties partCount to sizeBytes in 64 KiB parts', () => {
    assert.equal(
      parseUpdate({ 'update.sizeBytes': MAX_FL_PART_BYTES, 'update.partCount': 1 }).type,
      'fl-update',
    );
    assert.equal(
      parseUpdate({ 'update.sizeBytes': MAX_FL_PART_BYTES + 1, 'update.partCount': 2 }).type,
      'fl-update',
    );
    assert.equal(
      parseUpdate({ 'update.sizeBytes': MAX_FL_UPDATE_BYTES, 'update.partCount': 1024 }).type,
      'fl-update',
    );
    for (const [sizeBytes, partCount] of [
      [MAX_FL_PART_BYTES + 1, 1],
      [1, 2],
      [150_000, 2],
      [150_000, 4],
    ]) {
      refused(
        () => parseUpdate({ 'update.sizeBytes': sizeBytes, 'update.partCount': partCount }),
        'MALFORMED',
        /field "update\.partCount": partCount must equal ceil\(sizeBytes \/ 65536\)/,
      );
    }
  });

  it('refuses bad fields and each refinement, naming the field', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ status: 'failed', update: DELETE }, /field "reason": a failed update carries a reason/],
      [
        { status: 'failed', reason: 'out of memory' },
        /field "update": a failed update carries no update/,
      ],
      [{ update: DELETE }, /field "update": an ok update carries its update/],
      [{ status: 'partial' }, /field "status"/],
      [{ reason: 'x'.repeat(501) }, /field "reason"/],
      [{ 'update.sizeBytes': 0 }, /field "update\.sizeBytes"/],
      [
        { 'update.sizeBytes': MAX_FL_UPDATE_BYTES + 1, 'update.partCount': 1025 },
        /field "update\.sizeBytes"/,
      ],
      [{ 'update.partCount': 0 }, /field "update\.partCount"/],
      [{ 'update.sha256': 'E'.repeat(64) }, /field "update\.sha256"/],
      [{ 'update.sha256': 'e'.repeat(63) }, /field "update\.sha256"/],
      [{ 'update.encoding': 'int4' }, /field "update\.encoding"/],
      [{ 'update.normBeforeClip': -1 }, /field "update\.normBeforeClip"/],
      [{ 'update.clipped': 'yes' }, /field "update\.clipped"/],
      [{ 'update.extra': 1 }, /unknown field "update\.extra"/],
      [{ sampleCount: -1 }, /field "sampleCount"/],
      [{ sampleCount: 1.5 }, /field "sampleCount"/],
      [{ 'metrics.accuracyAfter': 1.5 }, /field "metrics\.accuracyAfter"/],
      [{ 'metrics.lossAfter': -0.1 }, /field "metrics\.lossAfter"/],
      [{ 'metrics.trainMs': DELETE }, /field "metrics\.trainMs"/],
      [{ roundId: 'short' }, /field "roundId"/],
      [{ deviceId: '../x' }, /field "deviceId"/],
      [{ 'model.release': 0 }, /field "model\.release"/],
    ];
    for (const [changes, message] of cases)
      refused(() => parseUpdate(changes), 'MALFORMED', message);
  });

  it('refuses non-finite metrics and norms (as objects: JSON has no NaN)', () => {
    for (const path of ['metrics.lossBefore', 'metrics.trainMs', 'update.normBeforeClip']) {
      for (const bad of [NaN, Infinity]) {
        assert.equal(
          flUpdateMessageSchema.safeParse(patched(flUpdate(), { [path]: bad })).success,
          false,
          path,
        );
      }
    }
  });
});

describe('fl-update-part', () => {
  it('parses a part, up to 64 KiB and index count - 1', () => {
    assert.deepEqual(parseDeviceMessage(wire(flUpdatePart())), flUpdatePart());
    assert.equal(
      parsePart({ data: dataOf(MAX_FL_PART_BYTES), index: 1023, count: 1024 }).type,
      'fl-update-part',
    );
    assert.equal(parsePart({ data: 'AQ==' }).type, 'fl-update-part');
  });

  it('refuses bad fields, naming each', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ index: 3 }, /field "index": index must be below count/],
      [{ index: -1 }, /field "index"/],
      [{ count: 0 }, /field "count"/],
      [{ count: 1025 }, /field "count"/],
      [{ data: '' }, /field "data"/],
      [{ data: dataOf(MAX_FL_PART_BYTES + 1) }, /field "data": a part is at most 65536 bytes/],
      [{ data: 'AR==' }, /field "data": a part is canonical base64/], // padding bits set
      [{ data: 'AQIDB' }, /field "data": a part is canonical base64/],
      [{ data: 'AQ-_' }, /field "data": a part is canonical base64/],
      [{ updateId: 'x' }, /field "updateId"/],
      [{ deviceId: DELETE }, /field "deviceId"/],
      [{ sha256: 'e'.repeat(64) }, /unknown field "sha256"/],
    ];
    for (const [changes, message] of cases) refused(() => parsePart(changes), 'MALFORMED', message);
  });

  it('has its own cap, above the control cap and within the device-message cap', () => {
    assert.equal(maxDeviceMessageBytes('fl-update-part'), MAX_FL_PART_MESSAGE_BYTES);
    assert.equal(maxDeviceMessageBytes('fl-update'), MAX_CONTROL_MESSAGE_BYTES);
    assert.ok(MAX_FL_PART_MESSAGE_BYTES > MAX_CONTROL_MESSAGE_BYTES);
    assert.ok(MAX_FL_PART_MESSAGE_BYTES <= MAX_DEVICE_MESSAGE_BYTES);
  });
});

describe('fl messages through the device envelope', () => {
  it('sign and verify, from bytes and from an object', async () => {
    for (const message of [flUpdate(), flUpdatePart()] as DeviceMessage[]) {
      const envelope = signDeviceMessage({ deviceId: 'dev-a', message, signer: a });
      assert.deepEqual(await verifyDeviceMessage(wire(envelope), asA()), message);
      assert.deepEqual(await verifyDeviceMessage(envelope, asA()), message);
    }
  });

  it('refuse an update or part naming another device than the signer (THREATS 39)', async () => {
    for (const message of [flUpdate('dev-b'), flUpdatePart('dev-b')] as DeviceMessage[]) {
      refused(
        () => signDeviceMessage({ deviceId: 'dev-a', message, signer: a }),
        'DEVICE_MISMATCH',
      );
      // signed by dev-a's key, bound to dev-a, speaking for dev-b
      const envelope = signEnvelope(
        DEVICE_MESSAGE_PAYLOAD_TYPE,
        canonicalJson({ deviceId: 'dev-a', message }),
        [a],
      );
      await rejected(
        verifyDeviceMessage(envelope, asA()),
        'DEVICE_MISMATCH',
        new RegExp(`${message.type} message names device dev-b but is signed for dev-a`),
      );
      // and dev-a's envelope is worth nothing as dev-b's
      const own = signDeviceMessage({
        deviceId: 'dev-a',
        message: { ...message, deviceId: 'dev-a' } as DeviceMessage,
        signer: a,
      });
      await rejected(
        verifyDeviceMessage(own, { expectedDeviceId: 'dev-b', publicKey: a.publicKey }),
        'DEVICE_MISMATCH',
      );
    }
  });

  it('signs the largest possible part under MAX_FL_PART_MESSAGE_BYTES and the 256 KiB packet guard', async () => {
    const long = (prefix: string) => prefix + 'a'.repeat(64 - prefix.length);
    const largest = patched(flUpdatePart(), {
      id: long('i'),
      ts: `2026-11-26T12:00:00.${'1'.repeat(9)}Z`,
      deviceId: long('d'),
      roundId: long('r'),
      updateId: long('u'),
      index: 1022,
      count: 1024,
      data: dataOf(MAX_FL_PART_BYTES),
    }) as FlUpdatePartMessage;
    const envelope = signDeviceMessage({ deviceId: long('d'), message: largest, signer: a });
    const size = wire(envelope).length;
    assert.ok(size > 110_000 && size < MAX_FL_PART_MESSAGE_BYTES, `${size} bytes`);
    assert.ok(size < 256 * 1024);
    assert.deepEqual(
      await verifyDeviceMessage(wire(envelope), {
        expectedDeviceId: long('d'),
        publicKey: a.publicKey,
      }),
      largest,
    );
  });

  it('holds a validly signed part to its cap, and an fl-update to the control cap', async () => {
    const pad = (message: DeviceMessage, spaces: number) =>
      signEnvelope(
        DEVICE_MESSAGE_PAYLOAD_TYPE,
        utf8(`${JSON.stringify({ deviceId: 'dev-a', message })}${' '.repeat(spaces)}`),
        [a],
      );
    await rejected(
      verifyDeviceMessage(wire(pad(flUpdatePart(), MAX_FL_PART_MESSAGE_BYTES)), asA()),
      'TOO_LARGE',
      /a fl-update-part message's payload is \d+ base64 characters, the cap is 131072/,
    );
    await rejected(
      verifyDeviceMessage(wire(pad(flUpdate(), MAX_CONTROL_MESSAGE_BYTES)), asA()),
      'TOO_LARGE',
      /a fl-update message's payload is \d+ base64 characters, the cap is 65536/,
    );
  });
});
