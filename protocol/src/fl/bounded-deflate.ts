/**
 * Raw deflate for tensor sets, and a synchronous bounded inflate: the output
 * may never pass the uncompressed length the clear header declares (THREATS
 * 15, compression bombs), and memory grows with what is actually produced,
 * never with what the header claims.
 *
 * This is `portableInflate`'s technique (bundle/inflate.ts: fflate's
 * streaming inflater fed 4 KiB slices, so one push produces at most ~1,000x a
 * slice before the cap is checked), made synchronous so a tensor set decodes
 * without a Promise, and with the tensor-set refusals: TOO_LARGE past the
 * declared length, MALFORMED for a bad or short stream.
 */
import { deflateSync, Inflate } from 'fflate';
import { FleetError } from '../errors.ts';
import { concatBytes } from '../encoding/bytes.ts';

/** Input slice fed to fflate per step; deflate expands at most ~1032x. */
const SLICE_BYTES = 4 * 1024;

/** Most output raw deflate can produce per input byte (1032:1, rounded up with slack). */
export const MAX_DEFLATE_RATIO = 1100;

/** Raw deflate (RFC 1951) at fflate's default level. */
export function deflateRaw(bytes: Uint8Array): Uint8Array {
  return deflateSync(bytes);
}

/**
 * Inflates raw deflate `compressed` into exactly `expectedLength` bytes, or
 * throws: TOO_LARGE as soon as the output would pass it, MALFORMED when the
 * stream is invalid or ends short. `what` names the input in the messages.
 */
export function inflateExactly(
  compressed: Uint8Array,
  expectedLength: number,
  what: string,
): Uint8Array {
  const chunks: Uint8Array[] = [];
  let length = 0;
  const inflater = new Inflate((chunk) => {
    length += chunk.length;
    if (length > expectedLength) {
      throw new FleetError(
        'TOO_LARGE',
        `${what} inflates past the ${expectedLength} bytes its header declares`,
      );
    }
    chunks.push(chunk);
  });
  try {
    if (compressed.length === 0) inflater.push(compressed, true);
    for (let i = 0; i < compressed.length; i += SLICE_BYTES) {
      const end = i + SLICE_BYTES;
      inflater.push(compressed.subarray(i, end), end >= compressed.length);
    }
  } catch (cause) {
    if (cause instanceof FleetError) throw cause;
    throw new FleetError('MALFORMED', `${what} is not a valid deflate stream`, { cause });
  }
  const trailing = trailingBytes(inflater);
  if (trailing > 0) {
    throw new FleetError('MALFORMED', `${what} has ${trailing} bytes after its deflate stream`);
  }
  if (length !== expectedLength) {
    throw new FleetError(
      'MALFORMED',
      `${what} inflates to ${length} bytes, its header declares ${expectedLength}`,
    );
  }
  return chunks.length === 1 ? chunks[0]! : concatBytes(...chunks);
}

/**
 * Input bytes after the final deflate block. fflate keeps the unconsumed input
 * in `p` and the bit offset into its first byte in `s.p` (fflate 0.8; a test
 * pins this): the stream's last byte is shared when that offset is nonzero.
 * Anything else is refused, so one tensor set has one byte string.
 */
function trailingBytes(inflater: Inflate): number {
  const internals = inflater as unknown as { p?: unknown; s?: { p?: unknown } };
  if (!(internals.p instanceof Uint8Array) || typeof internals.s?.p !== 'number') return 0;
  return internals.p.length - (internals.s.p > 0 ? 1 : 0);
}
