/**
 * Partial downloads on disk, resumable after a disconnect or a power cut:
 *
 *   downloads/{bundleId}.part     the bundle file, written block by block at its offset
 *   downloads/{bundleId}.bitmap   which blocks are held (replaced atomically)
 *   downloads/{bundleId}.json     the transfer's shape and Merkle root; any other restarts the download
 *
 * A block is written and synced before its bit is set, so a set bit always
 * means the block's bytes are on disk (they were checked against the Merkle
 * root before `write` was called). Writes of one download run one at a time.
 */
import { mkdir, open, readFile, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { countSet, createBitmap, hasBit, missingIndices, setBit } from '@fleet/protocol';
import { writeFileAtomic } from '@fleet/protocol/node';
import type { Download, DownloadSpec, DownloadStore } from '../../core/storage.ts';
import { checkBlock } from '../download-checks.ts';

export function createFsDownloadStore(dataDir: string): DownloadStore {
  const dir = join(dataDir, 'downloads');
  const pathOf = (bundleId: string, ext: string) => join(dir, `${bundleId}.${ext}`);

  async function resumeBitmap(spec: DownloadSpec): Promise<Uint8Array | null> {
    try {
      const meta = JSON.parse(await readFile(pathOf(spec.bundleId, 'json'), 'utf8')) as unknown;
      if (JSON.stringify(meta) !== JSON.stringify(shapeOf(spec))) return null;
      const bitmap = new Uint8Array(await readFile(pathOf(spec.bundleId, 'bitmap')));
      return bitmap.length === Math.ceil(spec.blockCount / 8) ? bitmap : null;
    } catch {
      return null; // nothing (or nothing usable) stored: start afresh
    }
  }

  async function discard(bundleId: string): Promise<void> {
    await Promise.all(
      ['part', 'bitmap', 'json'].map((ext) => rm(pathOf(bundleId, ext), { force: true })),
    );
  }

  return {
    async open(spec) {
      await mkdir(dir, { recursive: true });
      let bitmap = await resumeBitmap(spec);
      if (!bitmap) {
        await discard(spec.bundleId);
        bitmap = createBitmap(spec.blockCount);
        await writeFileAtomic(pathOf(spec.bundleId, 'bitmap'), bitmap);
        await writeFileAtomic(pathOf(spec.bundleId, 'json'), JSON.stringify(shapeOf(spec)));
      }
      const file = await open(pathOf(spec.bundleId, 'part'), 'a+').then(async (h) => {
        await h.close();
        return open(pathOf(spec.bundleId, 'part'), 'r+');
      });
      return fsDownload(spec, bitmap, file, pathOf(spec.bundleId, 'bitmap'));
    },
    discard,
  };
}

function shapeOf(spec: DownloadSpec) {
  const { sizeBytes, blockSizeBytes, blockCount, blockRoot } = spec;
  return { sizeBytes, blockSizeBytes, blockCount, blockRoot };
}

function fsDownload(
  spec: DownloadSpec,
  bitmap: Uint8Array,
  file: FileHandle,
  bitmapPath: string,
): Download {
  let queue = Promise.resolve();
  let held = countSet(bitmap);
  return {
    blockCount: spec.blockCount,
    has: (index) => hasBit(bitmap, index),
    received: () => held,
    missing: (limit) => missingIndices(bitmap, spec.blockCount, limit),
    bitmap: () => bitmap.slice(),
    write(index, data) {
      checkBlock(spec, index, data);
      const run = queue.then(async () => {
        if (hasBit(bitmap, index)) return; // duplicate delivery: already held
        await file.write(data, 0, data.length, index * spec.blockSizeBytes);
        await file.datasync();
        const next = bitmap.slice();
        setBit(next, index);
        await writeFileAtomic(bitmapPath, next);
        bitmap.set(next);
        held += 1;
      });
      queue = run.catch(() => undefined);
      return run;
    },
    async read() {
      await queue;
      if (held !== spec.blockCount) {
        throw new Error(`download of ${spec.bundleId} holds ${held} of ${spec.blockCount} blocks`);
      }
      const bytes = new Uint8Array(spec.sizeBytes);
      const { bytesRead } = await file.read(bytes, 0, spec.sizeBytes, 0);
      await file.close();
      if (bytesRead !== spec.sizeBytes) {
        throw new Error(
          `download of ${spec.bundleId}: read ${bytesRead} of ${spec.sizeBytes} bytes`,
        );
      }
      return bytes;
    },
  };
}
