/**
 * `fleet bundle build`: a float ONNX model (or a `train-reference` output
 * directory) and evaluation data in; a signed bundle with the int8 model,
 * golden vectors, the quantization report, a drift profile and the training
 * weights of federated learning (training-options.ts) out. Prints
 * float vs int8 figures and progress; writes nothing unless every step succeeds.
 */
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { bundleIdOf, FleetError, type Manifest } from '@fleet/protocol';
import { buildBundle, type BuildResult, type DriftBuildInput } from '../core/build/build-bundle.ts';
import { decodeEvalData, type EvalData } from '../core/data/eval-data.ts';
import { decodeOnnx, encodeOnnx } from '../adapters/onnx/onnx-codec.ts';
import { createOnnxRunner } from '../adapters/onnx/runtime.ts';
import { createKeyDirectory } from '../adapters/fs/key-directory.ts';
import { writeFileAtomic } from '../adapters/fs/atomic-write.ts';
import { printJson, readInput, type CliIo } from './io.ts';
import { addReleaseOptions, releaseManifest, type ReleaseFlags } from './release-options.ts';
import { addDriftOptions, type DriftFlags } from './drift-options.ts';
import { addTrainingOptions, trainingInput, type TrainingFlags } from './training-options.ts';

interface BuildFlags extends ReleaseFlags, DriftFlags, TrainingFlags {
  onnx?: string;
  from?: string;
  evalData: string;
  maxAccuracyDrop: number;
  parent?: { version: string; release: number };
}

/** `VERSION@RELEASE`, e.g. `1.0.0@3`: the model this one was derived from. */
function parseParent(value: string): { version: string; release: number } {
  const match = /^([^@\s]+)@(\d+)$/.exec(value);
  const release = Number(match?.[2]);
  if (!match || !Number.isSafeInteger(release) || release < 1) {
    throw new InvalidArgumentError('VERSION@RELEASE, e.g. 1.0.0@3');
  }
  return { version: match[1]!, release };
}

function parsePoints(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 100)
    throw new InvalidArgumentError('percentage points, 0-100');
  return n;
}

/** The git commit of the working directory, when there is one. */
function codeRevision(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .trim()
      .slice(0, 64);
  } catch {
    return undefined;
  }
}

/** The fields of a `train-reference` directory's `reference.json` the build reads. */
interface ReferenceReport {
  datasetDigest?: string;
  hyperparameters?: Record<string, string | number>;
  /** The dense architecture (`fleet model train-reference` writes it); checked where used. */
  architecture?: unknown;
}

async function readReference(flags: BuildFlags): Promise<ReferenceReport | undefined> {
  if (!flags.from) return undefined;
  const bytes = await readInput(join(flags.from, 'reference.json'), 'training report');
  return JSON.parse(new TextDecoder().decode(bytes)) as ReferenceReport;
}

function lineageFrom(flags: BuildFlags, report: ReferenceReport | undefined): Manifest['lineage'] {
  const revision = codeRevision();
  const base = {
    ...(revision ? { codeRevision: revision } : {}),
    ...(flags.parent ? { parent: flags.parent } : {}),
  };
  if (!report) return { producer: { kind: 'import' }, ...base };
  return {
    producer: { kind: 'train-reference' },
    ...(report.datasetDigest ? { datasetDigest: report.datasetDigest } : {}),
    ...(report.hyperparameters ? { hyperparameters: report.hyperparameters } : {}),
    ...base,
  };
}

function table(io: CliIo, r: BuildResult): void {
  const pct = (a: number | null) => (a === null ? 'n/a' : `${(a * 100).toFixed(2)}%`);
  const ms = (v: number) => `${v.toFixed(3)} ms`;
  const rows: [string, string, string][] = [
    ['bytes', String(r.sizes.floatBytes), String(r.sizes.int8Bytes)],
    ['compressed bytes', String(r.sizes.floatCompressedBytes), String(r.sizes.int8CompressedBytes)],
    ['accuracy', pct(r.evaluation.float.accuracy), pct(r.evaluation.int8.accuracy)],
    [
      'p50 latency, 1 input',
      ms(r.evaluation.float.p50LatencyMs),
      ms(r.evaluation.int8.p50LatencyMs),
    ],
    [
      'p50 per input, batch 64',
      ms(r.evaluation.float.p50LatencyPerInputBatch64Ms),
      ms(r.evaluation.int8.p50LatencyPerInputBatch64Ms),
    ],
  ];
  io.stderr(`${''.padEnd(26)}${'float'.padStart(14)}${'int8'.padStart(14)}\n`);
  for (const [label, a, b] of rows)
    io.stderr(`${label.padEnd(26)}${a.padStart(14)}${b.padStart(14)}\n`);
  io.stderr(
    `top-1 agreement ${pct(r.evaluation.top1Agreement)}, max |output diff| ${r.evaluation.maxAbsOutputDiff.toExponential(2)}\n`,
  );
  if (r.drift) {
    io.stderr(
      `drift profile ${r.drift.part}: ${r.drift.signals.length} signals (${r.drift.signals.join(', ')}), ${r.drift.profileBytes} bytes from ${r.drift.samples} samples\n`,
    );
  }
  if (r.training) {
    io.stderr(
      `training weights ${r.training.part}: ${r.training.encoding}, ${r.training.partBytes} bytes for ${r.training.parameters} parameters in ${r.training.tensors} tensors\n`,
    );
  }
}

/** The drift step's input from the flags, or undefined with --no-drift. */
async function driftInput(
  flags: BuildFlags,
  evalData: EvalData,
): Promise<DriftBuildInput | undefined> {
  if (!flags.drift) return undefined;
  const data = flags.driftData
    ? decodeEvalData(await readInput(flags.driftData, 'drift data'))
    : evalData;
  return { data, signals: flags.driftSignals, sampleRate: flags.driftSampleRate };
}

export function bundleBuildCommand(io: CliIo): Command {
  return addTrainingOptions(
    addDriftOptions(
      addReleaseOptions(
        new Command('build').description(
          'quantize a float ONNX model to int8, prove its accuracy, profile its drift signals, and write a signed bundle with its training weights',
        ),
      ),
    ),
  )
    .option('--onnx <file>', 'float32 ONNX model')
    .option(
      '--from <dir>',
      'a fleet model train-reference output directory (model.onnx, reference.json)',
    )
    .requiredOption('--eval-data <file>', 'evaluation data (.fleval)')
    .addOption(
      new Option('--max-accuracy-drop <pp>', 'largest accuracy loss allowed, percentage points')
        .argParser(parsePoints)
        .default(1.0),
    )
    .addOption(
      new Option(
        '--parent <version@release>',
        'the model this one derives from (lineage)',
      ).argParser(parseParent),
    )
    .action(async (flags: BuildFlags) => {
      if (!flags.onnx === !flags.from)
        throw new FleetError('MALFORMED', 'give exactly one of --onnx FILE or --from DIR');
      const modelPath = flags.onnx ?? join(flags.from!, 'model.onnx');
      const floatModel = await readInput(modelPath, 'model');
      const evalData = decodeEvalData(await readInput(flags.evalData, 'evaluation data'));
      const reference = await readReference(flags);
      const training = trainingInput(flags, () => decodeOnnx(floatModel), reference?.architecture);
      const signers = await createKeyDirectory(flags.keys).bundleSigners();
      io.stderr(`quantizing ${modelPath} and evaluating on ${evalData.sampleCount} samples...\n`);
      const result = await buildBundle(
        {
          floatModel,
          evalData,
          signers,
          maxAccuracyDropPoints: flags.maxAccuracyDrop,
          manifest: releaseManifest(flags, io.nowMs(), lineageFrom(flags, reference)),
          drift: await driftInput(flags, evalData),
          training,
          onProgress: (line) => io.stderr(`${line}\n`),
        },
        { decode: decodeOnnx, encode: encodeOnnx, createRunner: createOnnxRunner },
      );
      table(io, result);
      await writeFileAtomic(resolve(flags.out), result.bundle);
      printJson(io, {
        ok: true,
        out: flags.out,
        bundleId: await bundleIdOf(result.bundle),
        sizeBytes: result.bundle.length,
        ...result.sizes,
        floatAccuracy: result.evaluation.float.accuracy,
        int8Accuracy: result.evaluation.int8.accuracy,
        top1Agreement: result.evaluation.top1Agreement,
        drift: result.drift,
        training: result.training,
      });
    });
}
