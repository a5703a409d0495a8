/**
 * Bounds-checked big-endian reading for the drift sketch formats: every read
 * names the field it wants, and reading past the end is a TRUNCATED
 * FleetError instead of a RangeError or a silent zero.
 */
import { FleetError } from '../errors.ts';

export class ByteReader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #what: string;
  #offset = 0;

  /** `what` names the format in error messages ("a KLL sketch"). */
  constructor(bytes: Uint8Array, what: string) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#what = what;
  }

  get offset(): number {
    return this.#offset;
  }

  get remaining(): number {
    return this.#bytes.length - this.#offset;
  }

  /** Throws TRUNCATED unless `count` more bytes are there for `field`. */
  need(count: number, field: string): void {
    if (count > this.remaining) {
      throw new FleetError(
        'TRUNCATED',
        `${this.#what} ends inside its ${field} (needs ${count} bytes at offset ${this.#offset}, has ${this.remaining})`,
      );
    }
  }

  u8(field: string): number {
    this.need(1, field);
    return this.#view.getUint8(this.#offset++);
  }

  u16(field: string): number {
    this.need(2, field);
    const value = this.#view.getUint16(this.#offset);
    this.#offset += 2;
    return value;
  }

  u32(field: string): number {
    this.need(4, field);
    const value = this.#view.getUint32(this.#offset);
    this.#offset += 4;
    return value;
  }

  /** A u64 that must fit a safe integer (below 2^53); larger is TOO_LARGE. */
  u64(field: string): number {
    this.need(8, field);
    const high = this.#view.getUint32(this.#offset);
    const low = this.#view.getUint32(this.#offset + 4);
    this.#offset += 8;
    if (high >= 0x200000) {
      throw new FleetError('TOO_LARGE', `${this.#what} has a ${field} of 2^53 or more`);
    }
    return high * 0x100000000 + low;
  }

  f64(field: string): number {
    this.need(8, field);
    const value = this.#view.getFloat64(this.#offset);
    this.#offset += 8;
    return value;
  }

  /** A view (not a copy) of the next `count` bytes. */
  bytes(count: number, field: string): Uint8Array {
    this.need(count, field);
    const out = this.#bytes.subarray(this.#offset, this.#offset + count);
    this.#offset += count;
    return out;
  }

  /** Throws TRAILING_DATA if any byte is left. */
  end(): void {
    if (this.remaining > 0) {
      throw new FleetError(
        'TRAILING_DATA',
        `${this.#what} has ${this.remaining} bytes after its last field`,
      );
    }
  }
}

/** Writes a u64 (a safe integer) big-endian at `offset`. */
export function setU64(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, Math.floor(value / 0x100000000));
  view.setUint32(offset + 4, value >>> 0);
}

/** True when `bytes` does not start with `magic`. */
export function magicMismatch(bytes: Uint8Array, magic: Uint8Array): boolean {
  for (let i = 0; i < magic.length; i++) if (bytes[i] !== magic[i]) return true;
  return false;
}
