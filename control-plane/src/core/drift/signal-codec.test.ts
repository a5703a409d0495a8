import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isFleetError } from '@fleet/protocol';
import { decodeSignals, encodeSignals } from './signal-codec.ts';

const signals: Array<[string, Uint8Array]> = [
  ['input.0', new Uint8Array([1, 2, 3])],
  ['predicted_class', new Uint8Array(0)],
  ['é', new Uint8Array(300).fill(9)],
];

describe('stored signal codec', () => {
  it('round-trips names and bytes in order', () => {
    assert.deepEqual(decodeSignals(encodeSignals(signals)), signals);
    assert.deepEqual(decodeSignals(encodeSignals([])), []);
  });

  it('refuses every truncation, trailing bytes and a bad header, never half-read', () => {
    const bytes = encodeSignals(signals);
    const malformed = (b: Uint8Array) =>
      assert.throws(
        () => decodeSignals(b),
        (e: unknown) => isFleetError(e, 'MALFORMED'),
      );
    for (let cut = 0; cut < bytes.length; cut++) malformed(bytes.subarray(0, cut));
    malformed(new Uint8Array([...bytes, 0]));
    malformed(Uint8Array.from(bytes, (b, i) => (i === 0 ? 0x58 : b)));
    malformed(Uint8Array.from(bytes, (b, i) => (i === 4 ? 2 : b)));
  });

  it('refuses an empty name', () => {
    assert.throws(() => encodeSignals([['', new Uint8Array(1)]]), /1 to 255 bytes/);
  });
});
