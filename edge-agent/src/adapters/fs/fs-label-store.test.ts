/**
 * The labelled-sample store on disk: the shared contract, then what only a
 * file can go through: a crash mid-append (torn or zeroed tail), damaged
 * segments moved aside, segment rollover and the disk bound.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  appendFile,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  truncate,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runLabelStoreContract, sample, T0 } from '../labelled-samples-contract.ts';
import {
  createFsLabelStore,
  LABELS_CORRUPT_DIR,
  LABELS_DIR,
  labelSegmentName,
} from './fs-label-store.ts';
import { recordBytesFor, SEGMENT_HEADER_BYTES } from './label-record-codec.ts';

const root = await mkdtemp(join(tmpdir(), 'fleet-agent-labels-'));
after(() => rm(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => join(root, `d${dirs++}`);

runLabelStoreContract('fs', () => {
  const dataDir = freshDir();
  return { store: (nowMs, retention) => createFsLabelStore({ dataDir, nowMs, retention }) };
});

const RECORD = recordBytesFor(6);
const now = () => T0 + 1000;
const labels = async (dataDir: string) => {
  const store = createFsLabelStore({ dataDir, nowMs: now });
  const report = await store.open();
  return { store, report, labels: (await store.all()).map((s) => s.label) };
};

describe('labelled samples on disk', () => {
  it('a crash mid-append loses the torn last record only; appends go on after it', async () => {
    const dataDir = freshDir();
    const store = createFsLabelStore({ dataDir, nowMs: now });
    await store.open();
    await store.append([sample(1), sample(2), sample(3)]);
    const file = join(dataDir, LABELS_DIR, labelSegmentName(0));
    await truncate(file, SEGMENT_HEADER_BYTES + 2 * RECORD + 100);
    const after1 = await labels(dataDir);
    assert.deepEqual(after1.labels, [1, 2]);
    assert.equal(after1.report.truncatedRecords, 1);
    assert.deepEqual(after1.report.corrupt, []);
    assert.equal((await stat(file)).size, SEGMENT_HEADER_BYTES + 2 * RECORD, 'the tail is cut');
    await after1.store.append([sample(4)]);
    assert.deepEqual((await labels(dataDir)).labels, [1, 2, 4]);
  });

  it('zeroed records at the end (metadata written before data) are cut off too', async () => {
    const dataDir = freshDir();
    const store = createFsLabelStore({ dataDir, nowMs: now });
    await store.open();
    await store.append([sample(1)]);
    await appendFile(join(dataDir, LABELS_DIR, labelSegmentName(0)), new Uint8Array(2 * RECORD));
    const { labels: got, report } = await labels(dataDir);
    assert.deepEqual(got, [1]);
    assert.equal(report.truncatedRecords, 2);
  });

  it('damaged segments and strangers are moved aside, reported and counted; the rest is kept', async () => {
    const dataDir = freshDir();
    // maxSamples 16: segments of 2 records.
    const store = createFsLabelStore({ dataDir, nowMs: now, retention: { maxSamples: 16 } });
    await store.open();
    await store.append([1, 2, 3, 4, 5, 6].map((n) => sample(n)));
    const dir = join(dataDir, LABELS_DIR);
    assert.deepEqual((await readdir(dir)).sort(), [0, 2, 4].map(labelSegmentName));
    // A flipped byte in the first record of segment 0 (a good record follows it).
    const first = join(dir, labelSegmentName(0));
    const bytes = await readFile(first);
    bytes[SEGMENT_HEADER_BYTES + 200] = bytes[SEGMENT_HEADER_BYTES + 200]! ^ 0xff;
    await writeFile(first, bytes);
    // A bad header on segment 2, a stranger, a leftover temp file.
    await writeFile(join(dir, labelSegmentName(2)), 'not a segment at all');
    await writeFile(join(dir, 'notes.txt'), 'hello');
    await writeFile(join(dir, `.${labelSegmentName(6)}.0a1b2c.tmp`), 'half');
    const reopened = createFsLabelStore({ dataDir, nowMs: now, retention: { maxSamples: 16 } });
    const report = await reopened.open();
    assert.deepEqual(
      report.corrupt.map((c) => c.name).sort(),
      [labelSegmentName(0), labelSegmentName(2), 'notes.txt'].map((n) => `${LABELS_DIR}/${n}`),
    );
    assert.match(
      report.corrupt.find((c) => c.name.endsWith(labelSegmentName(0)))!.reason,
      /record 0 is damaged/,
    );
    assert.equal(reopened.stats().corruptFiles, 3);
    assert.deepEqual(
      (await reopened.all()).map((s) => s.label),
      [5, 6],
    );
    assert.equal((await readdir(join(dir, LABELS_CORRUPT_DIR))).length, 3);
    assert.ok(!(await readdir(dir)).some((n) => n.endsWith('.tmp')), 'temp file removed');
    await reopened.append([sample(7)]);
    assert.deepEqual(
      (await reopened.all()).map((s) => s.label),
      [5, 6, 7],
    );
    assert.deepEqual((await createFsLabelStore({ dataDir, nowMs: now }).open()).corrupt, []);
  });

  it('disk use stays within (maxSamples + maxSamples / 8) records', async () => {
    const dataDir = freshDir();
    const maxSamples = 40;
    const store = createFsLabelStore({ dataDir, nowMs: now, retention: { maxSamples } });
    await store.open();
    for (let round = 0; round < 12; round++)
      await store.append(Array.from({ length: 11 }, (_, i) => sample(round * 11 + i)));
    assert.equal(store.count(), maxSamples);
    const dir = join(dataDir, LABELS_DIR);
    const names = (await readdir(dir)).filter((n) => n.endsWith('.lbl'));
    let bytes = 0;
    for (const name of names) bytes += (await stat(join(dir, name))).size;
    const bound = (maxSamples + maxSamples / 8) * RECORD + names.length * SEGMENT_HEADER_BYTES;
    assert.ok(bytes <= bound, `${bytes} bytes on disk, bound ${bound}`);
    const kept = (await store.all()).map((s) => s.features[0]);
    assert.deepEqual(
      kept,
      Array.from({ length: 40 }, (_, i) => 132 - 40 + i),
    );
  });
});
