/**
 * The drift outbox on disk (core/drift-outbox.ts has its rules):
 *
 *   {dataDir}/drift-outbox/
 *     counters.json               {"schemaVersion":1,"nextSeq":N,"dropped":D}
 *     0000000000000042.json       {"schemaVersion":1,"flush":{...}}: one flush, named by its seq
 *     corrupt/                    damaged files, moved here (never deleted)
 *
 * Every file is written whole and atomically (temp file, fsync, rename, fsync
 * the directory: `writeFileAtomic`), so a power cut leaves the old file or
 * the new one. Sixteen digits keep the names in seq order. A flush file is
 * trusted only if it parses, passes `driftFlushSchema` and holds the seq of
 * its name; anything else in the directory, and a counters file that fails
 * its check, is moved to `corrupt/` and reported as AGENT_STATE_CORRUPT (the
 * outbox then goes on without it) rather than crashing the agent or being
 * deleted unseen. Leftover temp files of an interrupted write are removed.
 *
 * A deleted (acknowledged) file may come back after a power cut if the
 * directory entry was not yet on disk: it is then sent again with its id,
 * which the control plane has already seen.
 */
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '@fleet/protocol/node';
import { driftFlushSchema, type DriftFlush } from '../../core/drift-flush.ts';
import type {
  CorruptEntry,
  DriftOutboxContents,
  DriftOutboxCounters,
  DriftOutboxStore,
} from '../../core/storage.ts';

export const DRIFT_OUTBOX_DIR = 'drift-outbox';
export const DRIFT_COUNTERS_FILE = 'counters.json';
export const DRIFT_CORRUPT_DIR = 'corrupt';

const FLUSH_FILE = /^(\d{16})\.json$/;
/** `writeFileAtomic`'s temporary files: `.{name}.{hex}.tmp`. */
const TEMP_FILE = /^\..+\.[0-9a-f]+\.tmp$/;

const countSchema = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const countersFileSchema = z.strictObject({
  schemaVersion: z.literal(1),
  nextSeq: countSchema,
  dropped: countSchema,
});
const flushFileSchema = z.strictObject({ schemaVersion: z.literal(1), flush: driftFlushSchema });

/** The file name of a flush: its seq in 16 digits. */
export function driftFlushFileName(seq: number): string {
  return `${String(seq).padStart(16, '0')}.json`;
}

export function createFsDriftOutboxStore(dataDir: string): DriftOutboxStore {
  const dir = join(dataDir, DRIFT_OUTBOX_DIR);
  let made: Promise<unknown> | null = null;
  const ensureDir = () => (made ??= mkdir(dir, { recursive: true, mode: 0o700 }));

  async function moveAside(name: string, reason: string): Promise<CorruptEntry> {
    const aside = join(dir, DRIFT_CORRUPT_DIR);
    await mkdir(aside, { recursive: true });
    const movedTo = join(aside, `${name}.${Date.now()}-${randomBytes(3).toString('hex')}`);
    await rename(join(dir, name), movedTo);
    return { name: `${DRIFT_OUTBOX_DIR}/${name}`, movedTo, reason };
  }

  async function readChecked<T>(
    name: string,
    schema: z.ZodType<T>,
  ): Promise<{ ok: true; value: T } | { ok: false; reason: string }> {
    let json: unknown;
    try {
      json = JSON.parse(await readFile(join(dir, name), 'utf8'));
    } catch (error) {
      return { ok: false, reason: `not JSON: ${(error as Error).message}` };
    }
    const parsed = schema.safeParse(json);
    if (parsed.success) return { ok: true, value: parsed.data };
    const issue = parsed.error.issues[0];
    return { ok: false, reason: `${issue?.path.join('.') ?? ''} ${issue?.message ?? 'invalid'}` };
  }

  async function loadCounters(
    names: readonly string[],
    corrupt: CorruptEntry[],
  ): Promise<DriftOutboxContents['counters']> {
    if (!names.includes(DRIFT_COUNTERS_FILE)) return 'missing';
    const read = await readChecked(DRIFT_COUNTERS_FILE, countersFileSchema);
    if (read.ok) return { nextSeq: read.value.nextSeq, dropped: read.value.dropped };
    corrupt.push(await moveAside(DRIFT_COUNTERS_FILE, read.reason));
    return 'corrupt';
  }

  return {
    async load() {
      await ensureDir();
      const names = (await readdir(dir)).sort();
      const corrupt: CorruptEntry[] = [];
      const flushes: DriftFlush[] = [];
      const counters = await loadCounters(names, corrupt);
      for (const name of names) {
        if (name === DRIFT_COUNTERS_FILE || name === DRIFT_CORRUPT_DIR) continue;
        if (TEMP_FILE.test(name)) {
          await rm(join(dir, name), { force: true });
          continue;
        }
        const seqText = FLUSH_FILE.exec(name)?.[1];
        if (seqText === undefined) {
          corrupt.push(await moveAside(name, 'not a drift outbox file'));
          continue;
        }
        const read = await readChecked(name, flushFileSchema);
        if (read.ok && read.value.flush.seq === Number(seqText)) {
          flushes.push(read.value.flush);
          continue;
        }
        const reason = read.ok ? `holds seq ${read.value.flush.seq}` : read.reason;
        corrupt.push(await moveAside(name, reason));
      }
      return { flushes, counters, corrupt };
    },
    async put(flush) {
      await ensureDir();
      await writeFileAtomic(
        join(dir, driftFlushFileName(flush.seq)),
        JSON.stringify({ schemaVersion: 1, flush }),
      );
    },
    async remove(seq) {
      await rm(join(dir, driftFlushFileName(seq)), { force: true });
    },
    async saveCounters(counters: DriftOutboxCounters) {
      await ensureDir();
      await writeFileAtomic(
        join(dir, DRIFT_COUNTERS_FILE),
        JSON.stringify({ schemaVersion: 1, ...counters }),
      );
    },
  };
}
