/**
 * The default blob store: files under `{dir}/sha256/{ab}/{abcdef...}`, written
 * atomically (bundles' writeFileAtomic: temp file, fsync, rename), so a crash
 * mid-upload never leaves a half-written blob under a valid name. Reads check
 * the hash again, so a blob corrupted on disk is reported, never served.
 */
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '@fleet/bundles';
import { FleetError, sha256Hex } from '@fleet/protocol';
import type { BlobStore } from '../../core/models/blob-store.ts';

const SHA256_HEX = /^[0-9a-f]{64}$/;

export function createFsBlobStore(dir: string): BlobStore {
  const pathOf = (sha256: string) => {
    // A content address is hex only: it can never walk out of `dir`.
    if (!SHA256_HEX.test(sha256)) throw new FleetError('MALFORMED', 'blob id is not a SHA-256');
    return join(dir, 'sha256', sha256.slice(0, 2), sha256);
  };
  const has = async (sha256: string) => {
    try {
      return (await stat(pathOf(sha256))).isFile();
    } catch {
      return false;
    }
  };
  return {
    async put(bytes) {
      const sha256 = await sha256Hex(bytes);
      if (await has(sha256)) return sha256;
      const path = pathOf(sha256);
      await mkdir(join(dir, 'sha256', sha256.slice(0, 2)), { recursive: true });
      await writeFileAtomic(path, bytes);
      return sha256;
    },
    async get(sha256) {
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(await readFile(pathOf(sha256)));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw error;
      }
      if ((await sha256Hex(bytes)) !== sha256) {
        throw new FleetError('PART_HASH', `blob ${sha256} is corrupt on disk`);
      }
      return bytes;
    },
    has,
  };
}
