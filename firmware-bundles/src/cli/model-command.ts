/**
 * `fleet model ...`: reference data and models. Today `export-mnist`, which
 * writes the fixed MNIST split as evaluation-data files; `train-reference`,
 * which trains the reference model and writes it as float32 ONNX.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { sha256Hex } from '@fleet/protocol';
import { encodeEvalData } from '../core/data/eval-data.ts';
import { MNIST_SPLIT_SEED, mnistSplit } from '../adapters/mnist/mnist-split.ts';
import { writeFileAtomic } from '../adapters/fs/atomic-write.ts';
import { printJson, type CliIo } from './io.ts';
import { parsePositiveInt } from './keys-command.ts';
import { buildDenseModel } from '../core/onnx/dense-builder.ts';
import { denseArchitectureSpec } from '../core/onnx/dense-tensors.ts';
import { classifierAccuracy } from '../core/evaluation/classifier-accuracy.ts';
import { encodeOnnx } from '../adapters/onnx/onnx-codec.ts';
import { createOnnxRunner } from '../adapters/onnx/runtime.ts';
import { trainReferenceModel } from '../adapters/tfjs/train-reference.ts';

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
      const { train, test } = await mnistSplit();
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

  model
    .command('train-reference')
    .description(
      'train the MNIST 2NN (784-200-200-10) on the fixed split; write model.onnx and reference.json',
    )
    .requiredOption('--out <dir>', 'directory for model.onnx and reference.json')
    .addOption(new Option('--epochs <n>', 'training epochs').argParser(parsePositiveInt))
    .action(async (flags: { out: string; epochs?: number }) => {
      const started = io.nowMs();
      const { train, test } = await mnistSplit();
      io.stderr('training the MNIST 2NN with TensorFlow.js...\n');
      const trained = await trainReferenceModel({
        train,
        test,
        ...(flags.epochs === undefined ? {} : { epochs: flags.epochs }),
        onEpoch: (r) =>
          io.stderr(
            `  epoch ${r.epoch}/${r.epochs}  loss ${r.loss.toFixed(4)}  test accuracy ${(r.testAccuracy * 100).toFixed(2)}%\n`,
          ),
      });
      const onnxBytes = encodeOnnx(buildDenseModel(trained.architecture));
      io.stderr('evaluating the exported ONNX model with onnxruntime...\n');
      const runner = await createOnnxRunner(onnxBytes);
      const testAccuracy = await classifierAccuracy(runner, test);
      await runner.close();
      await mkdir(flags.out, { recursive: true });
      await writeFileAtomic(join(flags.out, 'model.onnx'), onnxBytes);
      const report = {
        model: 'mnist-2nn',
        testAccuracy,
        testSamples: test.sampleCount,
        trainSamples: train.sampleCount,
        datasetDigest: await sha256Hex(encodeEvalData(train)),
        splitSeed: MNIST_SPLIT_SEED,
        hyperparameters: trained.hyperparameters,
        // What `fleet bundle build --from` declares as the bundle's training architecture.
        architecture: denseArchitectureSpec(trained.architecture),
        backend: trained.backend,
        modelBytes: onnxBytes.length,
        trainingMs: io.nowMs() - started,
      };
      await writeFileAtomic(
        join(flags.out, 'reference.json'),
        `${JSON.stringify(report, null, 2)}\n`,
      );
      printJson(io, { ok: true, out: flags.out, ...report });
    });

  return model;
}
