/**
 * `fleet model ...`: reference data and models. Today `export-mnist`, which
 * writes the fixed MNIST split as evaluation-data files.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Command } from 'commander';
import { sha256Hex } from '@fleet/protocol';
import { encodeEvalData } from '../core/data/eval-data.ts';
import { MNIST_SPLIT_SEED, mnistSplit } from '../adapters/mnist/mnist-split.ts';
import { writeFileAtomic } from '../adapters/fs/atomic-write.ts';
import { printJson, type CliIo } from './io.ts';

export function modelCommand(io: CliIo): Command {
  const model = new Command('model').description('reference data and models');

  model
    .command('export-mnist')
    .description(
      'write the fixed 8,000/2,000 MNIST split as .fleval files (see firmware-bundles/README.md)',
    )
    .requiredOption(
      '--out <dir>',
      'directory to write mnist-train.fleval and mnist-test.fleval into',
    )
    .action(async (flags: { out: string }) => {
      io.stderr('splitting the 10,000 MNIST digits...\n');
      const { train, test } = mnistSplit();
      await mkdir(flags.out, { recursive: true });
      const files: Record<string, { samples: number; sha256: string }> = {};
      for (const [name, data] of [
        ['mnist-train.fleval', train],
        ['mnist-test.fleval', test],
      ] as const) {
        const bytes = encodeEvalData(data);
        await writeFileAtomic(join(flags.out, name), bytes);
        files[name] = { samples: data.sampleCount, sha256: await sha256Hex(bytes) };
        io.stderr(`  wrote ${name}: ${data.sampleCount} samples, ${bytes.length} bytes\n`);
      }
      printJson(io, { ok: true, out: flags.out, seed: MNIST_SPLIT_SEED, files });
    });

  return model;
}
