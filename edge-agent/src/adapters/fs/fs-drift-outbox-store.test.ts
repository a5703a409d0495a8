import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDriftOutbox } from '../../core/drift-outbox.ts';
import { sampleDraft } from '../drift-outbox-contract.ts';
import {
  createFsDriftOutboxStore,
  DRIFT_CORRUPT_DIR,
  DRIFT_COUNTERS_FILE,
  DRIFT_OUTBOX_DIR,
  driftFlushFileName,
} from './fs-drift-outbox-store.ts';

const root = await mkdtemp(join(tmpdir(), 'fleet-agent-drift-outbox-'));
after(() => rm(root, { recursive: true, force: true }));
const NOW = Date.parse('2026-11-27T10:00:00Z');

async function outboxIn(dataDir: string) {
  const outbox = createDriftOutbox({ store: createFsDriftOutboxStore(dataDir), nowMs: () => NOW });
  const corrupt = await outbox.open();
  return { outbox, corrupt };
}

test('damaged outbox files are moved aside unchanged and reported; the good ones are kept and sent', async () => {
  const dataDir = await mkdtemp(join(root, 'damaged-'));
  const { outbox } = await outboxIn(dataDir);
  const good = await outbox.append(sampleDraft(1));
  const truncated = await outbox.append(sampleDraft(2));
  const renamed = await outbox.append(sampleDraft(3));
  const dir = join(dataDir, DRIFT_OUTBOX_DIR);
  const truncatedText = (
    await readFile(join(dir, driftFlushFileName(truncated.seq)), 'utf8')
  ).slice(0, 80);
  await writeFile(join(dir, driftFlushFileName(truncated.seq)), truncatedText);
  // A whole flush under another seq's name: trusting it would resend it under the wrong seq.
  await rm(join(dir, driftFlushFileName(renamed.seq)));
  await writeFile(
    join(dir, driftFlushFileName(renamed.seq + 5)),
    JSON.stringify({ schemaVersion: 1, flush: renamed }),
  );
  await writeFile(join(dir, 'notes.txt'), 'not ours');
  await writeFile(join(dir, `.${driftFlushFileName(99)}.0a1b2c.tmp`), '{"half');

  const { outbox: restarted, corrupt } = await outboxIn(dataDir);
  assert.deepEqual(
    corrupt.map((c) => c.name).sort(),
    [
      `${DRIFT_OUTBOX_DIR}/${driftFlushFileName(truncated.seq)}`,
      `${DRIFT_OUTBOX_DIR}/${driftFlushFileName(renamed.seq + 5)}`,
      `${DRIFT_OUTBOX_DIR}/notes.txt`,
    ].sort(),
  );
  assert.match(
    corrupt.find((c) => c.name.endsWith('notes.txt'))!.reason,
    /not a drift outbox file/,
  );
  assert.match(corrupt.find((c) => c.name.includes(String(renamed.seq + 5)))!.reason, /holds seq/);
  assert.match(corrupt.find((c) => c.name.includes(String(truncated.seq)))!.reason, /not JSON/);
  // Moved, not deleted: the bytes are in corrupt/ as they were.
  const truncatedEntry = corrupt.find((c) => c.name.includes(driftFlushFileName(truncated.seq)))!;
  assert.equal(await readFile(truncatedEntry.movedTo!, 'utf8'), truncatedText);
  assert.equal((await readdir(join(dir, DRIFT_CORRUPT_DIR))).length, 3);
  assert.deepEqual(
    (await readdir(dir)).filter((n) => n.endsWith('.tmp')),
    [],
    'a leftover temp file is removed',
  );
  assert.deepEqual(restarted.pending(), [good]);
  // The seq still rises past everything given out before.
  assert.equal((await restarted.append(sampleDraft(4))).seq, renamed.seq + 1);
  // A second start finds nothing new to report.
  assert.deepEqual((await outboxIn(dataDir)).corrupt, []);
});

test('damaged counters are moved aside and reported, and no seq is given out twice', async () => {
  const dataDir = await mkdtemp(join(root, 'counters-'));
  const { outbox } = await outboxIn(dataDir);
  await outbox.append(sampleDraft(1));
  const last = await outbox.append(sampleDraft(2));
  await outbox.ack(last.seq);
  await writeFile(
    join(dataDir, DRIFT_OUTBOX_DIR, DRIFT_COUNTERS_FILE),
    '{"schemaVersion":1,"nextSeq":-4',
  );
  const { outbox: restarted, corrupt } = await outboxIn(dataDir);
  assert.deepEqual(
    corrupt.map((c) => c.name),
    [`${DRIFT_OUTBOX_DIR}/${DRIFT_COUNTERS_FILE}`],
  );
  // The acknowledged seq left no file: only the clock floor keeps it from coming back.
  const next = await restarted.append(sampleDraft(3));
  assert.ok(next.seq > last.seq);
  assert.ok(next.seq >= NOW, `seq ${next.seq} from the clock floor`);
  const again = await outboxIn(dataDir);
  assert.deepEqual(again.corrupt, [], 'the new counters were saved');
  assert.equal(again.outbox.stats().nextSeq, next.seq + 1);
});
