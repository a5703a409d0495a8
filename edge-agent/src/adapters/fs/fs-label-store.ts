/**
 * Labelled samples on disk (core/labelled-samples.ts has the contract):
 *
 *   {dataDir}/labels/
 *     0000000000000000.lbl   a segment: header + fixed-size records (label-record-codec.ts),
 *     0000000000000625.lbl   named by the index of its first record
 *     corrupt/               damaged segments, moved here (never deleted)
 *
 * Appends go to the newest segment, written at its known end and fsynced
 * (a segment is started whole by `writeFileAtomic`); a segment is closed at
 * `ceil(maxSamples / 8)` records or when the row width changes. Every record
 * has its own CRC-32, so after a crash mid-append the torn records at the end
 * of the newest segment are found on open and cut off (counted in
 * `truncatedRecords`): an append in flight may be lost, never an older one.
 * A segment with a bad header, a bad record before a good one, or a name not
 * ours is moved to `corrupt/` and reported (AGENT_STATE_CORRUPT): the store
 * goes on without it.
 *
 * Retention is applied on open, append and read: a segment none of whose
 * records is retained is deleted. Disk use is therefore at most about
 * (maxSamples + maxSamples / 8) x (192 + 4 x row width) bytes: 18.7 MB for
 * the defaults and MNIST rows. The index kept in memory is each record's
 * label time (8 bytes a sample); rows are read from disk only on `all`/`read`.
 */
import { mkdir, open as openFile, readdir, readFile, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { writeFileAtomic } from '@fleet/protocol/node';
import {
  checkSample,
  DEFAULT_LABEL_RETENTION,
  retainedFlags,
  toTrainingSet,
  type LabelledSample,
  type LabelledSampleStore,
  type LabelRetention,
} from '../../core/labelled-samples.ts';
import type { CorruptEntry } from '../../core/storage.ts';
import {
  decodeHeader,
  decodeRecord,
  encodeHeader,
  encodeRecord,
  recordBytesFor,
  SEGMENT_HEADER_BYTES,
} from './label-record-codec.ts';

export const LABELS_DIR = 'labels';
export const LABELS_CORRUPT_DIR = 'corrupt';
const SEGMENT_FILE = /^(\d{16})\.lbl$/;
const TEMP_FILE = /^\..+\.[0-9a-f]+\.tmp$/;

/** A segment's file name: the index of its first record in 16 digits. */
export const labelSegmentName = (firstIndex: number) =>
  `${String(firstIndex).padStart(16, '0')}.lbl`;

export interface FsLabelStoreOptions {
  dataDir: string;
  nowMs: () => number;
  retention?: Partial<LabelRetention>;
}

interface Segment {
  name: string;
  firstIndex: number;
  featureCount: number;
  labelTimes: number[];
}

export function createFsLabelStore(options: FsLabelStoreOptions): LabelledSampleStore {
  const retention = { ...DEFAULT_LABEL_RETENTION, ...options.retention };
  const segmentRecords = Math.max(1, Math.ceil(retention.maxSamples / 8));
  const dir = join(options.dataDir, LABELS_DIR);
  let segments: Segment[] = [];
  let appended = 0;
  let dropped = 0;
  let retainedBefore = 0;
  let corruptFiles = 0;
  let truncatedRecords = 0;
  let chain: Promise<unknown> = Promise.resolve();

  /** One file operation at a time, in call order. */
  function serially<T>(work: () => Promise<T>): Promise<T> {
    const run = chain.then(work, work);
    chain = run.catch(() => undefined);
    return run;
  }

  const flags = () =>
    retainedFlags(
      segments.flatMap((s) => s.labelTimes),
      retention,
      options.nowMs(),
    );
  const count = () => flags().filter(Boolean).length;

  async function moveAside(name: string, reason: string): Promise<CorruptEntry> {
    const aside = join(dir, LABELS_CORRUPT_DIR);
    await mkdir(aside, { recursive: true });
    const movedTo = join(aside, `${name}.${Date.now()}-${randomBytes(3).toString('hex')}`);
    await rename(join(dir, name), movedTo);
    corruptFiles++;
    return { name: `${LABELS_DIR}/${name}`, movedTo, reason };
  }

  /** Reads a segment: its label times, or why it is damaged; cuts a torn tail off the newest. */
  async function loadSegment(
    name: string,
    firstIndex: number,
    newest: boolean,
  ): Promise<Segment | string> {
    const bytes = new Uint8Array(await readFile(join(dir, name)));
    const header = decodeHeader(bytes);
    if ('error' in header) return header.error;
    const size = recordBytesFor(header.featureCount);
    const whole = Math.floor((bytes.length - SEGMENT_HEADER_BYTES) / size);
    const partial = (bytes.length - SEGMENT_HEADER_BYTES) % size > 0 ? 1 : 0;
    const labelTimes: number[] = [];
    let firstBad = -1;
    for (let i = 0; i < whole; i++) {
      const record = decodeRecord(bytes, SEGMENT_HEADER_BYTES + i * size, header.featureCount);
      if (record && firstBad >= 0) return `record ${firstBad} is damaged, record ${i} is not`;
      if (record) labelTimes.push(record.labelTs);
      else if (firstBad < 0) firstBad = i;
    }
    const torn = whole - labelTimes.length + partial;
    if (torn > 0) {
      if (!newest) return `${torn} damaged records at its end, and it is not the newest segment`;
      const handle = await openFile(join(dir, name), 'r+');
      try {
        await handle.truncate(SEGMENT_HEADER_BYTES + labelTimes.length * size);
        await handle.sync();
      } finally {
        await handle.close();
      }
      truncatedRecords += torn;
    }
    return { name, firstIndex, featureCount: header.featureCount, labelTimes };
  }

  async function prune(): Promise<void> {
    const keep = flags();
    let at = 0;
    const kept: Segment[] = [];
    for (const segment of segments) {
      const any = keep.slice(at, at + segment.labelTimes.length).some(Boolean);
      at += segment.labelTimes.length;
      if (any) kept.push(segment);
      else await rm(join(dir, segment.name), { force: true });
    }
    segments = kept;
    const now = count();
    dropped += Math.max(0, retainedBefore - now);
    retainedBefore = now;
  }

  /** Appends `samples` (all of one width) to the newest segment at its known end. */
  async function writeTo(segment: Segment, samples: readonly LabelledSample[]): Promise<void> {
    const size = recordBytesFor(segment.featureCount);
    const bytes = new Uint8Array(samples.length * size);
    samples.forEach((s, i) => encodeRecord(s, bytes, i * size));
    const end = SEGMENT_HEADER_BYTES + segment.labelTimes.length * size;
    const handle = await openFile(join(dir, segment.name), 'r+');
    try {
      // At the known end, not O_APPEND: the bytes of an earlier failed write are overwritten.
      await handle.write(bytes, 0, bytes.length, end);
      await handle.truncate(end + bytes.length);
      await handle.datasync();
    } finally {
      await handle.close();
    }
    segment.labelTimes.push(...samples.map((s) => s.labelTs));
  }

  async function startSegment(featureCount: number): Promise<Segment> {
    const last = segments[segments.length - 1];
    const firstIndex = last ? last.firstIndex + last.labelTimes.length : 0;
    const segment: Segment = {
      name: labelSegmentName(firstIndex),
      firstIndex,
      featureCount,
      labelTimes: [],
    };
    await writeFileAtomic(join(dir, segment.name), encodeHeader(featureCount));
    segments.push(segment);
    return segment;
  }

  async function appendAll(samples: readonly LabelledSample[]): Promise<void> {
    let i = 0;
    while (i < samples.length) {
      const width = samples[i]!.features.length;
      let segment = segments[segments.length - 1];
      if (
        !segment ||
        segment.featureCount !== width ||
        segment.labelTimes.length >= segmentRecords
      ) {
        segment = await startSegment(width);
      }
      const room = segmentRecords - segment.labelTimes.length;
      let end = i;
      while (end < samples.length && end - i < room && samples[end]!.features.length === width)
        end++;
      await writeTo(segment, samples.slice(i, end));
      appended += end - i;
      retainedBefore += end - i;
      i = end;
    }
  }

  async function readAll(): Promise<LabelledSample[]> {
    const keep = flags();
    const out: LabelledSample[] = [];
    let at = 0;
    for (const segment of segments) {
      const n = segment.labelTimes.length;
      if (keep.slice(at, at + n).some(Boolean)) {
        const bytes = new Uint8Array(await readFile(join(dir, segment.name)));
        const size = recordBytesFor(segment.featureCount);
        for (let i = 0; i < n; i++) {
          if (!keep[at + i]) continue;
          const record = decodeRecord(bytes, SEGMENT_HEADER_BYTES + i * size, segment.featureCount);
          if (record) out.push(record); // changed under us since open: skipped
        }
      }
      at += n;
    }
    return out;
  }

  return {
    open: () =>
      serially(async () => {
        await mkdir(dir, { recursive: true, mode: 0o700 });
        const names = (await readdir(dir)).sort();
        const corrupt: CorruptEntry[] = [];
        const truncatedAtStart = truncatedRecords;
        const found = names.filter((n) => SEGMENT_FILE.test(n));
        segments = [];
        for (const name of names) {
          if (name === LABELS_CORRUPT_DIR || SEGMENT_FILE.test(name)) continue;
          if (TEMP_FILE.test(name)) await rm(join(dir, name), { force: true });
          else corrupt.push(await moveAside(name, 'not a labelled-sample segment'));
        }
        for (const [k, name] of found.entries()) {
          const firstIndex = Number(SEGMENT_FILE.exec(name)![1]);
          const loaded = await loadSegment(name, firstIndex, k === found.length - 1);
          if (typeof loaded === 'string') corrupt.push(await moveAside(name, loaded));
          else segments.push(loaded);
        }
        retainedBefore = segments.reduce((n, s) => n + s.labelTimes.length, 0);
        await prune();
        return { corrupt, truncatedRecords: truncatedRecords - truncatedAtStart };
      }),
    append: (samples) =>
      serially(async () => {
        samples.forEach(checkSample);
        await appendAll(samples);
        await prune();
      }),
    all: () =>
      serially(async () => {
        await prune();
        return readAll();
      }),
    read: (readOptions) =>
      serially(async () => {
        await prune();
        return toTrainingSet(await readAll(), readOptions);
      }),
    count,
    stats: () => ({ stored: count(), appended, dropped, corruptFiles, truncatedRecords }),
  };
}
