import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isFleetError } from '../errors.ts';
import { createSeededRandom } from './random.ts';
import {
  createCategoricalSignal,
  createNumericSignal,
  deserializeSignal,
  mergeSignal,
  serializeSignal,
  updateSignal,
  type SignalSketch,
} from './signal-sketch.ts';
import { assertRefused as refused } from '../__fixtures__/refusals.ts';

function numeric(seed: number, size: number) {
  const random = createSeededRandom(seed);
  const signal = createNumericSignal({ random: createSeededRandom(seed) });
  for (let i = 0; i < size; i++) {
    const u = random();
    updateSignal(signal, u < 0.01 ? NaN : u < 0.02 ? null : u < 0.03 ? Infinity : u);
  }
  return signal;
}

function categorical(seed: number, size: number) {
  const random = createSeededRandom(seed);
  const signal = createCategoricalSignal({ maxMapSize: 16 });
  for (let i = 0; i < size; i++) {
    const u = random();
    updateSignal(
      signal,
      u < 0.05 ? null : u < 0.5 ? Math.floor(u * 10) : `label-${Math.floor(u * 4)}`,
    );
  }
  return signal;
}

describe('signal sketch', () => {
  it('numeric: non-finite and missing values go to the counters only', () => {
    const signal = numeric(1, 5000);
    assert.equal(signal.counters.count, signal.kll.n);
    assert.equal(signal.counters.total, 5000);
    assert.ok(
      signal.counters.nanCount > 0 &&
        signal.counters.nullCount > 0 &&
        signal.counters.infinityCount > 0,
    );
    refused(() => updateSignal(signal, 'x'), 'MALFORMED', /numbers/);
  });

  it('categorical: integers count as their decimal strings, null as missing', () => {
    const signal = createCategoricalSignal();
    for (const value of [3, '3', 'cat', null, undefined]) updateSignal(signal, value);
    assert.equal(signal.items.lowerBound('3'), 2);
    assert.equal(signal.nullCount, 2);
    refused(() => updateSignal(signal, 1.5), 'MALFORMED', /integers/);
    refused(() => updateSignal(signal, NaN), 'MALFORMED', /integers/);
  });

  it('merges like with like and refuses mixing kinds', () => {
    const a = numeric(1, 3000);
    mergeSignal(a, numeric(2, 2000));
    assert.equal(a.counters.total, 5000);
    assert.equal(a.counters.count, a.kll.n);
    const c = categorical(3, 1000);
    mergeSignal(c, categorical(4, 1000));
    assert.equal(c.items.n + c.nullCount, 2000);
    refused(() => mergeSignal(a, c), 'MALFORMED', /categorical signal into a numeric/);
  });

  it('round-trips both kinds bit-identically', () => {
    const signals: SignalSketch[] = [
      numeric(5, 4000),
      categorical(6, 4000),
      createNumericSignal(),
      createCategoricalSignal(),
    ];
    for (const signal of signals) {
      const bytes = serializeSignal(signal);
      const copy = deserializeSignal(bytes);
      assert.equal(copy.kind, signal.kind);
      assert.deepEqual(serializeSignal(copy), bytes);
    }
  });

  it('refuses truncation, trailing bytes, unknown kinds and counters that disagree with the KLL sketch', () => {
    for (const bytes of [serializeSignal(numeric(7, 500)), serializeSignal(categorical(8, 500))]) {
      for (let length = 0; length < bytes.length; length++) {
        refused(() => deserializeSignal(bytes.subarray(0, length)), 'TRUNCATED');
      }
      refused(() => deserializeSignal(Uint8Array.from([...bytes, 0])), 'TRAILING_DATA');
      const kind = bytes.slice();
      kind[5] = 3;
      refused(() => deserializeSignal(kind), 'MALFORMED', /unknown kind 3/);
    }
    const mismatched = numeric(9, 100);
    mismatched.counters.update(1); // counted, but not in the KLL sketch
    refused(
      () => deserializeSignal(serializeSignal(mismatched)),
      'MALFORMED',
      /counters count \d+ finite values, its KLL sketch \d+/,
    );
    refused(
      () => deserializeSignal(serializeSignal(numeric(1, 10)), { maxBytes: 50 }),
      'TOO_LARGE',
    );
  });

  it('fails only with FleetErrors under random corruption (seeded fuzz)', () => {
    const random = createSeededRandom(12);
    const originals = [serializeSignal(numeric(10, 300)), serializeSignal(categorical(11, 300))];
    for (let round = 0; round < 2000; round++) {
      const bytes = originals[round % 2]!.slice();
      bytes[Math.floor(random() * bytes.length)]! ^= 1 << Math.floor(random() * 8);
      try {
        const signal = deserializeSignal(bytes);
        assert.deepEqual(serializeSignal(signal), bytes);
      } catch (e) {
        assert.ok(isFleetError(e), String(e));
      }
    }
  });
});
