/**
 * The shape rules every `Download.write` enforces, whatever stores the bytes:
 * the index is a block of the transfer and the data is that block's exact
 * length (the last block may be shorter). A caller bug, not bad input: the
 * block was checked against the Merkle root before it got here.
 */
import { FleetError } from '@fleet/protocol';
import type { DownloadSpec } from '../core/storage.ts';

export function expectedBlockLength(spec: DownloadSpec, index: number): number {
  const start = index * spec.blockSizeBytes;
  return Math.min(spec.blockSizeBytes, spec.sizeBytes - start);
}

export function checkBlock(spec: DownloadSpec, index: number, data: Uint8Array): void {
  if (!Number.isInteger(index) || index < 0 || index >= spec.blockCount) {
    throw new FleetError('MALFORMED', `block ${index} is outside 0..${spec.blockCount - 1}`);
  }
  const expected = expectedBlockLength(spec, index);
  if (data.length !== expected) {
    throw new FleetError(
      'MALFORMED',
      `block ${index} of ${spec.bundleId.slice(0, 12)}… is ${data.length} bytes, expected ${expected}`,
    );
  }
}
