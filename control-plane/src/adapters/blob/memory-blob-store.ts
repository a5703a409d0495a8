/** A blob store in memory, for tests and the in-memory control plane. */
import { sha256Hex } from '@fleet/protocol';
import type { BlobStore } from '../../core/models/blob-store.ts';

export function createMemoryBlobStore(): BlobStore {
  const blobs = new Map<string, Uint8Array>();
  return {
    async put(bytes) {
      const sha256 = await sha256Hex(bytes);
      if (!blobs.has(sha256)) blobs.set(sha256, bytes.slice());
      return sha256;
    },
    get: (sha256) => Promise.resolve(blobs.get(sha256)?.slice() ?? null),
    has: (sha256) => Promise.resolve(blobs.has(sha256)),
  };
}
