/**
 * `fleet bundle pack | verify | inspect`: build a signed bundle from files,
 * check one exactly as a device would, or show its manifest without trusting it.
 */
import { resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import {
  bundleIdOf,
  inspectBundle,
  loadTrustedRoot,
  packBundle,
  verifyBundle,
  type PartInput,
} from '@fleet/protocol';
import { createKeyDirectory } from '../adapters/fs/key-directory.ts';
import { writeFileAtomic } from '../adapters/fs/atomic-write.ts';
import { printJson, readInput, type CliIo } from './io.ts';
import { addReleaseOptions, releaseManifest, type ReleaseFlags } from './release-options.ts';
import { bundleBuildCommand } from './bundle-build-command.ts';
import { signRollbackCommand } from './rollback-sign-command.ts';

interface PartFlag {
  name: string;
  file: string;
}

function collectPart(value: string, previous: PartFlag[]): PartFlag[] {
  const eq = value.indexOf('=');
  if (eq <= 0 || eq === value.length - 1) throw new InvalidArgumentError('expected NAME=FILE');
  return [...previous, { name: value.slice(0, eq), file: value.slice(eq + 1) }];
}

function parseReleaseFloor(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('a release number >= 0');
  return n;
}

interface PackFlags extends ReleaseFlags {
  part: PartFlag[];
}

export function bundleCommand(io: CliIo): Command {
  const bundle = new Command('bundle').description('signed model bundles');

  addReleaseOptions(
    bundle
      .command('pack')
      .description('pack files into a bundle signed by the bundle keys in --keys'),
  )
    .requiredOption('--part <name=file>', 'a part (repeatable)', collectPart, [])
    .action(async (flags: PackFlags) => {
      const parts: PartInput[] = [];
      for (const p of flags.part)
        parts.push({ name: p.name, bytes: await readInput(p.file, 'part') });
      const signers = await createKeyDirectory(flags.keys).bundleSigners();
      const bytes = await packBundle({
        manifest: releaseManifest(flags, io.nowMs(), { producer: { kind: 'manual' } }),
        parts,
        signers,
      });
      await writeFileAtomic(resolve(flags.out), bytes);
      printJson(io, {
        ok: true,
        out: flags.out,
        bundleId: await bundleIdOf(bytes),
        sizeBytes: bytes.length,
        signedBy: signers.map((s) => s.keyId),
      });
    });

  bundle
    .command('verify')
    .description(
      'verify a bundle as a device would; exit 0 with a JSON summary, or 1 with the error code',
    )
    .argument('<file>', 'bundle file')
    .requiredOption('--root <file>', 'trusted root.json')
    .addOption(
      new Option('--installed-release <n>', 'release installed now')
        .argParser(parseReleaseFloor)
        .default(0),
    )
    .option('--hardware <class>', 'device hardware class (unchecked when omitted)')
    .option('--device <id>', 'device id (checked against a device-restricted bundle)')
    .action(
      async (
        file: string,
        flags: { root: string; installedRelease: number; hardware?: string; device?: string },
      ) => {
        const root = await loadTrustedRoot(await readInput(flags.root, 'root'));
        const bytes = await readInput(file, 'bundle');
        const verified = await verifyBundle(bytes, {
          root,
          nowMs: io.nowMs(),
          installedRelease: flags.installedRelease,
          hardwareClass: flags.hardware ?? null,
          ...(flags.device === undefined ? {} : { deviceId: flags.device }),
        });
        const m = verified.manifest;
        printJson(io, {
          ok: true,
          bundleId: await bundleIdOf(bytes),
          name: m.name,
          version: m.version,
          release: m.release,
          hardware: m.hardware,
          hardwareChecked: flags.hardware !== undefined,
          expires: m.expires,
          rootVersion: root.metadata.version,
          signedBy: verified.signedBy,
          parts: m.parts.map((p) => ({
            name: p.name,
            sizeBytes: p.uncompressedLength,
            storedBytes: p.length,
          })),
        });
      },
    );

  bundle
    .command('inspect')
    .description('print the manifest as JSON without verifying anything')
    .argument('<file>', 'bundle file')
    .action(async (file: string) => {
      printJson(io, { verified: false, ...inspectBundle(await readInput(file, 'bundle')) });
    });

  bundle.addCommand(bundleBuildCommand(io));
  bundle.addCommand(signRollbackCommand(io));

  return bundle;
}
