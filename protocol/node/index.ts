/**
 * @fleet/protocol/node: what only Node.js offers the protocol, for Node
 * consumers (the control plane, the agent). `@fleet/protocol` itself never
 * imports it and stays free of Node built-ins (it also runs in a browser).
 *
 * `nodeInflate` is a `BoundedInflate` over zlib's raw inflate with
 * `maxOutputLength` set to the signed length, so zlib itself stops at the
 * bound (THREATS 15) and never holds more. A part of up to 256 KiB is
 * inflated at once on the calling thread; a larger one in libuv's thread
 * pool, in output chunks of up to 1 MiB. Either way it returns one buffer:
 * `verifyBundle` with it runs at 106 MB/s on a 1 MB bundle against 45 MB/s
 * with `DecompressionStream`, whose web stream hands the output back in many
 * small chunks (protocol/README.md, figures).
 *
 * `writeFileAtomic` is the crash-safe write (temp file, fsync, rename, fsync
 * the directory) both the bundle tools and the agent's state files use.
 *
 * `nativeSigner` / `generateKeyPairNative` sign and make Ed25519 keys through
 * node:crypto, about 100x faster than tweetnacl, with identical signatures.
 */
export { writeFileAtomic, type AtomicWriteOptions } from './atomic-write.ts';
export { generateKeyPairNative, nativeSigner } from './ed25519-native.ts';
import { promisify } from 'node:util';
import { constants, inflateRaw, inflateRawSync } from 'node:zlib';
import {
  asMalformed,
  partTooLarge,
  partTooShort,
  type BoundedInflate,
} from '../src/bundle/inflate.ts';

/**
 * Parts up to this signed length are inflated synchronously. The thread
 * pool's round trip costs more than such a part's inflation: for a 180 KB
 * part, 91-150 us of CPU async against 14 us sync (a script on random
 * bytes); a simulated fleet's agents each inflate a ~200 KB bundle, and zlib
 * with its buffers was 12% of a 3,000-agent fleet's CPU over a rollout.
 * Inflating 256 KiB holds the event loop for at most about 0.6 ms (0.12 ms
 * for zeros, 0.56 ms for 6-bit random bytes, in a script).
 */
const SYNC_INFLATE_MAX_BYTES = 256 * 1024;

const inflateRawAsync = promisify(inflateRaw);

export const nodeInflate: BoundedInflate = async (compressed, expectedLength) => {
  // zlib refuses maxOutputLength 0; an empty part inflates to at most 1 byte then.
  const maxOutputLength = Math.max(expectedLength, 1);
  // One output chunk one byte larger than the part: zlib ends the stream in
  // that chunk instead of filling it exactly and allocating another to find
  // the end. Chunks of up to 1 MiB instead of zlib's 16 KiB: one thread-pool
  // round trip per MiB rather than per 16 KiB (8.7 -> 3.8 ms for a 1.2 MB part).
  const chunkSize = Math.min(Math.max(expectedLength + 1, constants.Z_MIN_CHUNK), 1 << 20);
  let output: Buffer;
  try {
    output =
      expectedLength <= SYNC_INFLATE_MAX_BYTES
        ? inflateRawSync(compressed, { maxOutputLength, chunkSize })
        : await inflateRawAsync(compressed, { maxOutputLength, chunkSize });
  } catch (error) {
    const tooLarge = (error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
    throw tooLarge ? partTooLarge(expectedLength) : asMalformed(error);
  }
  if (output.length > expectedLength) throw partTooLarge(expectedLength);
  if (output.length < expectedLength) throw partTooShort(output.length, expectedLength);
  return new Uint8Array(output.buffer, output.byteOffset, output.length);
};
