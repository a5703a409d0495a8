/**
 * What a CLI command needs from the outside world, injected so tests can run
 * commands in-process with a fixed clock and captured output; and the small
 * input helpers every command shares.
 */
import { readFile } from 'node:fs/promises';
import { FleetError } from '@fleet/protocol';
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Wall-clock time in epoch ms. */
  nowMs(): number;
}

export const DAY_MS = 24 * 60 * 60 * 1000;

/** How long a bundle is valid when `--expires` is not given. */
export const DEFAULT_BUNDLE_LIFETIME_DAYS = 180;

/** Reads a file named on the command line; a missing or unreadable one is MALFORMED input. */
export async function readInput(path: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (cause) {
    throw new FleetError('MALFORMED', `cannot read ${what} ${path}`, { cause });
  }
}

/** Exit codes: 0 success, 1 refused (verification or input), 2 usage. */
export const EXIT_REFUSED = 1;

export function printJson(io: CliIo, value: unknown): void {
  io.stdout(`${JSON.stringify(value, null, 2)}\n`);
}
