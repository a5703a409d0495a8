/** Small helpers the operator commands share: output, the --url flag, repeatable flags, tag pairs, file arguments. */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { CliIo } from '@fleet/bundles';
import { FleetError } from '@fleet/protocol';

export const print = (io: CliIo, value: unknown) =>
  io.stdout(`${JSON.stringify(value, null, 2)}\n`);
export const withUrl = (command: Command) =>
  command.option('--url <url>', 'control plane URL (or FLEET_URL)');
export const collect = (value: string, previous: string[] = []) => [...previous, value];

/** `k=v` pairs into a tag map; refuses anything else before a request is made. */
export function tagMap(pairs: readonly string[]): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at < 1)
      throw new FleetError('INVALID_REQUEST', `tag ${JSON.stringify(pair)} is not key=value`);
    tags[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return tags;
}

export async function readFileArg(path: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (cause) {
    throw new FleetError('MALFORMED', `cannot read ${what} ${path}`, { cause });
  }
}

/** Clears the terminal before a --watch redraw. */
const CLEAR_SCREEN = '\x1b[2J\x1b[H';

export interface ShowOrWatchOptions<V> {
  /** Reads the view (one API request). */
  fetch: () => Promise<V>;
  format: (view: V) => string;
  /** Print JSON instead of the formatted screen. */
  json?: boolean | undefined;
  /** Redraw every `intervalMs` until `done(view)` (or forever without `done`). */
  watch?: boolean | undefined;
  intervalMs: number;
  done?: (view: V) => boolean;
  sleep: (ms: number) => Promise<unknown>;
}

/** The `status [--watch]` loop the operator commands share: show a view once, or redraw it until it is done. */
export async function showOrWatch<V>(io: CliIo, options: ShowOrWatchOptions<V>): Promise<void> {
  for (;;) {
    const view = await options.fetch();
    if (options.json) print(io, view);
    else io.stdout(`${options.watch ? CLEAR_SCREEN : ''}${options.format(view)}`);
    if (!options.watch || options.done?.(view)) return;
    await options.sleep(options.intervalMs);
  }
}
