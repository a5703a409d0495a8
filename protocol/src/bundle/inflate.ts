/**
 * Bounded raw-deflate decompression: the output may never pass the signed
 * uncompressed length (THREATS 15, compression bombs), and memory stays at that
 * length. Two implementations of one contract, both tested by inflate.test.ts:
 *
 * - `nativeInflate`: the platform's DecompressionStream (zlib in Node, native in
 *   browsers); about twice as fast as fflate on model weights (README figures).
 * - `portableInflate`: fflate's streaming inflater, fed 4 KiB slices so one call
 *   can never produce more than ~1,000x a slice before the cap is checked.
 */
import { Inflate } from 'fflate';
import { FleetError } from '../errors.ts';

/**
 * Inflates `compressed` into exactly `expectedLength` bytes. Throws PART_TOO_LARGE
 * as soon as the output would pass it, PART_LENGTH when the stream ends short,
 * MALFORMED when the stream is not valid raw deflate.
 */
export type BoundedInflate = (
  compressed: Uint8Array,
  expectedLength: number,
) => Promise<Uint8Array>;

/** The refusals every BoundedInflate raises, worded once. */
export function partTooLarge(expectedLength: number): FleetError {
  return new FleetError(
    'PART_TOO_LARGE',
    `part inflates past its signed length of ${expectedLength} bytes`,
  );
}

export function partTooShort(length: number, expectedLength: number): FleetError {
  return new FleetError(
    'PART_LENGTH',
    `part inflates to ${length} bytes, the manifest signs ${expectedLength}`,
  );
}

class BoundedOutput {
  readonly bytes: Uint8Array;
  readonly expectedLength: number;
  length = 0;

  constructor(expectedLength: number) {
    this.expectedLength = expectedLength;
    this.bytes = new Uint8Array(expectedLength);
  }

  append(chunk: Uint8Array): void {
    if (this.length + chunk.length > this.expectedLength) throw partTooLarge(this.expectedLength);
    this.bytes.set(chunk, this.length);
    this.length += chunk.length;
  }

  finish(): Uint8Array {
    if (this.length !== this.expectedLength) throw partTooShort(this.length, this.expectedLength);
    return this.bytes;
  }
}

export function asMalformed(cause: unknown): FleetError {
  if (cause instanceof FleetError) return cause as FleetError;
  return new FleetError('MALFORMED', 'part is not a valid deflate stream', { cause });
}

export const nativeInflate: BoundedInflate = async (compressed, expectedLength) => {
  const output = new BoundedOutput(expectedLength);
  const stream = new Blob([compressed as Uint8Array<ArrayBuffer>])
    .stream()
    .pipeThrough(new DecompressionStream('deflate-raw'));
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      output.append(value);
    }
  } catch (cause) {
    await reader.cancel().catch(() => undefined);
    throw asMalformed(cause);
  }
  return output.finish();
};

/** Input slice fed to fflate per step; deflate expands at most ~1032x. */
const PORTABLE_SLICE_BYTES = 4 * 1024;

export const portableInflate: BoundedInflate = (compressed, expectedLength) => {
  const output = new BoundedOutput(expectedLength);
  const inflater = new Inflate((chunk) => output.append(chunk));
  try {
    if (compressed.length === 0) inflater.push(compressed, true);
    for (let i = 0; i < compressed.length; i += PORTABLE_SLICE_BYTES) {
      const end = i + PORTABLE_SLICE_BYTES;
      inflater.push(compressed.subarray(i, end), end >= compressed.length);
    }
  } catch (cause) {
    return Promise.reject(asMalformed(cause));
  }
  try {
    return Promise.resolve(output.finish());
  } catch (error) {
    return Promise.reject(asMalformed(error));
  }
};

let nativeAvailable: boolean | undefined;

/** The fastest inflater this platform offers. */
export function defaultInflate(): BoundedInflate {
  if (nativeAvailable === undefined) {
    try {
      new DecompressionStream('deflate-raw');
      nativeAvailable = true;
    } catch {
      nativeAvailable = false;
    }
  }
  return nativeAvailable ? nativeInflate : portableInflate;
}
