/**
 * The federated-learning bench (`npm run bench:fl`), issue 7's figures, on
 * the FedAvg paper's 2NN (784-200-200-10) and Fleet's 8,000 / 2,000 MNIST
 * split, 100 simulated devices, C = 0.1, from one seeded Glorot start:
 *
 *   1. centralized: SGD (B = 10) on all 8,000 digits until the test accuracy
 *      stops improving; its best is the ceiling, target = ceiling - 1 point
 *   2. per (method, split), the learning rate tuned as the paper does (best
 *      over a grid), with one procedure for every method: a pilot of the
 *      same number of rounds for each rate of the method's grid, scored by
 *      the mean test accuracy of its evaluations (every 5 rounds) in the
 *      pilot's second half;
 *      a best rate at the grid's edge extends the grid one step that way;
 *      then the full run with the chosen rate: rounds to the target for
 *      FedAvg (E = 1, B = 10) and FedSGD (E = 1, B = full) on the IID and
 *      the pathological (2 shards per device) split, capped (`> cap`)
 *   3. the local-steps check: the same on IID data over 20 devices of 400
 *      digits (C = 0.1: 2 devices, 800 digits a round, as with 100 devices),
 *      so FedAvg does u = E n / B = 40 local steps a round instead of 8
 *   4. bytes per update of a real 2NN delta, int8 versus float32
 *   5. aggregation time of 1,000 2NN updates per strategy (median of runs)
 *
 *   npm run bench:fl -- [--pool 2] [--cap-fedavg 500] [--cap-fedsgd 600]
 *     [--sgd-eval-every 10] [--pilot-rounds 60] [--grid-fedavg 0.1,0.2,...]
 *     [--grid-fedsgd 0.2,0.3,...] [--grid-extend 1] [--lr-fedavg x]
 *     [--lr-fedsgd x] [--lr-centralized 0.1] [--max-epochs 20] [--agg-runs 3]
 *     [--only fedavg-iid,...]
 *
 * `--lr-fedavg` / `--lr-fedsgd` fix that method's rate and skip its pilots.
 * Progress goes to stderr; the last stdout line is one JSON object.
 */
import { parseArgs } from 'node:util';
import { mnistSplit } from '@fleet/bundles';
import { createStrategy, type ClientUpdate, type StrategyConfig } from '@fleet/control-plane';
import {
  createInThreadTrainer,
  createTrainingPool,
  type NamedTensor,
  type Trainer,
  type TrainingPool,
  type TrainSamples,
} from '@fleet/edge-agent';
import { clipToL2, encodeTensorSet, globalL2Norm } from '@fleet/protocol';
import { trainCentralized } from '../src/fl/centralized.ts';
import { runFederated, type FederatedSimResult } from '../src/fl/federated-sim.ts';
import { glorotUniformWeights, MNIST_2NN, toTrainSamples } from '../src/fl/mnist-2nn.ts';
import { partitionSamples, seededUniform, type PartitionKind } from '../src/fl/partitions.ts';

const { values: flags } = parseArgs({
  options: {
    pool: { type: 'string', default: '2' },
    'cap-fedavg': { type: 'string', default: '500' },
    'cap-fedsgd': { type: 'string', default: '600' },
    'sgd-eval-every': { type: 'string', default: '10' },
    'pilot-rounds': { type: 'string', default: '60' },
    'grid-fedavg': { type: 'string', default: '0.1,0.2,0.3,0.5' },
    'grid-fedsgd': { type: 'string', default: '0.2,0.3,0.5,0.7' },
    'grid-extend': { type: 'string', default: '1' },
    'lr-fedavg': { type: 'string' },
    'lr-fedsgd': { type: 'string' },
    'lr-centralized': { type: 'string', default: '0.1' },
    'max-epochs': { type: 'string', default: '20' },
    'agg-runs': { type: 'string', default: '3' },
    only: { type: 'string' },
    seed: { type: 'string', default: '1' },
  },
});
const num = (name: keyof typeof flags): number => Number(flags[name]);
const DEVICES = 100;
const SEED = num('seed');
/** Pilots are evaluated every this many rounds; the score is the mean over the pilot's second half. */
const PILOT_EVERY = 5;
const log = (line: string): void => void process.stderr.write(`${line}\n`);
const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;
const benchStarted = performance.now();
const elapsed = (): string => `${((performance.now() - benchStarted) / 1000).toFixed(0)}s`;
const pilotRounds = num('pilot-rounds');
if (!(Number.isInteger(pilotRounds) && pilotRounds >= 2 * PILOT_EVERY)) {
  throw new RangeError(`--pilot-rounds must be an integer >= ${2 * PILOT_EVERY}`);
}

const poolSize = num('pool');
const pool: TrainingPool | null = poolSize > 0 ? createTrainingPool({ size: poolSize }) : null;
const trainer: Trainer = pool ?? createInThreadTrainer();

const { train, test } = await mnistSplit();
const trainSamples = toTrainSamples(train);
const testSamples = toTrainSamples(test);
const start = glorotUniformWeights(MNIST_2NN, SEED);
log(
  `fl-bench: ${train.sampleCount} train / ${test.sampleCount} test digits, ${DEVICES} devices, trainer ${pool ? `pool of ${poolSize}` : 'in-thread'}`,
);

// 1. Centralized ceiling.
const lrCentralized = num('lr-centralized');
const centralized = await trainCentralized({
  architecture: MNIST_2NN,
  initialWeights: start,
  train: trainSamples,
  test: testSamples,
  trainer,
  batchSize: 10,
  learningRate: lrCentralized,
  maxEpochs: num('max-epochs'),
  patience: 3,
  seed: SEED,
  onEpoch: (e) =>
    log(
      `[${elapsed()}] centralized epoch ${e.epoch}: test ${pct(e.accuracy)} loss ${e.loss.toFixed(4)} (${e.ms.toFixed(0)} ms)`,
    ),
});
const ceiling = centralized.bestAccuracy;
const target = ceiling - 0.01;
log(
  `[${elapsed()}] ceiling ${pct(ceiling)} at epoch ${centralized.bestEpoch}; target ${pct(target)}`,
);

// 2 and 3. Learning rate tuned per setting, then rounds to the target.
type Method = 'fedavg' | 'fedsgd';
interface Setting {
  name: string;
  split: PartitionKind;
  method: Method;
  devices: number;
}
const SETTINGS: Setting[] = [
  { name: 'fedavg-iid', split: 'iid', method: 'fedavg', devices: DEVICES },
  { name: 'fedsgd-iid', split: 'iid', method: 'fedsgd', devices: DEVICES },
  { name: 'fedavg-pathological', split: 'pathological', method: 'fedavg', devices: DEVICES },
  { name: 'fedsgd-pathological', split: 'pathological', method: 'fedsgd', devices: DEVICES },
  { name: 'fedavg-iid-20x400', split: 'iid', method: 'fedavg', devices: 20 },
  { name: 'fedsgd-iid-20x400', split: 'iid', method: 'fedsgd', devices: 20 },
];
const GRIDS: Record<Method, number[]> = {
  fedavg: parseGrid(flags['grid-fedavg']),
  fedsgd: parseGrid(flags['grid-fedsgd']),
};
const FIXED: Record<Method, number | undefined> = {
  fedavg: flags['lr-fedavg'] === undefined ? undefined : num('lr-fedavg'),
  fedsgd: flags['lr-fedsgd'] === undefined ? undefined : num('lr-fedsgd'),
};
/** Lower accuracies whose first round is reported too, so methods that miss the target still compare. */
const MILESTONES = [0.85, 0.9, 0.93, 0.95];
const only = flags.only?.split(',');
const labels = Array.from(train.labels!);
const runs: Record<string, unknown> = {};
for (const setting of SETTINGS.filter((s) => !only || only.includes(s.name))) {
  const split = partitionSamples(labels, {
    kind: setting.split,
    devices: setting.devices,
    seed: SEED,
  });
  const devices = split.map((indices) => toTrainSamples(train, indices));
  const tuningStarted = performance.now();
  const fixed = FIXED[setting.method];
  const tuning = fixed === undefined ? await tune(setting, devices) : null;
  const tuningSeconds = Math.round((performance.now() - tuningStarted) / 1000);
  const learningRate = fixed ?? tuning!.chosen;
  runs[setting.name] = {
    ...(await fullRun(setting, devices, learningRate)),
    tuning: tuning && { ...tuning, wallSeconds: tuningSeconds },
  };
}

// 4. Bytes per update: one device's real delta (E = 1, B = 10 from the start), clipped as in a round.
const sampleDelta = await (async (): Promise<NamedTensor[]> => {
  const iid = partitionSamples(labels, { kind: 'iid', devices: DEVICES, seed: SEED });
  const trained = await trainer.train({
    architecture: MNIST_2NN,
    weights: start,
    samples: toTrainSamples(train, iid[0]),
    epochs: 1,
    batchSize: 10,
    learningRate: lrCentralized,
    proxMu: 0,
    seed: SEED,
  });
  return clipToL2(trained.delta, 5).tensors;
})();
const int8Bytes = encodeTensorSet(sampleDelta, { encoding: 'int8' }).length;
const float32Bytes = encodeTensorSet(sampleDelta, { encoding: 'float32' }).length;
log(
  `[${elapsed()}] bytes per update: int8 ${int8Bytes}, float32 ${float32Bytes} (norm ${globalL2Norm(sampleDelta).toFixed(3)})`,
);
await pool?.close();

// 5. Aggregation time for 1,000 updates per strategy.
const aggregation = aggregationTimes(sampleDelta, 1000, num('agg-runs'));
log(`[${elapsed()}] aggregation of 1,000 updates (median ms): ${JSON.stringify(aggregation)}`);

console.log(
  JSON.stringify({
    model: '2NN 784-200-200-10 (199,210 parameters), seeded Glorot-uniform start',
    data: { train: train.sampleCount, test: test.sampleCount, devices: DEVICES, fraction: 0.1 },
    centralized: {
      batchSize: 10,
      learningRate: lrCentralized,
      ceiling,
      bestEpoch: centralized.bestEpoch,
      epochs: centralized.epochs.map((e) => ({ epoch: e.epoch, accuracy: e.accuracy })),
    },
    targetAccuracy: target,
    tuningProcedure: {
      grids: GRIDS,
      fixed: FIXED,
      pilotRounds,
      pilotEvaluateEvery: PILOT_EVERY,
      score: `mean test accuracy of the evaluations after round ${pilotRounds / 2}`,
      gridExtensions: num('grid-extend'),
    },
    runs,
    bytesPerUpdate: { int8: int8Bytes, float32: float32Bytes, ratio: float32Bytes / int8Bytes },
    aggregationMsFor1000Updates: aggregation,
    trainer: pool ? `pool of ${poolSize}` : 'in-thread',
    wallSeconds: Math.round((performance.now() - benchStarted) / 1000),
  }),
);

/** A comma-separated list of positive learning rates, sorted ascending. */
function parseGrid(text: string): number[] {
  const rates = text.split(',').map(Number);
  if (rates.length < 2 || rates.some((r) => !(r > 0) || !Number.isFinite(r))) {
    throw new RangeError(`a grid needs >= 2 positive rates, got ${text}`);
  }
  return [...new Set(rates)].sort((a, b) => a - b);
}

/** The round config of a setting at a learning rate. */
function roundConfig(setting: Setting, learningRate: number) {
  return {
    fraction: 0.1,
    epochs: 1,
    batchSize: setting.method === 'fedsgd' ? ('full' as const) : 10,
    learningRate,
    strategy: { kind: 'fedavg' as const },
  };
}

interface PilotResult {
  learningRate: number;
  /** Test accuracy after round r, every PILOT_EVERY rounds. */
  accuracyAt: Record<string, number>;
  score: number;
}

/** One pilot: `pilotRounds` rounds at `learningRate`, scored by its second half's evaluations. */
async function pilot(
  setting: Setting,
  devices: TrainSamples[],
  learningRate: number,
): Promise<PilotResult> {
  const accuracyAt: Record<string, number> = {};
  await runFederated({
    architecture: MNIST_2NN,
    initialWeights: start,
    devices,
    test: testSamples,
    trainer,
    config: roundConfig(setting, learningRate),
    maxRounds: pilotRounds,
    evaluateEvery: PILOT_EVERY,
    seed: SEED,
    onRound: (r) => {
      if (r.accuracy !== null) accuracyAt[String(r.round)] = r.accuracy;
    },
  });
  const scored = Object.entries(accuracyAt)
    .filter(([r]) => Number(r) > pilotRounds / 2)
    .map(([, a]) => a);
  const score = scored.reduce((s, a) => s + a, 0) / scored.length;
  const trace = Object.entries(accuracyAt)
    .map(([r, a]) => `${r} ${(100 * a).toFixed(1)}`)
    .join(', ');
  log(`[${elapsed()}] ${setting.name} pilot lr ${learningRate}: ${trace} -> score ${pct(score)}`);
  return { learningRate, accuracyAt, score };
}

/**
 * The method's grid of pilots; while the best rate is at an edge (at most
 * --grid-extend times), one more rate a geometric step beyond it. Ties go to
 * the smaller rate.
 */
async function tune(
  setting: Setting,
  devices: TrainSamples[],
): Promise<{ chosen: number; atGridEdge: boolean; extendedWith: number[]; grid: PilotResult[] }> {
  const grid: PilotResult[] = [];
  for (const lr of GRIDS[setting.method]) grid.push(await pilot(setting, devices, lr));
  const best = (): PilotResult =>
    grid.reduce((b, p) =>
      p.score > b.score || (p.score === b.score && p.learningRate < b.learningRate) ? p : b,
    );
  const edge = (): number | null => {
    const rates = grid.map((p) => p.learningRate).sort((a, b) => a - b);
    const lr = best().learningRate;
    if (lr === rates[0]) return Number(((lr * lr) / rates[1]!).toPrecision(2));
    if (lr === rates.at(-1)) return Number(((lr * lr) / rates.at(-2)!).toPrecision(2));
    return null;
  };
  const extendedWith: number[] = [];
  for (let k = 0; k < num('grid-extend'); k++) {
    const next = edge();
    if (next === null) break;
    extendedWith.push(next);
    grid.push(await pilot(setting, devices, next));
  }
  const chosen = best().learningRate;
  log(
    `[${elapsed()}] ${setting.name}: lr ${chosen} chosen (pilot score ${pct(best().score)})${edge() === null ? '' : ', at the edge of the grid'}`,
  );
  return { chosen, atGridEdge: edge() !== null, extendedWith, grid };
}

/** The full run of a setting at its rate: rounds to the target, milestones, costs. */
async function fullRun(
  setting: Setting,
  devices: TrainSamples[],
  learningRate: number,
): Promise<Record<string, unknown>> {
  const fedsgd = setting.method === 'fedsgd';
  const cap = num(fedsgd ? 'cap-fedsgd' : 'cap-fedavg');
  const every = fedsgd ? num('sgd-eval-every') : 1;
  const perDevice = Math.round(train.sampleCount / setting.devices);
  const started = performance.now();
  const milestones: Record<string, number | null> = Object.fromEntries(
    MILESTONES.map((m) => [m.toFixed(2), null]),
  );
  const result: FederatedSimResult = await runFederated({
    architecture: MNIST_2NN,
    initialWeights: start,
    devices,
    test: testSamples,
    trainer,
    config: roundConfig(setting, learningRate),
    maxRounds: cap,
    targetAccuracy: target,
    evaluateEvery: every,
    seed: SEED,
    onRound: (r) => {
      for (const m of MILESTONES) {
        if (r.accuracy !== null && r.accuracy >= m) milestones[m.toFixed(2)] ??= r.round;
      }
      if (r.accuracy !== null && (r.round % (10 * every) === 0 || r.accuracy >= target)) {
        log(
          `[${elapsed()}] ${setting.name} lr ${learningRate} round ${r.round}: test ${pct(r.accuracy)} loss ${r.loss!.toFixed(4)}, ${(r.bytesPerUpdate / 1024).toFixed(1)} KiB/update, ${r.roundMs.toFixed(0)} ms`,
        );
      }
    },
  });
  const rounds = result.rounds;
  const text = result.reachedTargetAt === null ? `> ${cap}` : String(result.reachedTargetAt);
  log(
    `[${elapsed()}] ${setting.name}: ${text} rounds to ${pct(target)} at lr ${learningRate} (best ${pct(result.bestAccuracy)})`,
  );
  return {
    split: setting.split,
    method: setting.method,
    devices: setting.devices,
    samplesPerDevice: perDevice,
    epochs: 1,
    batchSize: fedsgd ? `full (${perDevice})` : 10,
    localStepsPerRound: fedsgd ? 1 : perDevice / 10,
    learningRate,
    evaluateEvery: every,
    cap,
    roundsToTarget: result.reachedTargetAt,
    roundsToTargetText: text,
    roundsToAccuracy: milestones,
    finalAccuracy: result.finalAccuracy,
    bestAccuracy: result.bestAccuracy,
    roundsRun: rounds.length,
    clippedShare:
      rounds.reduce((s, r) => s + r.clippedByAgent, 0) / rounds.reduce((s, r) => s + r.selected, 0),
    meanBytesPerUpdate: Math.round(
      rounds.reduce((s, r) => s + r.bytesPerUpdate, 0) / rounds.length,
    ),
    meanRoundMs: Math.round(rounds.reduce((s, r) => s + r.roundMs, 0) / rounds.length),
    wallSeconds: Math.round((performance.now() - started) / 1000),
  };
}

/** Median wall time of each strategy over `count` updates shaped like `delta` (seeded noise of its scale). */
function aggregationTimes(
  delta: NamedTensor[],
  count: number,
  repeats: number,
): Record<string, number> {
  const random = seededUniform(SEED);
  const rms = globalL2Norm(delta) / Math.sqrt(delta.reduce((s, t) => s + t.values.length, 0));
  const updates: ClientUpdate[] = Array.from({ length: count }, (_, u) => ({
    deviceId: `d${u}`,
    sampleCount: 80,
    tensors: delta.map((t) => ({
      name: t.name,
      dims: t.dims,
      values: t.values.map((v) => v + (random() - 0.5) * 2 * rms),
    })),
  }));
  const strategies: StrategyConfig[] = [
    { kind: 'fedavg' },
    { kind: 'trimmed-mean', beta: 0.2 },
    { kind: 'median' },
  ];
  const out: Record<string, number> = {};
  for (const config of strategies) {
    const strategy = createStrategy(config);
    const times: number[] = [];
    for (let i = 0; i < repeats; i++) {
      const t0 = performance.now();
      strategy.aggregate(updates);
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    out[config.kind] = Math.round(times[times.length >> 1]!);
  }
  return out;
}
