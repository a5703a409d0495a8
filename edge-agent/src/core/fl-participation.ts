/**
 * Whether the agent takes part in a federated round (issue 7, item 2): pure
 * decisions over an `fl-train` command, in two steps, so the duplicate and
 * concurrency checks run before any I/O and the rest once the base bundle
 * and the samples have been looked at.
 *
 *   admitFlRound   on arrival, synchronously: a command id or round id seen
 *                  before is a duplicate (QoS 1 redelivers, THREATS 23; the
 *                  control plane may resend a round): ignored, nothing is
 *                  sent; a round while another trains is refused `busy`
 *                  (one round at a time)
 *   checkFlRound   then: the deadline has not passed; the base model is the
 *                  committed one and it serves (no update on probation or
 *                  activating, which would serve another); its bundle has a
 *                  `training` field; at least `minSamples` labelled samples
 *
 * A refusal other than a duplicate is reported to the control plane as a
 * `failed` update with the reason (fl-training.ts), never thrown.
 *
 * @example
 *   const admission = admitFlRound(ledger, command);
 *   if (admission.kind !== 'accept') return admission;      // duplicate or busy
 *   ledger = admission.ledger;
 *   const check = checkFlRound({ command, nowMs, state, training, sampleCount });
 */
import type { FlTrainMessage, ManifestTraining } from '@fleet/protocol';
import type { AgentState } from './update-state.ts';

/** Why a round is not trained; each but `duplicate` is sent as a failed update's reason. */
export type FlRefusalCode =
  /** This command or round was taken before: nothing is sent again. */
  | 'duplicate'
  /** Another round is training now. */
  | 'busy'
  /** The round's deadline has passed (on arrival, or before the update could be sent). */
  | 'deadline'
  /** The base model is not the committed model that serves now. */
  | 'base-not-serving'
  /** The base bundle has no `training` field. */
  | 'no-training'
  /** The training part is missing, does not match its signed hash, or does not fit the architecture. */
  | 'training-part'
  /** Fewer labelled samples of the model's input width than `minSamples`. */
  | 'not-enough-samples'
  /** Training ended with non-finite weights or loss. */
  | 'diverged'
  /** The trainer refused the request or could not run. */
  | 'train-failed'
  /** The update could not be encoded or is too large to send. */
  | 'encode-failed';

export interface FlRefusal {
  code: FlRefusalCode;
  message: string;
}

/** Rounds remembered for de-duplication. */
export const RECENT_FL_ROUNDS = 64;

/** The rounds the agent knows of (in memory): the one training now, and recent ids. */
export interface FlRoundLedger {
  /** The round being trained, or null. */
  active: string | null;
  /** Round ids taken recently (trained, training or refused), newest last. */
  roundIds: readonly string[];
  /** Command ids seen recently, newest last. */
  commandIds: readonly string[];
}

export function emptyFlLedger(): FlRoundLedger {
  return { active: null, roundIds: [], commandIds: [] };
}

export type FlAdmission =
  | { kind: 'accept'; ledger: FlRoundLedger }
  | { kind: 'refuse'; refusal: FlRefusal; ledger: FlRoundLedger }
  | { kind: 'ignore'; refusal: FlRefusal };

const remember = (ids: readonly string[], id: string) =>
  [...ids.filter((x) => x !== id), id].slice(-RECENT_FL_ROUNDS);

/**
 * The arrival check: duplicate (ignored), busy (refused, and the round is
 * remembered so a redelivery is not answered twice), else accepted and
 * marked active.
 */
export function admitFlRound(ledger: FlRoundLedger, command: FlTrainMessage): FlAdmission {
  const { roundId, id } = command;
  if (ledger.active === roundId || ledger.roundIds.includes(roundId)) {
    return {
      kind: 'ignore',
      refusal: { code: 'duplicate', message: `round ${roundId} was taken` },
    };
  }
  if (ledger.commandIds.includes(id)) {
    return { kind: 'ignore', refusal: { code: 'duplicate', message: `command ${id} was handled` } };
  }
  const seen: FlRoundLedger = {
    active: ledger.active,
    roundIds: remember(ledger.roundIds, roundId),
    commandIds: remember(ledger.commandIds, id),
  };
  if (ledger.active !== null) {
    return {
      kind: 'refuse',
      refusal: { code: 'busy', message: `round ${ledger.active} is training` },
      ledger: seen,
    };
  }
  return { kind: 'accept', ledger: { ...seen, active: roundId } };
}

/** The round is over (sent, failed or given up): another may start. */
export function finishFlRound(ledger: FlRoundLedger, roundId: string): FlRoundLedger {
  return ledger.active === roundId ? { ...ledger, active: null } : ledger;
}

/** Deadline, then base model; for the adapter's first check, before any I/O. */
export function checkFlBase(facts: {
  command: FlTrainMessage;
  nowMs: number;
  state: Pick<AgentState, 'committed' | 'job'>;
}): FlRefusal | null {
  const { command, nowMs, state } = facts;
  const deadlineMs = Date.parse(command.deadline);
  if (!(nowMs < deadlineMs)) {
    return { code: 'deadline', message: `the round's deadline ${command.deadline} has passed` };
  }
  const base = command.model;
  const committed = state.committed?.ref;
  if (
    !committed ||
    committed.bundleId !== base.bundleId ||
    committed.name !== base.name ||
    committed.version !== base.version ||
    committed.release !== base.release
  ) {
    const serving = committed ? `${committed.name}@${committed.version}` : 'no model';
    return {
      code: 'base-not-serving',
      message: `the round trains ${base.name}@${base.version}; this device has ${serving} committed`,
    };
  }
  const phase = state.job?.phase;
  if (phase === 'activating' || phase === 'probation') {
    // The committed model may no longer be what serves, and may be replaced at commit.
    return {
      code: 'base-not-serving',
      message: `an update (${state.job!.model.name}@${state.job!.model.version}) is ${phase === 'probation' ? 'on probation' : 'activating'}`,
    };
  }
  return null;
}

export interface FlRoundFacts {
  command: FlTrainMessage;
  nowMs: number;
  state: Pick<AgentState, 'committed' | 'job'>;
  /** The base bundle's signed `training` field; undefined when it has none. */
  training: ManifestTraining | undefined;
  /** Labelled samples of the architecture's input width available (at most `maxSamples` read). */
  sampleCount: number;
}

/** Every condition of taking part, in order; null when the round may be trained. */
export function checkFlRound(facts: FlRoundFacts): FlRefusal | null {
  const base = checkFlBase(facts);
  if (base) return base;
  const { command, training, sampleCount } = facts;
  if (!training) {
    return {
      code: 'no-training',
      message: `bundle ${command.model.name}@${command.model.version} has no training field`,
    };
  }
  if (sampleCount < command.config.minSamples) {
    return {
      code: 'not-enough-samples',
      message: `${sampleCount} labelled samples of width ${training.architecture.inputSize}; the round needs ${command.config.minSamples}`,
    };
  }
  return null;
}

/** The `reason` of a failed update: the code first (one token), then the detail. */
export function flFailureReason(refusal: FlRefusal): string {
  return `${refusal.code}: ${refusal.message}`.slice(0, 500);
}
