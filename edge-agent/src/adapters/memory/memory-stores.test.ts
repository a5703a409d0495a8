/**
 * The memory stores: the storage contract, and what is theirs alone: the
 * stores of one process hold identical content once (a simulated fleet's
 * thousands of agents fetch the same bundle), with copy on write.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  createMemoryDownloadStore,
  createMemoryDriftOutboxStore,
  createMemorySlotStore,
  createMemoryStateStore,
} from './memory-stores.ts';
import { runStorageContract } from '../storage-contract.ts';

const stores = {
  state: createMemoryStateStore(),
  downloads: createMemoryDownloadStore(),
  slots: createMemorySlotStore(),
  driftOutbox: createMemoryDriftOutboxStore(),
};
runStorageContract('memory stores', () => stores);

const spec = {
  bundleId: 'ef'.repeat(32),
  blockRoot: '12'.repeat(32),
  sizeBytes: 10,
  blockSizeBytes: 4,
  blockCount: 3,
};
const block = (i: number, fill = i + 1) => new Uint8Array(i === 2 ? 2 : 4).fill(fill);

test('downloads of the same transfer in two stores hold one buffer', async () => {
  const [a, b] = [createMemoryDownloadStore(), createMemoryDownloadStore()];
  const [da, db] = [await a.open(spec), await b.open(spec)];
  for (const i of [0, 1, 2]) await da.write(i, block(i));
  for (const i of [2, 0, 1]) await db.write(i, block(i));
  const [ra, rb] = [await da.read(), await db.read()];
  assert.deepEqual([...rb], [1, 1, 1, 1, 2, 2, 2, 2, 3, 3]);
  assert.equal(ra, rb, 'one buffer');
  await a.discard(spec.bundleId);
  await b.discard(spec.bundleId);
});

test('a download whose block differs gets its own copy; the other keeps the shared bytes', async () => {
  const [a, b] = [createMemoryDownloadStore(), createMemoryDownloadStore()];
  const [da, db] = [await a.open(spec), await b.open(spec)];
  await da.write(0, block(0));
  await db.write(1, block(1)); // into the shared buffer
  await db.write(0, block(0, 9)); // differs from what a wrote: b copies
  await db.write(2, block(2));
  await da.write(1, block(1));
  await da.write(2, block(2));
  assert.deepEqual([...(await da.read())], [1, 1, 1, 1, 2, 2, 2, 2, 3, 3]);
  assert.deepEqual([...(await db.read())], [9, 9, 9, 9, 2, 2, 2, 2, 3, 3]);
});

test('slots of two stores share equal part bytes, and keep different ones apart', async () => {
  const [a, b] = [createMemorySlotStore(), createMemorySlotStore()];
  const contents = (model: number[]) => ({
    bundleId: spec.bundleId,
    manifestEnvelope: new Uint8Array([1]),
    parts: new Map([['model.onnx', new Uint8Array(model)]]),
  });
  await a.write('a', contents([4, 5]));
  await b.write('b', contents([4, 5]));
  const part = async (store: typeof a, slot: 'a' | 'b') =>
    (await store.read(slot, spec.bundleId))!.parts.get('model.onnx')!;
  assert.equal(await part(a, 'a'), await part(b, 'b'), 'one buffer');
  await b.write('a', contents([6]));
  assert.deepEqual([...(await part(b, 'a'))], [6]);
  assert.deepEqual([...(await part(a, 'a'))], [4, 5]);
});
