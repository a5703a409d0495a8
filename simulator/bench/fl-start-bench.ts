/**
 * Which start weights should devices train from: the shipped model's int8
 * weights (the bundle's `weights.ftns` in its default int8 form, the exact
 * kernels and scales the served model dequantizes) or an optional float32
 * part (four times the bytes)? Issue 7, item 2: "measure which is better".
 *
 * The case that matters is adapting a good model to drifted data, which is
 * what a federated round triggered by a drift alert does. So: the reference
 * 2NN (trained once, as the demo does; cached in .fleet/cache), two bundles
 * built by the real factory from it, one with each training part, and read
 * back the way the control plane does (verifyBundle, readTrainingWeights).
 * From each start, the same federated rounds (in-process, the maths of a
 * real round) on digits rotated 25 degrees with noise 0.15, 20 devices of
 * 100 labelled digits, fraction 0.5, E=2, B=10, lr 0.05, FedAvg; after every
 * round, held-out rotated-digit accuracy of the global float model and of
 * its int8 form (per-channel symmetric, as the factory ships it).
 *
 *   npm run bench:fl-start [-- --rounds 10]
 *
 * Prints progress, then one JSON object last.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  buildBundle,
  buildDenseModel,
  createOnnxRunner,
  decodeOnnx,
  denseArchitectureFromOnnx,
  encodeOnnx,
  initTrust,
  mnistSplit,
  readTrainingWeights,
  trainReferenceModel,
  type EvalData,
  type TrainingWeightsEncoding,
} from '@fleet/bundles';
import {
  createInThreadTrainer,
  evaluateDense,
  type NamedTensor,
  type TrainSamples,
} from '@fleet/edge-agent';
import { decodeTensorSet, encodeTensorSet, loadTrustedRoot, verifyBundle } from '@fleet/protocol';
import { createSeededRandom } from '@fleet/protocol';
import { shiftDigits, type DigitShift } from '../src/fleet/digit-shift.ts';
import { runFederated } from '../src/fl/federated-sim.ts';
import { partitionSamples } from '../src/fl/partitions.ts';

const { values: flags } = parseArgs({
  options: {
    rounds: { type: 'string', default: '10' },
    cache: { type: 'string', default: '.fleet/cache' },
  },
});
const ROUNDS = Number(flags.rounds);
const SHIFT: DigitShift = { rotateDegrees: 25, noiseSigma: 0.15 };
const DEVICES = 20;
const PER_DEVICE = 100;
const log = (line: string) => void process.stdout.write(`${line}\n`);

/** The reference model's float ONNX: the demo's cached one, or trained now. */
async function referenceModel(train: EvalData, test: EvalData): Promise<Uint8Array> {
  const path = join(resolve(flags.cache), 'mnist-2nn-reference.onnx');
  const cached = await readFile(path).catch(() => null);
  if (cached) {
    log(`reference model from ${path}`);
    return new Uint8Array(cached);
  }
  log('training the reference 2NN (about 40 s; `npm run demo` caches it)');
  const trained = await trainReferenceModel({ train, test });
  const bytes = encodeOnnx(buildDenseModel(trained.architecture));
  await mkdir(resolve(flags.cache), { recursive: true });
  await writeFile(path, bytes);
  return bytes;
}

function rows(data: EvalData, from: number, count: number, seed: number): TrainSamples {
  const features = shiftDigits(
    data.features.subarray(from * 784, (from + count) * 784),
    SHIFT,
    createSeededRandom(seed),
  );
  return {
    features,
    labels: Int32Array.from(data.labels!.subarray(from, from + count)),
    count,
    featureCount: 784,
  };
}

/** The weights as the factory would ship them: int8 per output channel, symmetric. */
function shippedInt8(weights: readonly NamedTensor[]): NamedTensor[] {
  return decodeTensorSet(
    encodeTensorSet(
      weights.map((t) => ({ ...t })),
      { encoding: 'int8', scales: 'channel' },
    ),
  ).tensors.map((t, i) => (weights[i]!.dims.length === 1 ? { ...weights[i]! } : t));
}

async function main(): Promise<void> {
  const { train, test } = await mnistSplit();
  const floatModel = await referenceModel(train, test);
  const architecture = denseArchitectureFromOnnx(decodeOnnx(floatModel)).architecture;
  const trust = await initTrust({
    root: { keys: 1, threshold: 1 },
    bundle: { keys: 1, threshold: 1 },
    expires: new Date(Date.now() + 86_400_000).toISOString(),
  });
  const signers = trust.newKeys.filter((k) => k.role === 'bundle');
  const root = await loadTrustedRoot(trust.rootBytes);
  const evalData = {
    ...test,
    sampleCount: 500,
    features: test.features.subarray(0, 500 * 784),
    labels: test.labels!.subarray(0, 500),
  };
  const ports = {
    decode: decodeOnnx,
    encode: encodeOnnx,
    createRunner: (bytes: Uint8Array) => createOnnxRunner(bytes),
  };
  const starts: Record<TrainingWeightsEncoding, { tensors: NamedTensor[]; partBytes: number }> =
    {} as never;
  for (const weights of ['int8', 'float32'] as const) {
    const built = await buildBundle(
      {
        floatModel,
        evalData,
        signers,
        manifest: {
          name: 'mnist-2nn',
          version: '1.0.0',
          release: 1,
          hardware: ['sim-cpu'],
          minAgentVersion: '0.1.0',
          issuedAt: new Date(Date.now() - 60_000).toISOString(),
          expires: new Date(Date.now() + 86_400_000).toISOString(),
          lineage: { producer: { kind: 'train-reference' } },
        },
        training: { architecture, weights },
      },
      ports,
    );
    const verified = await verifyBundle(built.bundle, {
      root,
      nowMs: Date.now(),
      installedRelease: 0,
      hardwareClass: null,
    });
    starts[weights] = {
      tensors: readTrainingWeights(verified).tensors,
      partBytes: built.training!.partBytes,
    };
    log(`bundle with a ${weights} training part: part ${built.training!.partBytes} bytes`);
  }

  // Drifted data: devices hold rotated training digits; the held-out set is rotated test digits.
  const trainRows = rows(train, 0, DEVICES * PER_DEVICE, 1);
  const split = partitionSamples(trainRows.labels, { kind: 'iid', devices: DEVICES, seed: 2 });
  const devices = split.map((indices) => pick(trainRows, indices));
  const heldOut = rows(test, 500, 1500, 3);
  const trainer = createInThreadTrainer();
  const results: Record<string, unknown> = {};
  for (const weights of ['int8', 'float32'] as const) {
    const start = starts[weights].tensors;
    const startFloat = await evaluateDense(architecture, start, heldOut);
    const result = await runFederated({
      architecture: architecture,
      initialWeights: start,
      devices,
      test: heldOut,
      trainer,
      config: {
        fraction: 0.5,
        minClients: 5,
        epochs: 2,
        batchSize: 10,
        learningRate: 0.05,
        clipNorm: 20,
        strategy: { kind: 'fedavg' },
      },
      maxRounds: ROUNDS,
      seed: 7,
    });
    // The shipped (int8) form of the final weights; per round, the float global's accuracy.
    const finalInt8 = await evaluateDense(architecture, shippedInt8(result.weights), heldOut);
    log(
      `start ${weights}: rotated held-out ${(startFloat.accuracy * 100).toFixed(2)}% -> after ${ROUNDS} rounds float ${(result.finalAccuracy * 100).toFixed(2)}%, shipped int8 ${(finalInt8.accuracy * 100).toFixed(2)}%`,
    );
    results[weights] = {
      partBytes: starts[weights].partBytes,
      startAccuracy: startFloat.accuracy,
      finalFloatAccuracy: result.finalAccuracy,
      finalInt8Accuracy: finalInt8.accuracy,
      accuracyByRound: result.rounds.map((r) => Number((r.accuracy ?? Number.NaN).toFixed(4))),
    };
  }
  process.stdout.write(
    `${JSON.stringify({
      bench: 'fl-start-weights',
      setting: {
        shift: SHIFT,
        devices: DEVICES,
        perDevice: PER_DEVICE,
        rounds: ROUNDS,
        fraction: 0.5,
        epochs: 2,
        batchSize: 10,
        learningRate: 0.05,
        heldOut: heldOut.count,
      },
      results,
    })}\n`,
  );
}

function pick(data: TrainSamples, indices: readonly number[]): TrainSamples {
  const features = new Float32Array(indices.length * data.featureCount);
  const labels = new Int32Array(indices.length);
  indices.forEach((src, dst) => {
    features.set(
      data.features.subarray(src * data.featureCount, (src + 1) * data.featureCount),
      dst * data.featureCount,
    );
    labels[dst] = data.labels[src]!;
  });
  return { features, labels, count: indices.length, featureCount: data.featureCount };
}

await main();
