import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isFleetError } from '@fleet/protocol';
import { runStorageContract } from '../storage-contract.ts';
import { createFsDownloadStore } from './fs-download-store.ts';
import { createFsDriftOutboxStore } from './fs-drift-outbox-store.ts';
import { createFsSlotStore } from './fs-slot-store.ts';
import { createFsStateStore, STATE_FILE } from './fs-state-store.ts';

const dir = await mkdtemp(join(tmpdir(), 'fleet-agent-fs-'));
after(() => rm(dir, { recursive: true, force: true }));

// Every open() is a fresh set of stores on the same directory: a restarted agent.
runStorageContract('filesystem stores', () => ({
  state: createFsStateStore(dir),
  downloads: createFsDownloadStore(dir),
  slots: createFsSlotStore(dir),
  driftOutbox: createFsDriftOutboxStore(dir),
}));

test('a damaged state file is reported as AGENT_STATE_CORRUPT, not replaced', async () => {
  const own = await mkdtemp(join(tmpdir(), 'fleet-agent-state-'));
  try {
    await writeFile(join(own, STATE_FILE), '{"schemaVersion":1,"committed":');
    await assert.rejects(createFsStateStore(own).load(), (e) =>
      isFleetError(e, 'AGENT_STATE_CORRUPT'),
    );
    await writeFile(join(own, STATE_FILE), '{"schemaVersion":2}');
    await assert.rejects(createFsStateStore(own).load(), (e) =>
      isFleetError(e, 'AGENT_STATE_CORRUPT'),
    );
  } finally {
    await rm(own, { recursive: true, force: true });
  }
});

test('a slot whose marker was never written (cut off mid-write) reads as empty', async () => {
  const own = await mkdtemp(join(tmpdir(), 'fleet-agent-slot-'));
  try {
    const slots = createFsSlotStore(own);
    const bundleId = 'ef'.repeat(32);
    await slots.write('b', {
      bundleId,
      manifestEnvelope: new Uint8Array([1]),
      parts: new Map([['model.onnx', new Uint8Array([2])]]),
    });
    await rm(join(own, 'slots', 'b', 'slot.json'));
    assert.equal(await slots.read('b', bundleId), null);
  } finally {
    await rm(own, { recursive: true, force: true });
  }
});
