import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { testKeys, type TestKey } from '../__fixtures__/trust.ts';
import { fromBase64, toBase64 } from '../encoding/bytes.ts';
import { assertRefused as refused, assertRejected as rejected } from '../__fixtures__/refusals.ts';
import { deserializeSignal } from '../drift/signal-sketch.ts';
import { driftReport, patched, wire } from './__fixtures__/examples.ts';
import {
  MAX_DRIFT_MESSAGE_BYTES,
  MAX_DRIFT_SIGNAL_BYTES,
  MAX_DRIFT_SIGNALS,
  MAX_DRIFT_SKETCH_TOTAL_BYTES,
  type DriftReportMessage,
} from './drift-report.ts';
import {
  DEVICE_MESSAGE_PAYLOAD_TYPE,
  signDeviceMessage,
  verifyDeviceMessage,
} from './device-envelope.ts';
import { canonicalJson } from '../encoding/json.ts';
import { signEnvelope } from '../crypto/envelope.ts';
import { MAX_CONTROL_MESSAGE_BYTES, parseDeviceMessage } from './parse.ts';

let a: TestKey;
before(async () => {
  [a] = (await testKeys(450, 1)) as [TestKey];
});

const parse = (changes: Record<string, unknown>) =>
  parseDeviceMessage(wire(patched(driftReport(), changes)));
const sketchOf = (bytes: number) => toBase64(new Uint8Array(bytes).fill(7));
const signals = (count: number, bytes: number) =>
  Array.from({ length: count }, (_, i) => ({ name: `s${i}`, sketch: sketchOf(bytes) }));

describe('drift report', () => {
  it('parses a flush, whose sketches decode to signal sketches', () => {
    const message = parseDeviceMessage(wire(driftReport()));
    assert.ok(message.type === 'drift');
    assert.deepEqual(
      message.signals.map((s) => deserializeSignal(fromBase64(s.sketch)).kind),
      ['numeric', 'categorical'],
    );
    assert.equal(parse({ rolloutId: undefined }).type, 'drift'); // rolloutId is optional
  });

  it('refuses bad fields, naming each', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ sampled: 801 }, /field "sampled": sampled must not exceed inferences/],
      [
        { window: { start: '2026-11-26T12:00:01Z', end: '2026-11-26T12:00:00Z' } },
        /field "window\.end"/,
      ],
      [{ 'window.start': 'yesterday' }, /field "window\.start"/],
      [{ 'window.end': `2026-11-26T12:00:00.${'1'.repeat(40)}Z` }, /field "window\.end"/],
      [{ seq: -1 }, /field "seq"/],
      [{ seq: 1.5 }, /field "seq"/],
      [{ inferences: 2 ** 53 }, /field "inferences"/],
      [{ 'model.bundleId': 'x' }, /field "model\.bundleId"/],
      [{ deviceId: '../dev' }, /field "deviceId"/],
      [{ signals: [] }, /field "signals"/],
      [{ 'signals.0.name': 'has space' }, /field "signals\.0\.name"/],
      [{ 'signals.0.name': 'x'.repeat(65) }, /field "signals\.0\.name"/],
      [{ 'signals.1.name': 'confidence' }, /field "signals": signal names must be unique/],
      [{ 'signals.0.sketch': 'not base64!' }, /field "signals\.0\.sketch": .*canonical base64/],
      [{ 'signals.0.sketch': '' }, /field "signals\.0\.sketch"/],
      [{ 'signals.0.weight': 2 }, /unknown field "signals\.0\.weight"/],
      [{ hostname: 'x' }, /unknown field "hostname"/],
    ];
    for (const [changes, message] of cases) refused(() => parse(changes), 'MALFORMED', message);
  });

  it('caps one sketch, the signal count and all sketches together', () => {
    assert.equal(parse({ signals: signals(1, MAX_DRIFT_SIGNAL_BYTES) }).type, 'drift');
    refused(
      () => parse({ signals: signals(1, MAX_DRIFT_SIGNAL_BYTES + 1) }),
      'MALFORMED',
      /field "signals\.0\.sketch": a signal sketch is at most 16384 bytes/,
    );
    refused(
      () => parse({ signals: signals(MAX_DRIFT_SIGNALS + 1, 3) }),
      'MALFORMED',
      /field "signals"/,
    );
    // six full-size sketches are 96 KiB: the total cap; seven pass it
    const perSignal = MAX_DRIFT_SKETCH_TOTAL_BYTES / 6;
    assert.equal(parse({ signals: signals(6, perSignal) }).type, 'drift');
    refused(
      () => parse({ signals: signals(7, perSignal) }),
      'MALFORMED',
      /field "signals": the sketches of a flush are at most 98304 bytes together/,
    );
  });

  it('signs the largest possible flush under MAX_DRIFT_MESSAGE_BYTES, and verifies it', async () => {
    const long = (prefix: string) => prefix + 'a'.repeat(64 - prefix.length);
    // 64 signals with 64-character names sharing the total sketch budget
    const budget = Math.floor(MAX_DRIFT_SKETCH_TOTAL_BYTES / MAX_DRIFT_SIGNALS / 3) * 3;
    const largest = patched(driftReport(), {
      id: long('i'),
      ts: `2026-11-26T12:00:00.${'1'.repeat(9)}Z`,
      deviceId: long('d'),
      model: {
        name: long('m'),
        version: long('2.0.0-'),
        release: Number.MAX_SAFE_INTEGER,
        bundleId: 'f'.repeat(64),
      },
      rolloutId: long('r'),
      seq: Number.MAX_SAFE_INTEGER,
      window: {
        start: `2026-11-26T11:00:00.${'1'.repeat(9)}Z`,
        end: `2026-11-26T12:00:00.${'1'.repeat(9)}Z`,
      },
      inferences: Number.MAX_SAFE_INTEGER,
      sampled: Number.MAX_SAFE_INTEGER,
      signals: Array.from({ length: MAX_DRIFT_SIGNALS }, (_, i) => ({
        name: `${String(i).padStart(2, '0')}${'n'.repeat(62)}`,
        sketch: sketchOf(budget),
      })),
    }) as DriftReportMessage;
    const envelope = signDeviceMessage({ deviceId: long('d'), message: largest, signer: a });
    const size = wire(envelope).length;
    assert.ok(size > 170_000 && size < MAX_DRIFT_MESSAGE_BYTES, `${size} bytes`);
    assert.ok(size > MAX_CONTROL_MESSAGE_BYTES);
    assert.deepEqual(
      await verifyDeviceMessage(wire(envelope), {
        expectedDeviceId: long('d'),
        publicKey: a.publicKey,
      }),
      largest,
    );
  });

  it('refuses a flush naming another device than the one it is signed for', async () => {
    const message = { ...driftReport(), deviceId: 'dev-b' };
    assert.throws(
      () => signDeviceMessage({ deviceId: 'dev-a', message, signer: a }),
      /DEVICE_MISMATCH/,
    );
    // signed by dev-a's key, bound to dev-a, speaking for dev-b
    const payload = canonicalJson({ deviceId: 'dev-a', message });
    const envelope = signEnvelope(DEVICE_MESSAGE_PAYLOAD_TYPE, payload, [a]);
    await rejected(
      verifyDeviceMessage(envelope, { expectedDeviceId: 'dev-a', publicKey: a.publicKey }),
      'DEVICE_MISMATCH',
      /drift message names device dev-b but is signed for dev-a/,
    );
  });
});
