/**
 * The contract every agent storage implementation passes (aedes-persistence
 * `abstract.js` style): `runStorageContract(name, open)` registers the same
 * tests for the filesystem and the memory stores. `open()` returns stores
 * over the same backing data each time it is called, which is how a test
 * restarts the agent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DownloadStore, DriftOutboxStore, SlotStore, StateStore } from '../core/storage.ts';
import { initialAgentState, type AgentState } from '../core/update-state.ts';
import { runDriftOutboxContract } from './drift-outbox-contract.ts';

export interface Stores {
  state: StateStore;
  downloads: DownloadStore;
  slots: SlotStore;
  driftOutbox: DriftOutboxStore;
}

const BUNDLE = 'ab'.repeat(32);
const LATER = '9a'.repeat(32);
const spec = {
  bundleId: BUNDLE,
  blockRoot: 'cd'.repeat(32),
  sizeBytes: 10,
  blockSizeBytes: 4,
  blockCount: 3,
};
const block = (i: number) => new Uint8Array(i === 2 ? 2 : 4).fill(i + 1);

export function runStorageContract(name: string, open: () => Stores): void {
  runDriftOutboxContract(name, () => open().driftOutbox);

  test(`${name}: state starts initial and round-trips every field`, async () => {
    assert.deepEqual(await open().state.load(), initialAgentState());
    const state: AgentState = {
      ...initialAgentState(),
      committed: { ref: { name: 'm', version: '1.0.0', release: 3, bundleId: BUNDLE }, slot: 'b' },
      releaseFloor: { m: 3 },
      recentCommandIds: ['cmd-00000001'],
    };
    await open().state.save(state);
    assert.deepEqual(await open().state.load(), state);
  });

  test(`${name}: blocks arrive in any order, duplicates are harmless, the file is exact`, async () => {
    const download = await open().downloads.open(spec);
    assert.deepEqual(download.missing(), [0, 1, 2]);
    await download.write(2, block(2));
    await download.write(0, block(0));
    await download.write(0, new Uint8Array(4).fill(9)); // a duplicate never overwrites
    assert.deepEqual(download.missing(), [1]);
    assert.equal(download.received(), 2);
    await assert.rejects(download.read(), /holds 2 of 3/);
    await download.write(1, block(1));
    assert.deepEqual([...(await download.read())], [1, 1, 1, 1, 2, 2, 2, 2, 3, 3]);
    await open().downloads.discard(BUNDLE);
  });

  test(`${name}: a download resumes after a restart with what it held`, async () => {
    const first = await open().downloads.open(spec);
    await first.write(1, block(1));
    const resumed = await open().downloads.open(spec);
    assert.deepEqual(resumed.missing(), [0, 2]);
    assert.equal(resumed.has(1), true);
    await resumed.write(0, block(0));
    await resumed.write(2, block(2));
    assert.deepEqual([...(await resumed.read())].slice(4, 8), [2, 2, 2, 2]);
    await open().downloads.discard(BUNDLE);
    assert.deepEqual((await open().downloads.open(spec)).missing(), [0, 1, 2], 'discard forgets');
    await open().downloads.discard(BUNDLE);
  });

  test(`${name}: another transfer shape or Merkle root for the same bundle starts afresh`, async () => {
    await (await open().downloads.open(spec)).write(0, block(0));
    const reshaped = await open().downloads.open({ ...spec, blockSizeBytes: 5, blockCount: 2 });
    assert.deepEqual(reshaped.missing(), [0, 1]);
    await open().downloads.discard(BUNDLE);
    await (await open().downloads.open(spec)).write(0, block(0));
    const rerooted = await open().downloads.open({ ...spec, blockRoot: 'ef'.repeat(32) });
    assert.deepEqual(
      rerooted.missing(),
      [0, 1, 2],
      'blocks checked against another root are not kept',
    );
    await open().downloads.discard(BUNDLE);
  });

  test(`${name}: a block of the wrong length or index is refused and not marked`, async () => {
    const download = await open().downloads.open(spec);
    assert.throws(() => void download.write(0, new Uint8Array(3)), /expected 4/);
    assert.throws(() => void download.write(2, new Uint8Array(4)), /expected 2/);
    assert.throws(() => void download.write(3, new Uint8Array(4)), /outside/);
    assert.deepEqual(download.missing(), [0, 1, 2]);
    await open().downloads.discard(BUNDLE);
  });

  test(`${name}: what a download and a slot hold does not change when the writer's buffers do`, async () => {
    const download = await open().downloads.open(spec);
    const written = [block(0), block(1), block(2)];
    for (const [i, data] of written.entries()) await download.write(i, data);
    for (const data of written) data.fill(0xee);
    assert.deepEqual([...(await download.read())], [1, 1, 1, 1, 2, 2, 2, 2, 3, 3]);
    await open().downloads.discard(BUNDLE);

    const model = new Uint8Array([4, 5]);
    await open().slots.write('b', {
      bundleId: LATER,
      manifestEnvelope: new Uint8Array([1]),
      parts: new Map([['model.onnx', model]]),
    });
    model.fill(0xee);
    assert.deepEqual([...(await open().slots.read('b', LATER))!.parts.get('model.onnx')!], [4, 5]);
  });

  test(`${name}: slots hold one bundle each and are read back only for that bundle`, async () => {
    const contents = {
      bundleId: BUNDLE,
      manifestEnvelope: new Uint8Array([1, 2, 3]),
      parts: new Map([
        ['model.onnx', new Uint8Array([4, 5])],
        ['golden.json', new Uint8Array([6])],
      ]),
    };
    await open().slots.write('a', contents);
    assert.deepEqual(await open().slots.read('a', BUNDLE), contents);
    assert.equal(await open().slots.read('a', 'cd'.repeat(32)), null);
    assert.equal(await open().slots.read('b', BUNDLE), null);
    const other = {
      ...contents,
      bundleId: 'cd'.repeat(32),
      parts: new Map([['model.onnx', new Uint8Array([7])]]),
    };
    await open().slots.write('a', other);
    assert.deepEqual(await open().slots.read('a', other.bundleId), other);
    assert.equal(await open().slots.read('a', BUNDLE), null);
  });
}
