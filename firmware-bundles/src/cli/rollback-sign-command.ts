/**
 * `fleet bundle sign-rollback`: the signed rollback instruction (ARCHITECTURE
 * "Trust"), made offline with the bundle keys of a key directory, like a
 * bundle. It names the model, the release and bundle to go back to, and
 * optionally the highest release it may undo and the devices or hardware it
 * is for; agents verify it against their pinned root before acting. The
 * control plane forwards it (`fleet rollout rollback ID --authorization FILE`)
 * but cannot make one: no single online key may authorize a model (THREATS 36).
 */
import { resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { signRollbackInstruction, utf8, type RollbackInstruction } from '@fleet/protocol';
import { createKeyDirectory } from '../adapters/fs/key-directory.ts';
import { writeFileAtomic } from '../adapters/fs/atomic-write.ts';
import { printJson, type CliIo } from './io.ts';

function release(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('a release number >= 1');
  return n;
}

const list = (value: string) => value.split(',').filter(Boolean);

interface SignRollbackFlags {
  keys: string;
  model: string;
  toRelease: number;
  toBundle: string;
  fromReleaseAtMost?: number;
  devices?: string[];
  hardware?: string[];
  expiresHours: string;
  out: string;
}

export function signRollbackCommand(io: CliIo): Command {
  return new Command('sign-rollback')
    .description('sign a rollback instruction with the bundle keys in --keys')
    .requiredOption('--keys <dir>', 'key directory holding bundle keys')
    .requiredOption('--model <name>', 'model name')
    .requiredOption('--to-release <n>', 'the release to go back to', release)
    .requiredOption('--to-bundle <id>', 'the bundle id (SHA-256) of that release')
    .option(
      '--from-release-at-most <n>',
      'only devices on this release or below act on it',
      release,
    )
    .option('--devices <ids>', 'only these devices (comma-separated)', list)
    .option('--hardware <classes>', 'only these hardware classes (comma-separated)', list)
    .option('--expires-hours <h>', 'how long it is valid', '24')
    .requiredOption('--out <file>', 'where to write the signed instruction (JSON)')
    .action(async (flags: SignRollbackFlags) => {
      const now = io.nowMs();
      const hours = Number(flags.expiresHours);
      if (!(hours > 0 && hours <= 24 * 30)) {
        throw new InvalidArgumentError('--expires-hours must be in (0, 720]');
      }
      const instruction: RollbackInstruction = {
        type: 'fleet-rollback',
        schemaVersion: 1,
        modelName: flags.model,
        toRelease: flags.toRelease,
        toBundleId: flags.toBundle,
        ...(flags.fromReleaseAtMost ? { fromReleaseAtMost: flags.fromReleaseAtMost } : {}),
        ...(flags.devices ? { devices: flags.devices } : {}),
        ...(flags.hardware ? { hardware: flags.hardware } : {}),
        issuedAt: new Date(now).toISOString(),
        expires: new Date(now + hours * 3_600_000).toISOString(),
      };
      const signers = await createKeyDirectory(flags.keys).bundleSigners();
      const envelope = signRollbackInstruction(instruction, signers);
      await writeFileAtomic(resolve(flags.out), utf8(JSON.stringify(envelope)));
      printJson(io, {
        ok: true,
        out: flags.out,
        instruction,
        signedBy: signers.map((s) => s.keyId),
      });
    });
}
