/**
 * The options every bundle-writing command shares (`bundle pack`, `bundle
 * build`): what is released, for which hardware, signed with which keys, into
 * which file; and the manifest fields they become.
 */
import { Option, type Command } from 'commander';
import type { ManifestInput } from '@fleet/protocol';
import { DAY_MS, DEFAULT_BUNDLE_LIFETIME_DAYS } from './io.ts';
import { parseIsoTime, parsePositiveInt } from './keys-command.ts';

export interface ReleaseFlags {
  name: string;
  version: string;
  release: number;
  hardware: string[];
  keys: string;
  out: string;
  expires?: string;
  minAgentVersion: string;
}

/** `--hardware a,b --hardware c` -> [a, b, c]. */
export function collectList(value: string, previous: string[]): string[] {
  return [
    ...previous,
    ...value
      .split(',')
      .map((v) => v.trim())
      .filter(Boolean),
  ];
}

export function addReleaseOptions(command: Command): Command {
  return command
    .requiredOption('--name <name>', 'model name')
    .requiredOption('--version <semver>', 'model version, e.g. 1.2.0')
    .addOption(
      new Option('--release <n>', 'release counter (monotonic)')
        .argParser(parsePositiveInt)
        .makeOptionMandatory(),
    )
    .requiredOption(
      '--hardware <class>',
      'hardware class (repeat or comma-separate)',
      collectList,
      [],
    )
    .requiredOption('--keys <dir>', 'key directory (fleet keys init)')
    .requiredOption('--out <file>', 'bundle file to write')
    .addOption(
      new Option(
        '--expires <iso>',
        `bundle expiry (default: ${DEFAULT_BUNDLE_LIFETIME_DAYS} days)`,
      ).argParser(parseIsoTime),
    )
    .option('--min-agent-version <semver>', 'oldest agent that may install it', '0.1.0');
}

/** The manifest fields the release options describe, issued at `nowMs`. */
export function releaseManifest(
  flags: ReleaseFlags,
  nowMs: number,
  lineage: ManifestInput['lineage'],
): Omit<ManifestInput, 'io' | 'quantization'> {
  return {
    name: flags.name,
    version: flags.version,
    release: flags.release,
    hardware: flags.hardware,
    minAgentVersion: flags.minAgentVersion,
    issuedAt: new Date(nowMs).toISOString(),
    expires: flags.expires ?? new Date(nowMs + DEFAULT_BUNDLE_LIFETIME_DAYS * DAY_MS).toISOString(),
    lineage,
  };
}
