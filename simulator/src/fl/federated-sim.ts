/**
 * Federated rounds in one process, with the maths of a real Fleet round
 * (McMahan et al. 2017, Algorithm 1, plus Fleet's clip and codec):
 *
 *   select     max(minClients, ceil(C x K)) devices, seeded per round
 *              (control-plane `selectDevices`, the round core's own choice)
 *   train      each from the current global weights on its own partition
 *              (the edge agent's `Trainer`: E epochs, batch B, lr, proxMu);
 *              B = 'full' is one full-batch step per epoch (FedSGD with E = 1)
 *   send       honest: delta clipped to clipNorm, encoded (int8 per-tensor or
 *              float32); Byzantine devices forge theirs (byzantine.ts)
 *   receive    decoded and checked as the control plane does (update-intake.ts)
 *   aggregate  the round's strategy (fedavg by sample count, trimmed mean,
 *              median); global += aggregate
 *   evaluate   test accuracy and loss every `evaluateEvery` rounds; stop at
 *              `targetAccuracy` or after `maxRounds`
 */
import {
  createStrategy,
  defaultRoundConfig,
  selectDevices,
  type ClientUpdate,
  type RoundConfig,
} from '@fleet/control-plane';
import {
  evaluateDense,
  type DenseArchitecture,
  type NamedTensor,
  type Trainer,
  type TrainSamples,
} from '@fleet/edge-agent';
import { addTensors } from '@fleet/protocol';
import { forgeUpdate, type ByzantineBehaviour } from './byzantine.ts';
import { cloneTensors } from './mnist-2nn.ts';
import {
  encodeHonestUpdate,
  receiveUpdate,
  type SentUpdate,
  type SimRejection,
} from './update-intake.ts';

/** The round settings the simulation uses (a RoundConfig subset), B = 'full' for FedSGD. */
export type SimRoundConfig = Pick<
  RoundConfig,
  | 'fraction'
  | 'minClients'
  | 'minSamples'
  | 'maxSamples'
  | 'epochs'
  | 'learningRate'
  | 'proxMu'
  | 'clipNorm'
  | 'encoding'
  | 'strategy'
> & { batchSize: number | 'full' };

export interface FederatedSimOptions {
  architecture: DenseArchitecture;
  /** The start; not modified. */
  initialWeights: readonly NamedTensor[];
  /** One entry per device: the samples it holds. */
  devices: readonly TrainSamples[];
  test: TrainSamples;
  trainer: Trainer;
  /** Merged over `defaultRoundConfig`. */
  config?: Partial<SimRoundConfig>;
  maxRounds: number;
  /** Stop after the first evaluated round at or above this accuracy (0..1). */
  targetAccuracy?: number;
  /** Evaluate every k rounds (default 1); the last round is always evaluated. */
  evaluateEvery?: number;
  /** Device index -> its behaviour; absent devices are honest. */
  byzantine?: ReadonlyMap<number, ByzantineBehaviour>;
  seed: number;
  onRound?: (report: RoundReport) => void;
  /** Monotonic milliseconds (default `performance.now`). */
  perfNowMs?: () => number;
}

export interface RoundReport {
  round: number;
  selected: number;
  byzantineSelected: number;
  accepted: number;
  rejected: Partial<Record<SimRejection, number>>;
  /** Honest updates the agent clipped. */
  clippedByAgent: number;
  /** Accepted updates scaled down to clipNorm on receipt. */
  scaledOnReceipt: number;
  /** False when fewer than minClients updates were accepted (the global is unchanged). */
  aggregated: boolean;
  /** Mean encoded size of the updates sent this round. */
  bytesPerUpdate: number;
  /** Test accuracy and loss after this round, when it was evaluated. */
  accuracy: number | null;
  loss: number | null;
  /** Sum of the devices' own training times (trainer `trainMs`). */
  trainMs: number;
  aggregateMs: number;
  roundMs: number;
}

export interface FederatedSimResult {
  rounds: RoundReport[];
  weights: NamedTensor[];
  initialAccuracy: number;
  /** First evaluated round at or above the target, or null. */
  reachedTargetAt: number | null;
  finalAccuracy: number;
  bestAccuracy: number;
  rejectedTotal: Partial<Record<SimRejection, number>>;
}

/** Runs rounds until the target or `maxRounds`; see the module comment. */
export async function runFederated(options: FederatedSimOptions): Promise<FederatedSimResult> {
  const config: SimRoundConfig = { ...defaultRoundConfig, ...options.config };
  const now = options.perfNowMs ?? (() => performance.now());
  const every = options.evaluateEvery ?? 1;
  if (!(Number.isInteger(options.maxRounds) && options.maxRounds >= 1)) {
    throw new RangeError(`maxRounds must be a positive integer, got ${options.maxRounds}`);
  }
  if (!(Number.isInteger(every) && every >= 1)) throw new RangeError(`evaluateEvery must be >= 1`);
  const strategy = createStrategy(config.strategy);
  let global = cloneTensors(options.initialWeights);
  const initial = await evaluateDense(options.architecture, global, options.test);
  const rounds: RoundReport[] = [];
  const rejectedTotal: Partial<Record<SimRejection, number>> = {};
  let reachedTargetAt: number | null = null;
  let best = initial.accuracy;
  let last = initial.accuracy;
  for (let round = 1; round <= options.maxRounds; round++) {
    const started = now();
    const selected = selectRound(options.devices, config, options.seed, round);
    const sent = await Promise.all(
      selected.map((device) => deviceUpdate(options, config, global, device, round)),
    );
    const trainMs = sent.reduce((s, x) => s + x.trainMs, 0);
    const accepted: ClientUpdate[] = [];
    const rejected: Partial<Record<SimRejection, number>> = {};
    let scaledOnReceipt = 0;
    sent.forEach((s, i) => {
      const result = receiveUpdate(s.update, {
        architecture: options.architecture,
        clipNorm: config.clipNorm,
        maxSamples: config.maxSamples,
      });
      if (!result.ok) {
        rejected[result.reason] = (rejected[result.reason] ?? 0) + 1;
        rejectedTotal[result.reason] = (rejectedTotal[result.reason] ?? 0) + 1;
        return;
      }
      if (result.scale !== 1) scaledOnReceipt++;
      accepted.push({
        deviceId: `device-${selected[i]}`,
        sampleCount: result.sampleCount,
        tensors: result.tensors,
      });
    });
    const aggregateStarted = now();
    const aggregated = accepted.length >= config.minClients;
    if (aggregated) global = addTensors(global, strategy.aggregate(accepted).tensors);
    const aggregateMs = now() - aggregateStarted;
    const evaluate = round % every === 0 || round === options.maxRounds;
    const evaluation = evaluate
      ? await evaluateDense(options.architecture, global, options.test)
      : null;
    if (evaluation) {
      last = evaluation.accuracy;
      best = Math.max(best, last);
    }
    const report: RoundReport = {
      round,
      selected: selected.length,
      byzantineSelected: selected.filter((d) => options.byzantine?.has(d)).length,
      accepted: accepted.length,
      rejected,
      clippedByAgent: sent.filter((s) => s.clipped).length,
      scaledOnReceipt,
      aggregated,
      bytesPerUpdate: sent.reduce((s, x) => s + x.update.bytes.length, 0) / sent.length,
      accuracy: evaluation?.accuracy ?? null,
      loss: evaluation?.loss ?? null,
      trainMs,
      aggregateMs,
      roundMs: now() - started,
    };
    rounds.push(report);
    options.onRound?.(report);
    if (evaluation && options.targetAccuracy !== undefined && last >= options.targetAccuracy) {
      reachedTargetAt = round;
      break;
    }
  }
  return {
    rounds,
    weights: global,
    initialAccuracy: initial.accuracy,
    reachedTargetAt,
    finalAccuracy: last,
    bestAccuracy: best,
    rejectedTotal,
  };
}

/** The device indices selected for `round` (every device is online, on target, with its samples). */
export function selectRound(
  devices: readonly TrainSamples[],
  config: Pick<SimRoundConfig, 'fraction' | 'minClients' | 'minSamples'>,
  seed: number,
  round: number,
): number[] {
  const selection = selectDevices(
    devices.map((d, i) => ({
      deviceId: String(i),
      online: true,
      labelledSamples: d.count,
      matchesTarget: true,
    })),
    {
      fraction: config.fraction,
      minClients: config.minClients,
      minSamples: config.minSamples,
      seed: `${seed}:${round}`,
    },
  );
  if (!selection.ok) throw new RangeError(`round ${round}: ${selection.reason}`);
  return selection.selected.map(Number);
}

/** A per-device, per-round training seed (32-bit). */
function trainingSeed(seed: number, round: number, device: number): number {
  return (seed ^ Math.imul(round + 1, 0x9e3779b1) ^ Math.imul(device + 1, 0x85ebca6b)) >>> 0;
}

/** At most `max` samples: the first ones (a device trains on at most maxSamples). */
function capSamples(samples: TrainSamples, max: number): TrainSamples {
  if (samples.count <= max) return samples;
  return {
    features: samples.features.subarray(0, max * samples.featureCount),
    labels: samples.labels.subarray(0, max),
    count: max,
    featureCount: samples.featureCount,
  };
}

async function deviceUpdate(
  options: FederatedSimOptions,
  config: SimRoundConfig,
  global: NamedTensor[],
  device: number,
  round: number,
): Promise<{ update: SentUpdate; clipped: boolean; trainMs: number }> {
  const samples = capSamples(options.devices[device]!, config.maxSamples);
  const result = await options.trainer.train({
    architecture: options.architecture,
    weights: global,
    samples,
    epochs: config.epochs,
    batchSize: config.batchSize === 'full' ? samples.count : config.batchSize,
    learningRate: config.learningRate,
    proxMu: config.proxMu,
    seed: trainingSeed(options.seed, round, device),
  });
  const trainMs = result.trainMs;
  const behaviour = options.byzantine?.get(device);
  if (behaviour) {
    const update = forgeUpdate(behaviour, {
      delta: result.delta,
      sampleCount: result.sampleCount,
      clipNorm: config.clipNorm,
      maxSamples: config.maxSamples,
      encoding: config.encoding,
    });
    return { update, clipped: false, trainMs };
  }
  const honest = encodeHonestUpdate(result.delta, config.clipNorm, config.encoding);
  return {
    update: { bytes: honest.bytes, sampleCount: result.sampleCount },
    clipped: honest.clipped,
    trainMs,
  };
}
