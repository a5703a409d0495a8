import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { toBase64 } from '../encoding/bytes.ts';
import { MAX_BLOCK_COUNT } from '../messages/common.ts';
import {
  bitmapFromBase64,
  bitmapToBase64,
  countSet,
  createBitmap,
  hasBit,
  missingIndices,
  setBit,
} from './bitmap.ts';
import { assertRefused as refused } from '../__fixtures__/refusals.ts';

describe('block bitmap', () => {
  it('is ceil(count / 8) bytes, all clear', () => {
    for (const [count, bytes] of [
      [0, 0],
      [1, 1],
      [8, 1],
      [9, 2],
      [MAX_BLOCK_COUNT, MAX_BLOCK_COUNT / 8],
    ] as const) {
      const bitmap = createBitmap(count);
      assert.equal(bitmap.length, bytes, `${count} blocks`);
      assert.equal(countSet(bitmap), 0);
    }
  });

  it('refuses a count that is negative, fractional or above MAX_BLOCK_COUNT', () => {
    for (const count of [-1, 1.5, MAX_BLOCK_COUNT + 1, NaN]) {
      refused(() => createBitmap(count), 'MALFORMED', /a block count is an integer/);
    }
  });

  it('sets bits least significant first within each byte', () => {
    const bitmap = createBitmap(20);
    setBit(bitmap, 0);
    setBit(bitmap, 9);
    setBit(bitmap, 19);
    assert.deepEqual([...bitmap], [0x01, 0x02, 0x08]);
    assert.equal(hasBit(bitmap, 9), true);
    assert.equal(hasBit(bitmap, 8), false);
    setBit(bitmap, 9); // setting twice changes nothing
    assert.equal(countSet(bitmap), 3);
  });

  it('refuses an index outside the bitmap instead of growing or ignoring it', () => {
    const bitmap = createBitmap(9); // two bytes: bits 0-15 exist
    for (const index of [-1, 16, 1.5, NaN]) {
      refused(() => setBit(bitmap, index), 'MALFORMED', /outside a bitmap of 2 bytes/);
      refused(() => hasBit(bitmap, index), 'MALFORMED');
    }
    assert.deepEqual([...bitmap], [0, 0]);
  });

  it('lists missing indices below count, in order, up to a limit', () => {
    const bitmap = createBitmap(12);
    for (const i of [0, 1, 2, 5, 11]) setBit(bitmap, i);
    assert.deepEqual(missingIndices(bitmap, 12), [3, 4, 6, 7, 8, 9, 10]);
    assert.deepEqual(missingIndices(bitmap, 12, 3), [3, 4, 6]);
    assert.deepEqual(missingIndices(bitmap, 12, 0), []);
    for (let i = 0; i < 12; i++) setBit(bitmap, i);
    assert.deepEqual(missingIndices(bitmap, 12), []);
    refused(() => missingIndices(bitmap, 17), 'MALFORMED', /17 blocks is 3 bytes, not 2/);
  });

  it('counts and lists like a set of indices (property)', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 2000 })
          .chain((count) =>
            fc.tuple(fc.constant(count), fc.uniqueArray(fc.nat(count - 1), { maxLength: count })),
          ),
        ([count, held]) => {
          const bitmap = createBitmap(count);
          for (const i of held) setBit(bitmap, i);
          const set = new Set(held);
          assert.equal(countSet(bitmap), set.size);
          const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !set.has(i));
          assert.deepEqual(missingIndices(bitmap, count), missing);
          assert.deepEqual(bitmapFromBase64(bitmapToBase64(bitmap), count), bitmap);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('bitmap base64', () => {
  it('round-trips, including zero blocks and MAX_BLOCK_COUNT blocks', () => {
    for (const count of [0, 1, 7, 8, 9, MAX_BLOCK_COUNT]) {
      const bitmap = createBitmap(count);
      if (count > 0) setBit(bitmap, count - 1);
      const text = bitmapToBase64(bitmap);
      assert.deepEqual(bitmapFromBase64(text, count), bitmap);
    }
  });

  it('refuses a bitmap of the wrong length, naming both lengths', () => {
    refused(
      () => bitmapFromBase64(toBase64(new Uint8Array(3)), 8),
      'MALFORMED',
      /a bitmap of 8 blocks is 1 bytes, not 3/,
    );
    refused(() => bitmapFromBase64(toBase64(new Uint8Array(1)), 20), 'MALFORMED', /20 blocks/);
    refused(() => bitmapFromBase64('A'.repeat(1_000_000), 20), 'MALFORMED', /not 1000000/);
  });

  it('refuses set bits past count, and accepts the same bits within it', () => {
    refused(
      () => bitmapFromBase64(toBase64(Uint8Array.of(0xff, 0x10)), 12),
      'MALFORMED',
      /sets bits past block 11/,
    );
    assert.deepEqual([...bitmapFromBase64(toBase64(Uint8Array.of(0xff, 0x08)), 12)], [0xff, 0x08]);
    refused(() => bitmapFromBase64(toBase64(Uint8Array.of(0x02)), 1), 'MALFORMED', /past block 0/);
  });

  it('refuses base64 that is not canonical', () => {
    // 'AB==' decodes to the byte 0x00 but with non-zero padding bits.
    refused(() => bitmapFromBase64('AB==', 8), 'MALFORMED', /not canonical base64/);
    refused(() => bitmapFromBase64('AA*=', 8), 'MALFORMED', /not canonical base64/);
  });
});
