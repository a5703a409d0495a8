/**
 * Steps stored rounds and carries out their outboxes (fl-rounds.ts uses it):
 *
 *   step / receive  one core step under the round's row lock: the new
 *                   snapshot, the core's audit actions as audit entries, its
 *                   other actions appended to the outbox, and (for an update)
 *                   the device's answer row, in one transaction
 *   drain           carries out the outbox in order, one action at a time,
 *                   each result written with the action's removal; one drain
 *                   per round at a time in this process
 */
import type { Logger } from 'pino';
import {
  deviceTopic,
  encodeCommand,
  isFleetError,
  type DenseShape,
  type FlTrainMessage,
} from '@fleet/protocol';
import { randomUUID } from 'node:crypto';
import type { CandidatePort } from '../core/fl/candidate-port.ts';
import { admitOutsideCollection, admitUpdate, type Admission } from '../core/fl/round-collect.ts';
import { stepRound } from '../core/fl/round-machine.ts';
import {
  FINAL_ROUND_STATUSES,
  type RoundAction,
  type RoundEvent,
  type RoundStatus,
  type UpdateReceived,
} from '../core/fl/round-types.ts';
import type { BlobStore } from '../core/models/blob-store.ts';
import type { FlRoundOutcome } from '../db/schema/index.ts';
import type { FlAudit, FlRoundChange, FlRoundRecord, FlStore } from '../adapters/db/fl-store.ts';
import { SYSTEM_ACTOR, deviceActor, type Actor } from '../adapters/db/actor.ts';
import { aggregateRound, loadWeights } from './fl-aggregate.ts';
import type { UpdateExtra } from './fl-intake.ts';

/** Tries of one failing action before it is given up. */
export const MAX_ATTEMPTS = 3;

export interface RoundRunnerDeps {
  store: FlStore;
  candidates: CandidatePort;
  blobs: BlobStore;
  publish: (topic: string, payload: Uint8Array) => Promise<void>;
  nowMs: () => number;
  logger: Logger;
  countRound?: (status: RoundStatus) => void;
  architecture(bundleId: string): Promise<DenseShape | null>;
}

interface ActionResult {
  event?: RoundEvent;
  outcome?: Partial<FlRoundOutcome>;
  audit?: FlAudit[];
}

const isFinal = (s: RoundStatus) => FINAL_ROUND_STATUSES.includes(s);

export function createRoundRunner(deps: RoundRunnerDeps) {
  const { store, logger } = deps;
  const drains = new Map<string, Promise<void>>();
  const attempts = new Map<string, number>();

  /** The core step as a store change; null when it changes nothing. */
  function apply(current: FlRoundRecord, event: RoundEvent, base: Partial<FlRoundChange> = {}) {
    const now = deps.nowMs();
    const before = current.snapshot;
    const { state, actions } = stepRound(before, event, now);
    if (actions.length === 0 && JSON.stringify(state) === JSON.stringify(before)) return null;
    if (isFinal(state.status) && !isFinal(before.status)) deps.countRound?.(state.status);
    const change: FlRoundChange = {
      snapshot: state,
      outbox: [...(base.outbox ?? current.outbox), ...actions.filter((a) => a.type !== 'audit')],
      audit: [
        ...(base.audit ?? []),
        ...actions.flatMap((a) =>
          a.type === 'audit' ? [{ action: `fl.${a.kind}`, detail: { reason: a.reason } }] : [],
        ),
      ],
      ...(base.outcome ? { outcome: base.outcome } : {}),
    };
    return change;
  }

  async function step(id: string, event: RoundEvent, actor: Actor): Promise<FlRoundRecord> {
    const written = await store.update(
      id,
      (current) => apply(current, event),
      actor,
      new Date(deps.nowMs()),
    );
    return written ?? (await store.get(id))!;
  }

  async function receive(
    event: UpdateReceived,
    extra: UpdateExtra,
  ): Promise<{ admission: Admission; record: FlRoundRecord }> {
    let admission: Admission = {
      verdict: 'rejected',
      reason: 'wrong-round',
      detail: '',
      countsAsAnswer: false,
    };
    const now = deps.nowMs();
    const written = await store.update(
      event.roundId,
      (current) => {
        const s = current.snapshot;
        admission =
          s.status === 'collecting' ? admitUpdate(s, event, now) : admitOutsideCollection(s, event);
        const change = apply(current, event);
        if (!change) return null;
        const answer =
          change.snapshot.answers.length > s.answers.length
            ? change.snapshot.answers.at(-1)!
            : null;
        if (answer) {
          const accepted = answer.outcome === 'accepted';
          change.updates = [
            {
              updateId: answer.updateId,
              deviceId: answer.deviceId,
              status: answer.outcome,
              sampleCount: answer.sampleCount,
              metrics: extra.metrics,
              blobId: accepted ? extra.blobId : null,
              norm: extra.norm,
              scale: accepted ? extra.scale : 1,
              reason: answer.reason,
              receivedAtMs: now,
            },
          ];
        }
        return change;
      },
      deviceActor(event.deviceId),
      new Date(now),
    );
    return { admission, record: written ?? (await store.get(event.roundId))! };
  }

  async function perform(round: FlRoundRecord, action: RoundAction): Promise<ActionResult> {
    const { status } = round;
    const id = round.id;
    switch (action.type) {
      case 'send-train': {
        if (status !== 'collecting') return {};
        const { model } = round.settings;
        for (const deviceId of action.deviceIds) {
          const message: FlTrainMessage = {
            type: 'fl-train',
            id: randomUUID(),
            schemaVersion: 1,
            ts: new Date(deps.nowMs()).toISOString(),
            roundId: id,
            model,
            config: action.config,
            deadline: new Date(action.deadlineMs).toISOString(),
          };
          try {
            await deps.publish(deviceTopic(deviceId, 'cmd'), encodeCommand(message));
          } catch (error) {
            logger.warn({ err: error, roundId: id, deviceId }, 'fl-train not sent');
          }
        }
        return {};
      }
      case 'aggregate': {
        if (status !== 'aggregating') return {};
        const architecture = await deps.architecture(round.baseBundleId);
        if (!architecture) throw new Error(`base bundle ${round.baseBundleId} has no architecture`);
        const result = await aggregateRound({
          action,
          accepted: await store.updates(id, 'accepted'),
          architecture,
          base: (await deps.candidates.baseWeights(round.baseBundleId)).tensors,
          blobs: deps.blobs,
        });
        const candidateId = `${id}-candidate`;
        return result.ok
          ? {
              event: { type: 'aggregated', candidateId, notes: result.notes },
              outcome: { weightsBlobId: result.weightsBlobId },
            }
          : { event: { type: 'aggregated', candidateId, error: result.error } };
      }
      case 'evaluate': {
        if (status !== 'evaluating') return {};
        const blobId = round.outcome.weightsBlobId;
        if (!blobId) throw new Error('no candidate weights were stored');
        const figures = await deps.candidates.evaluate({
          roundId: id,
          candidateId: action.candidateId,
          baseBundleId: round.baseBundleId,
          weights: await loadWeights(deps.blobs, blobId),
          evalSet: round.settings.evalSet,
        });
        return { event: { type: 'evaluated', ...figures } };
      }
      case 'build-candidate': {
        if (status !== 'promoted' && status !== 'awaiting-approval') return {};
        const candidate = await deps.candidates.build({
          roundId: id,
          candidateId: action.candidateId,
          lineage: action.lineage,
          actor: SYSTEM_ACTOR,
        });
        return {
          outcome: { candidate },
          audit: [{ action: 'fl.candidate-built', detail: candidate }],
        };
      }
      case 'start-rollout': {
        if (status !== 'promoted') return {};
        const bundleId = round.outcome.candidate?.bundleId;
        if (!bundleId) throw new Error('the candidate was not built');
        const template = { target: round.settings.target, ...round.settings.rollout };
        const { rolloutId } = await deps.candidates.startRollout({
          roundId: id,
          bundleId,
          template,
          actor: SYSTEM_ACTOR,
        });
        return {
          outcome: { rolloutId },
          audit: [{ action: 'fl.rollout-started', detail: { rolloutId } }],
        };
      }
      case 'audit':
        return {};
    }
  }

  /** Removes the first outbox action (if still first) and writes its result. */
  async function complete(id: string, action: RoundAction, result: ActionResult): Promise<void> {
    await store.update(
      id,
      (current) => {
        if (JSON.stringify(current.outbox[0]) !== JSON.stringify(action)) return null;
        const base = {
          outbox: current.outbox.slice(1),
          audit: result.audit ?? [],
          outcome: { ...current.outcome, ...result.outcome },
        };
        const plain: FlRoundChange = { snapshot: current.snapshot, ...base };
        if (!result.event) return plain;
        try {
          return apply(current, result.event, base) ?? plain;
        } catch (error) {
          if (!isFleetError(error) || isFinal(current.status)) return plain;
          // Figures the core refuses (an accuracy outside [0, 1]): the round cannot go on.
          const reason = `${action.type}: ${error.message}`;
          return apply(current, { type: 'cancel', actor: SYSTEM_ACTOR, reason }, base) ?? plain;
        }
      },
      SYSTEM_ACTOR,
      new Date(deps.nowMs()),
    );
  }

  async function giveUp(id: string, action: RoundAction, message: string): Promise<void> {
    const round = await store.get(id);
    if (!round) return;
    const reason = `${action.type} failed ${MAX_ATTEMPTS} times: ${message}`;
    if ((action.type === 'aggregate' || action.type === 'evaluate') && !isFinal(round.status)) {
      return complete(id, action, { event: { type: 'cancel', actor: SYSTEM_ACTOR, reason } });
    }
    await complete(id, action, {
      outcome: { error: reason },
      audit: [{ action: 'fl.action-failed', detail: { reason } }],
    });
  }

  async function drainOnce(id: string): Promise<void> {
    for (;;) {
      const round = await store.get(id);
      const action = round?.outbox[0];
      if (!round || !action) return;
      const key = `${id}:${action.type}`;
      let result: ActionResult;
      try {
        result = await perform(round, action);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        const tries = (attempts.get(key) ?? 0) + 1;
        logger.warn(
          { err: error, roundId: id, action: action.type, tries },
          'fl round action failed',
        );
        if (tries < MAX_ATTEMPTS) {
          attempts.set(key, tries);
          return; // the next tick tries again
        }
        attempts.delete(key);
        await giveUp(id, action, message);
        continue;
      }
      attempts.delete(key);
      await complete(id, action, result);
    }
  }

  function drain(id: string): Promise<void> {
    const previous = drains.get(id) ?? Promise.resolve();
    const next = previous
      .then(() => drainOnce(id))
      .catch((error: unknown) =>
        logger.error({ err: error, roundId: id }, 'fl round drain failed'),
      );
    drains.set(id, next);
    void next.finally(() => {
      if (drains.get(id) === next) drains.delete(id);
    });
    return next;
  }

  return {
    step,
    receive,
    drain,
    idle: async () => {
      await Promise.allSettled([...drains.values()]);
    },
  };
}
