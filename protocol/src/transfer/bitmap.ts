/**
 * Block bitmaps: which blocks of a transfer a device holds, or lacks. Bit `i`
 * stands for block `i`, least significant bit first within each byte, so
 * block 0 is `0x01` of byte 0 and block 9 is `0x02` of byte 1. A bitmap of
 * `count` blocks is exactly `ceil(count / 8)` bytes, and the bits past `count`
 * in the last byte are zero.
 *
 * The agent persists its "held" bitmap so a download resumes after a reboot,
 * and sends a "missing" bitmap, in base64, in a `blocks-request`
 * (ARCHITECTURE "Over-the-air delivery").
 *
 * @example
 *   const held = createBitmap(20);
 *   setBit(held, 3);
 *   missingIndices(held, 20, 4); // [0, 1, 2, 4]
 */
import { FleetError } from '../errors.ts';
import { fromBase64, toBase64 } from '../encoding/bytes.ts';
import { MAX_BLOCK_COUNT } from '../messages/common.ts';

/** Bytes of a bitmap of `count` blocks: `ceil(count / 8)`. */
export function bitmapBytes(count: number): number {
  checkCount(count);
  return Math.ceil(count / 8);
}

/** An all-clear bitmap of `count` blocks (0 to MAX_BLOCK_COUNT). */
export function createBitmap(count: number): Uint8Array {
  return new Uint8Array(bitmapBytes(count));
}

/** Sets bit `index` (in place). */
export function setBit(bitmap: Uint8Array, index: number): void {
  checkIndex(bitmap, index);
  bitmap[index >>> 3]! |= 1 << (index & 7);
}

/** Whether bit `index` is set. */
export function hasBit(bitmap: Uint8Array, index: number): boolean {
  checkIndex(bitmap, index);
  return (bitmap[index >>> 3]! & (1 << (index & 7))) !== 0;
}

/** How many bits are set. */
export function countSet(bitmap: Uint8Array): number {
  let total = 0;
  for (const byte of bitmap) {
    let b = byte;
    while (b !== 0) {
      b &= b - 1; // clears the lowest set bit
      total++;
    }
  }
  return total;
}

/**
 * The indices below `count` whose bit is clear, ascending, at most `limit` of
 * them: the blocks still to fetch when `bitmap` records the blocks held.
 */
export function missingIndices(bitmap: Uint8Array, count: number, limit = Infinity): number[] {
  checkLength(bitmap, count);
  const out: number[] = [];
  for (let byteIndex = 0; byteIndex < bitmap.length && out.length < limit; byteIndex++) {
    const byte = bitmap[byteIndex]!;
    if (byte === 0xff) continue;
    for (let bit = 0; bit < 8 && out.length < limit; bit++) {
      const index = byteIndex * 8 + bit;
      if (index >= count) break;
      if ((byte & (1 << bit)) === 0) out.push(index);
    }
  }
  return out;
}

/** The bitmap in canonical base64, as a `blocks-request` carries it. */
export function bitmapToBase64(bitmap: Uint8Array): string {
  return toBase64(bitmap);
}

/**
 * Decodes a base64 bitmap of `count` blocks. Refuses (MALFORMED) anything but
 * canonical base64 of exactly `ceil(count / 8)` bytes with every bit past
 * `count` clear, so one set of blocks has exactly one encoding.
 */
export function bitmapFromBase64(text: string, count: number): Uint8Array {
  const bytes = bitmapBytes(count);
  // Checked before decoding, so an oversize string costs nothing.
  const expectedChars = 4 * Math.ceil(bytes / 3);
  if (text.length !== expectedChars) {
    throw new FleetError(
      'MALFORMED',
      `a bitmap of ${count} blocks is ${expectedChars} base64 characters, not ${text.length}`,
    );
  }
  const bitmap = fromBase64(text);
  checkLength(bitmap, count);
  const usedBits = count % 8;
  if (usedBits !== 0 && bitmap[bytes - 1]! >> usedBits !== 0) {
    throw new FleetError(
      'MALFORMED',
      `a bitmap of ${count} blocks sets bits past block ${count - 1}`,
    );
  }
  return bitmap;
}

function checkCount(count: number): void {
  if (!Number.isInteger(count) || count < 0 || count > MAX_BLOCK_COUNT) {
    throw new FleetError(
      'MALFORMED',
      `a block count is an integer from 0 to ${MAX_BLOCK_COUNT}, not ${count}`,
    );
  }
}

function checkLength(bitmap: Uint8Array, count: number): void {
  const expected = bitmapBytes(count);
  if (bitmap.length !== expected) {
    throw new FleetError(
      'MALFORMED',
      `a bitmap of ${count} blocks is ${expected} bytes, not ${bitmap.length}`,
    );
  }
}

function checkIndex(bitmap: Uint8Array, index: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= bitmap.length * 8) {
    throw new FleetError(
      'MALFORMED',
      `block index ${index} is outside a bitmap of ${bitmap.length} bytes`,
    );
  }
}
