/**
 * The BlobStore contract, run by every implementation (memory, filesystem):
 * content addressing, idempotent puts, misses, and refusing ids that are not
 * SHA-256 (so no id can name a path outside the store).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { sha256Hex, utf8 } from '@fleet/protocol';
import type { BlobStore } from '../../core/models/blob-store.ts';
import { createFsBlobStore } from './fs-blob-store.ts';
import { createMemoryBlobStore } from './memory-blob-store.ts';

function blobStoreContract(name: string, make: () => Promise<BlobStore>) {
  describe(`BlobStore contract: ${name}`, () => {
    it('stores bytes under their SHA-256 and returns them', async () => {
      const store = await make();
      const bytes = utf8('bundle bytes');
      const id = await store.put(bytes);
      assert.equal(id, await sha256Hex(bytes));
      assert.deepEqual(await store.get(id), bytes);
      assert.equal(await store.has(id), true);
    });

    it('is idempotent and does not alias the caller’s buffer', async () => {
      const store = await make();
      const bytes = utf8('same');
      const id = await store.put(bytes);
      bytes[0] = 0;
      assert.equal(await store.put(utf8('same')), id);
      assert.deepEqual(await store.get(id), utf8('same'));
    });

    it('misses cleanly', async () => {
      const store = await make();
      const absent = 'f'.repeat(64);
      assert.equal(await store.get(absent), null);
      assert.equal(await store.has(absent), false);
    });
  });
}

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir() {
  const dir = await mkdtemp(join(tmpdir(), 'fleet-blobs-'));
  dirs.push(dir);
  return dir;
}

blobStoreContract('memory', () => Promise.resolve(createMemoryBlobStore()));
blobStoreContract('filesystem', async () => createFsBlobStore(await tempDir()));

describe('filesystem blob store', () => {
  it('refuses ids that are not SHA-256 (no path can escape the store)', async () => {
    const store = createFsBlobStore(await tempDir());
    await assert.rejects(store.get('../../etc/passwd'), /MALFORMED/);
  });

  it('reports a blob corrupted on disk instead of serving it', async () => {
    const dir = await tempDir();
    const store = createFsBlobStore(dir);
    const id = await store.put(utf8('good bytes'));
    await writeFile(join(dir, 'sha256', id.slice(0, 2), id), 'evil bytes');
    await assert.rejects(store.get(id), /PART_HASH.*corrupt/);
  });

  it('leaves no temporary files behind', async () => {
    const dir = await tempDir();
    const store = createFsBlobStore(dir);
    const id = await store.put(utf8('x'));
    assert.deepEqual(await readdir(join(dir, 'sha256', id.slice(0, 2))), [id]);
  });
});
