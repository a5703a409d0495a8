/**
 * The serialized signals of a flush or a merged view in one byte string (a
 * `bytea` column): each signal's name and its `serializeSignal` bytes, in the
 * profile's order. Read back only what this process wrote, but still checked
 * whole before use, so a damaged row fails loudly instead of half-read.
 *
 * Format, version 1 (big-endian):
 *
 *   offset  size  field
 *   0       4     magic "FDSS"
 *   4       1     version, 1
 *   5       1     zero
 *   6       2     signal count, u16
 *   then per signal: u8 name length, name (UTF-8), u32 length, the signal bytes
 */
import { FleetError, fromUtf8, utf8 } from '@fleet/protocol';

const MAGIC = [0x46, 0x44, 0x53, 0x53]; // "FDSS"
const VERSION = 1;

function malformed(message: string): FleetError {
  return new FleetError('MALFORMED', `stored drift signals: ${message}`);
}

/** Encodes named signal sketches (names of 1 to 255 UTF-8 bytes, at most 65,535 signals). */
export function encodeSignals(signals: ReadonlyArray<readonly [string, Uint8Array]>): Uint8Array {
  if (signals.length > 0xffff) throw malformed(`${signals.length} signals, at most 65535`);
  const names = signals.map(([name]) => utf8(name));
  const size = signals.reduce(
    (sum, [, bytes], i) => sum + 1 + names[i]!.length + 4 + bytes.length,
    8,
  );
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  view.setUint8(4, VERSION);
  view.setUint16(6, signals.length);
  let offset = 8;
  signals.forEach(([, bytes], i) => {
    const name = names[i]!;
    if (name.length < 1 || name.length > 255) throw malformed('a name is 1 to 255 bytes');
    view.setUint8(offset, name.length);
    out.set(name, offset + 1);
    offset += 1 + name.length;
    view.setUint32(offset, bytes.length);
    out.set(bytes, offset + 4);
    offset += 4 + bytes.length;
  });
  return out;
}

/** Decodes what `encodeSignals` wrote; MALFORMED for anything else (short, long, bad magic). */
export function decodeSignals(bytes: Uint8Array): Array<[string, Uint8Array]> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const need = (offset: number, n: number) => {
    if (offset + n > bytes.length) throw malformed(`truncated at byte ${offset}`);
  };
  need(0, 8);
  if (MAGIC.some((b, i) => bytes[i] !== b)) throw malformed('bad magic bytes');
  if (view.getUint8(4) !== VERSION) throw malformed(`format version ${view.getUint8(4)}`);
  const count = view.getUint16(6);
  const out: Array<[string, Uint8Array]> = [];
  let offset = 8;
  for (let i = 0; i < count; i++) {
    need(offset, 1);
    const nameLength = view.getUint8(offset);
    need(offset + 1, nameLength + 4);
    const name = fromUtf8(bytes.subarray(offset + 1, offset + 1 + nameLength));
    offset += 1 + nameLength;
    const length = view.getUint32(offset);
    need(offset + 4, length);
    out.push([name, bytes.slice(offset + 4, offset + 4 + length)]);
    offset += 4 + length;
  }
  if (offset !== bytes.length)
    throw malformed(`${bytes.length - offset} bytes after the last signal`);
  return out;
}
