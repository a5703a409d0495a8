/**
 * Starts federated rounds without an operator, from the model policies'
 * `flOnDrift` and `flSchedule` (core/fl/fl-triggers.ts decides):
 *
 *   drift     `onDriftAlert` (the drift service's `onAlert`, after the
 *             alert's transaction committed): for a model with `flOnDrift`,
 *             a round on the alert's cohort from the alerted version, unless
 *             a round of the model is active or the cooldown since the last
 *             drift-started one has not passed. Audited either way
 *             (`fl.drift-trigger`: started, skipped with the reason, or
 *             failed when the round could not start). A model without the
 *             setting: nothing, not even an audit entry.
 *   schedule  `runSchedules` (the rounds service's tick): for each model with
 *             `flSchedule`, a round when `everyMs` has passed since the last
 *             scheduled one started and none of the model is active.
 *             Starts and failures are audited (`fl.schedule-trigger`); a
 *             failed start is tried again `everyMs` later (or at once when
 *             the schedule changes), not on every tick.
 *
 * Decisions for one model are taken one at a time in this process, so two
 * alerts of one window (or an alert and the schedule) start one round. Two
 * replicas could each start one: the window between check and start is one
 * round start long.
 */
import type { Logger } from 'pino';
import {
  ACTIVE_ROUND_STATUSES,
  cohortSelector,
  decideDriftTrigger,
  scheduleDue,
  type FlSchedule,
} from '../core/fl/fl-triggers.ts';
import type { AuditStore } from '../adapters/db/audit-store.ts';
import { SYSTEM_ACTOR } from '../adapters/db/actor.ts';
import type { DriftAlertOpened } from './drift-service.ts';
import type { FlRounds } from './fl-rounds.ts';
import type { ModelPolicies } from './model-policies.ts';

export interface FlTriggersOptions {
  rounds: Pick<FlRounds, 'startRound' | 'latestRound'>;
  policies: Pick<ModelPolicies, 'policyFor' | 'withTriggers'>;
  audit: Pick<AuditStore, 'append'>;
  nowMs: () => number;
  logger: Logger;
}

export interface FlTriggers {
  /** A drift alert was opened (and committed): maybe starts a round; audited. Throws only if auditing fails. */
  onDriftAlert(alert: DriftAlertOpened): Promise<void>;
  /** Starts the scheduled rounds that are due. */
  runSchedules(): Promise<void>;
}

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

export function createFlTriggers(options: FlTriggersOptions): FlTriggers {
  const { rounds, policies, logger } = options;
  const chains = new Map<string, Promise<void>>();
  /** Failed scheduled starts: when, and the schedule they were for. */
  const failed = new Map<string, { atMs: number; schedule: string }>();

  /** Runs `fn` after every earlier decision for `model` in this process. */
  function serially(model: string, fn: () => Promise<void>): Promise<void> {
    const next = (chains.get(model) ?? Promise.resolve()).catch(() => undefined).then(fn);
    chains.set(model, next);
    void next
      .finally(() => {
        if (chains.get(model) === next) chains.delete(model);
      })
      .catch(() => undefined);
    return next;
  }

  const audit = (action: string, subject: string, after: Record<string, unknown>) =>
    options.audit.append({
      at: new Date(options.nowMs()).toISOString(),
      actor: SYSTEM_ACTOR,
      action,
      subject,
      before: null,
      after,
    });

  async function onDrift(alert: DriftAlertOpened): Promise<void> {
    const { model } = alert;
    const setting = (await policies.policyFor(model.name)).flOnDrift;
    if (!setting) return;
    const now = options.nowMs();
    const active = await rounds.latestRound(model.name, { statuses: ACTIVE_ROUND_STATUSES });
    const last = await rounds.latestRound(model.name, { triggerKind: 'drift' });
    const decision = decideDriftTrigger(
      setting,
      { active, lastStartedAtMs: last?.createdAtMs ?? null },
      now,
    );
    const subject = `model:${model.name}@${model.version}`;
    const seen = { alertId: alert.alertId, cohort: alert.cohort, window: alert.window };
    if (!decision.start) {
      logger.info({ ...seen, model: model.name, reason: decision.reason }, 'drift trigger skipped');
      await audit('fl.drift-trigger', subject, {
        ...seen,
        outcome: 'skipped',
        reason: decision.reason,
      });
      return;
    }
    const detail = `cohort ${alert.cohort} window ${alert.window.start}/${alert.window.end} alert ${alert.alertId}`;
    try {
      const { round } = await rounds.startRound({
        model: { name: model.name, version: model.version },
        config: setting.config,
        target: cohortSelector(alert.cohort),
        evalSet: setting.evalSet,
        ...(setting.rollout ? { rollout: setting.rollout } : {}),
        trigger: { kind: 'drift', detail },
        actor: SYSTEM_ACTOR,
      });
      logger.info(
        { ...seen, model: model.name, roundId: round.id },
        'drift trigger started a round',
      );
      await audit('fl.drift-trigger', subject, {
        ...seen,
        outcome: 'started',
        roundId: round.id,
        status: round.status,
      });
    } catch (error) {
      logger.warn(
        { ...seen, model: model.name, err: error },
        'drift trigger could not start a round',
      );
      await audit('fl.drift-trigger', subject, {
        ...seen,
        outcome: 'failed',
        reason: message(error),
      });
    }
  }

  async function runSchedule(modelName: string, schedule: FlSchedule): Promise<void> {
    const now = options.nowMs();
    const key = JSON.stringify(schedule);
    const attempt = failed.get(modelName);
    const active = await rounds.latestRound(modelName, { statuses: ACTIVE_ROUND_STATUSES });
    const last = await rounds.latestRound(modelName, { triggerKind: 'schedule' });
    const due = scheduleDue(
      schedule,
      {
        active,
        lastStartedAtMs: last?.createdAtMs ?? null,
        lastAttemptAtMs: attempt?.schedule === key ? attempt.atMs : null,
      },
      now,
    );
    if (!due) return;
    const subject = `model:${modelName}`;
    try {
      const { round } = await rounds.startRound({
        model: { name: modelName },
        config: schedule.config,
        target: schedule.target,
        evalSet: schedule.evalSet,
        ...(schedule.rollout ? { rollout: schedule.rollout } : {}),
        trigger: { kind: 'schedule', detail: `every ${schedule.everyMs} ms` },
        actor: SYSTEM_ACTOR,
      });
      failed.delete(modelName);
      logger.info({ model: modelName, roundId: round.id }, 'scheduled round started');
      await audit('fl.schedule-trigger', subject, {
        outcome: 'started',
        roundId: round.id,
        status: round.status,
        everyMs: schedule.everyMs,
      });
    } catch (error) {
      failed.set(modelName, { atMs: now, schedule: key });
      logger.warn({ model: modelName, err: error }, 'scheduled round could not start');
      await audit('fl.schedule-trigger', subject, {
        outcome: 'failed',
        reason: message(error),
        everyMs: schedule.everyMs,
      });
    }
  }

  return {
    onDriftAlert: (alert) => serially(alert.model.name, () => onDrift(alert)),

    async runSchedules() {
      for (const policy of await policies.withTriggers()) {
        const schedule = policy.flSchedule;
        if (!schedule) continue;
        try {
          await serially(policy.modelName, () => runSchedule(policy.modelName, schedule));
        } catch (error) {
          logger.error({ err: error, model: policy.modelName }, 'fl schedule check failed');
        }
      }
    },
  };
}
