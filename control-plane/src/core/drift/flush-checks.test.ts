import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  createNumericSignal,
  serializeSignal,
  toBase64,
  updateSignal,
  type DriftReportMessage,
} from '@fleet/protocol';
import { checkFlush, type FlushContext } from './flush-checks.ts';
import {
  CLEAN,
  MODEL,
  driftMessage,
  sketchTraffic,
  testProfile,
} from './__fixtures__/drift-fixtures.ts';

const NOW = Date.parse('2026-11-26T12:00:00Z');
const profile = testProfile();
const context = (fields: Partial<FlushContext> = {}): FlushContext => ({
  bundle: { name: MODEL.name, version: MODEL.version, release: MODEL.release },
  profile,
  nowMs: NOW,
  maxClockSkewMs: 300_000,
  ...fields,
});
const message = (fields: Partial<DriftReportMessage> = {}): DriftReportMessage => ({
  ...driftMessage({
    deviceId: 'dev-1',
    seq: 1,
    end: '2026-11-26T11:59:30.000Z',
    sketches: sketchTraffic(300, 7, CLEAN),
    sampled: 300,
  }),
  ...fields,
});

function refusal(m: DriftReportMessage, c = context()) {
  const checked = checkFlush(m, c);
  assert.ok(!checked.ok, 'refused');
  return checked;
}

describe('drift flush checks', () => {
  it('accepts a flush of the profile signals, decoded in the profile order', () => {
    const shuffled = message();
    shuffled.signals.reverse();
    const checked = checkFlush(shuffled, context());
    assert.ok(checked.ok);
    assert.deepEqual(
      checked.sketches.map((s) => s.name),
      profile.signals.map((s) => s.name),
    );
    assert.equal(checked.sketches[0]!.sketch.kind, 'numeric');
  });

  it('refuses an unregistered bundle, and one registered under another name or version', () => {
    assert.equal(refusal(message(), context({ bundle: null })).result, 'unknown_bundle');
    const other = refusal(message(), context({ bundle: { ...MODEL, version: '1.3.0' } }));
    assert.equal(other.result, 'model_mismatch');
    assert.match(other.reason, /names mnist-2nn@1\.2\.0.*is mnist-2nn@1\.3\.0/);
  });

  it('refuses a bundle without a drift profile', () => {
    assert.equal(refusal(message(), context({ profile: null })).result, 'no_profile');
  });

  it('refuses missing and unknown signals, naming them', () => {
    const m = message();
    m.signals = m.signals.filter((s) => s.name !== 'confidence');
    m.signals.push({ name: 'humidity', sketch: m.signals[0]!.sketch });
    const refused = refusal(m);
    assert.equal(refused.result, 'signal_mismatch');
    assert.match(refused.reason, /missing confidence; not in the profile: humidity/);
  });

  it('refuses a sketch that does not decode, naming the signal', () => {
    const m = message();
    const bytes = Buffer.from(m.signals[2]!.sketch, 'base64');
    m.signals[2]!.sketch = toBase64(bytes.subarray(0, bytes.length - 3)); // truncated
    const refused = refusal(m);
    assert.equal(refused.result, 'malformed');
    assert.match(refused.reason, /^signal input\.2: /);
    const junk = message();
    junk.signals[0]!.sketch = toBase64(new Uint8Array(40).fill(1));
    assert.equal(refusal(junk).result, 'malformed');
  });

  it('refuses a sketch of the wrong kind, and a KLL sketch below the manifest k', () => {
    const m = message();
    const predicted = m.signals.findIndex((s) => s.name === 'predicted_class');
    m.signals[predicted]!.sketch = m.signals[0]!.sketch;
    assert.match(refusal(m).reason, /predicted_class is categorical, the flush has a numeric/);
    const coarse = createNumericSignal({ k: 8 });
    for (let i = 0; i < 100; i++) updateSignal(coarse, i);
    const low = message();
    low.signals[0]!.sketch = toBase64(serializeSignal(coarse));
    const refused = refusal(low);
    assert.equal(refused.result, 'signal_mismatch');
    assert.match(refused.reason, /k = 8, below the manifest's 100/);
  });

  it('refuses a signal that saw more values than were sampled', () => {
    const refused = refusal(message({ sampled: 299, inferences: 3000 }));
    assert.equal(refused.result, 'malformed');
    assert.match(refused.reason, /saw 300 values, more than the 299 sampled/);
  });

  it('refuses a window ending beyond the allowed clock skew, and accepts one just inside', () => {
    const at = (ms: number) => {
      const end = new Date(NOW + ms).toISOString();
      return message({ window: { start: end, end } });
    };
    assert.ok(checkFlush(at(300_000), context()).ok);
    assert.equal(refusal(at(300_001)).result, 'bad_window');
    assert.ok(checkFlush(at(-86_400_000), context()).ok, 'an old window is late, not wrong');
  });

  it('applies the checks in order: the bundle before the sketches', () => {
    const m = message();
    m.signals[0]!.sketch = toBase64(new Uint8Array(40).fill(1));
    assert.equal(refusal(m, context({ bundle: null })).result, 'unknown_bundle');
    assert.equal(refusal(m, context({ profile: null })).result, 'no_profile');
  });
});
