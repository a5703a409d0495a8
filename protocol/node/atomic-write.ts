/**
 * Crash-safe file writes: write a temporary file beside the target, fsync it,
 * rename it over the target, fsync the directory. A reader sees the old file or
 * the new one, never half of one; a failed write leaves nothing behind.
 */
import { open, rename, rm } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';
import { randomBytes } from 'node:crypto';

export interface AtomicWriteOptions {
  /** File mode of the new file, e.g. 0o600 for private keys (default 0o644). */
  mode?: number;
  /** Refuse to replace an existing file. */
  exclusive?: boolean;
}

export async function writeFileAtomic(
  path: string,
  bytes: Uint8Array | string,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', options.mode ?? 0o644);
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  try {
    if (options.exclusive) await assertAbsent(path);
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await syncDirectory(dirname(path));
}

async function assertAbsent(path: string): Promise<void> {
  const existing = await open(path, 'r').catch(() => undefined);
  if (existing) {
    await existing.close();
    throw new Error(`${path} already exists`);
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
