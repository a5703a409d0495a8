/**
 * What starts a federated round besides an operator (ARCHITECTURE "Federated
 * learning": rounds can be scheduled, started by hand, or triggered by a
 * drift alert), as per-model policy settings, and the pure decisions over
 * them (services/fl-triggers.ts acts on them):
 *
 *   flOnDrift   a drift alert opened for a cohort of the model starts a round
 *               on that cohort, from the alerted version, unless a round of
 *               the model is active or the last drift-started one is within
 *               `cooldownMs`
 *   flSchedule  a round every `everyMs` on `target`, from the latest version,
 *               unless one of the model is active; the first one on the first
 *               check after it is set
 *
 * Settings are checked here when an admin sets them (INVALID_REQUEST naming
 * the field, e.g. `flOnDrift.config.fraction`); the round config is checked
 * again over the configured defaults when a round starts.
 */
import { isFleetError } from '@fleet/protocol';
import { controlPlaneError } from '../errors.ts';
import { buildPolicy } from '../rollouts/rollout-spec.ts';
import type { TargetSelector } from '../rollouts/rollout-types.ts';
import { buildSelector } from '../rollouts/target-selector.ts';
import { checkRoundConfig } from './round-config.ts';
import type { RoundStatus } from './round-types.ts';

/** Start a round when a drift alert opens for a cohort of the model. */
export interface FlOnDrift {
  evalSet: string;
  /** Round config overrides (core round-config.ts names). */
  config: Record<string, unknown>;
  /** Rollout template of a promoted candidate (`POST /v1/rollouts` body without `model`). */
  rollout?: Record<string, unknown>;
  /** Least time between two drift-started rounds of the model. */
  cooldownMs: number;
}

/** Start a round of the model every `everyMs`. */
export interface FlSchedule {
  everyMs: number;
  evalSet: string;
  target: TargetSelector;
  config: Record<string, unknown>;
  rollout?: Record<string, unknown>;
}

/** Both settings as the policy row keeps them (`model_policies.fl_triggers`). */
export interface FlTriggerSettings {
  onDrift: FlOnDrift | null;
  schedule: FlSchedule | null;
}

/** Statuses of a round that holds the model: no trigger starts another beside it. */
export const ACTIVE_ROUND_STATUSES: readonly RoundStatus[] = [
  'configuring',
  'collecting',
  'aggregating',
  'evaluating',
];

/** Cooldown when `flOnDrift.cooldownMs` is not given. */
export const DEFAULT_DRIFT_COOLDOWN_MS = 60 * 60_000;
/** Shortest schedule interval accepted. */
export const MIN_SCHEDULE_EVERY_MS = 60_000;
/** Longest cooldown or interval accepted (a year). */
export const MAX_TRIGGER_MS = 365 * 24 * 60 * 60_000;

const EVAL_SET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

const invalid = (field: string, message: string) =>
  controlPlaneError('INVALID_REQUEST', `${field}: ${message}`);

function objectOf(value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(field, 'expected an object');
  }
  return value as Record<string, unknown>;
}

function onlyFields(input: Record<string, unknown>, field: string, allowed: string[]): void {
  for (const key of Object.keys(input)) {
    if (!allowed.includes(key)) throw invalid(`${field}.${key}`, 'unknown field');
  }
}

function evalSetOf(value: unknown, field: string): string {
  if (typeof value !== 'string' || !EVAL_SET_NAME.test(value)) {
    throw invalid(`${field}.evalSet`, 'expected an eval set name of [A-Za-z0-9._-]');
  }
  return value;
}

function msOf(value: unknown, field: string, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw invalid(field, `expected a whole number of ms >= ${min}`);
  }
  if (value > MAX_TRIGGER_MS) throw invalid(field, `at most ${MAX_TRIGGER_MS} ms (a year)`);
  return value;
}

function configOf(value: unknown, field: string): Record<string, unknown> {
  if (value === undefined) return {};
  const config = objectOf(value, `${field}.config`);
  const checked = checkRoundConfig(config);
  if (!checked.ok) {
    const first = checked.errors[0]!;
    throw invalid(`${field}.config.${first.field}`, first.message);
  }
  return config;
}

/** Re-throws a rollout or selector error under `prefix` (`flOnDrift.rollout` + `waves: ...`). */
function under<T>(prefix: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (!isFleetError(error)) throw error;
    const inner = error.message.slice(error.code.length + 2); // without "CODE: "
    throw controlPlaneError('INVALID_REQUEST', `${prefix}.${inner}`);
  }
}

function rolloutOf(value: unknown, field: string): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  const template = objectOf(value, `${field}.rollout`);
  const { target, ...policy } = template;
  under(`${field}.rollout`, () => buildPolicy(policy));
  if (target !== undefined) under(`${field}.rollout`, () => buildSelector(target));
  return template;
}

/** Checks a `flOnDrift` value: null (off) or the setting, defaults filled. */
export function checkFlOnDrift(value: unknown): FlOnDrift | null {
  if (value === null) return null;
  const input = objectOf(value, 'flOnDrift');
  onlyFields(input, 'flOnDrift', ['evalSet', 'config', 'rollout', 'cooldownMs']);
  const rollout = rolloutOf(input['rollout'], 'flOnDrift');
  return {
    evalSet: evalSetOf(input['evalSet'], 'flOnDrift'),
    config: configOf(input['config'], 'flOnDrift'),
    ...(rollout ? { rollout } : {}),
    cooldownMs:
      input['cooldownMs'] === undefined
        ? DEFAULT_DRIFT_COOLDOWN_MS
        : msOf(input['cooldownMs'], 'flOnDrift.cooldownMs', 0),
  };
}

/** Checks a `flSchedule` value: null (off) or the setting, its target as a selector object. */
export function checkFlSchedule(value: unknown): FlSchedule | null {
  if (value === null) return null;
  const input = objectOf(value, 'flSchedule');
  onlyFields(input, 'flSchedule', ['everyMs', 'evalSet', 'target', 'config', 'rollout']);
  if (input['target'] === undefined) throw invalid('flSchedule.target', 'required');
  const target = under('flSchedule', () => buildSelector(input['target']));
  const rollout = rolloutOf(input['rollout'], 'flSchedule');
  return {
    everyMs: msOf(input['everyMs'], 'flSchedule.everyMs', MIN_SCHEDULE_EVERY_MS),
    evalSet: evalSetOf(input['evalSet'], 'flSchedule'),
    target,
    config: configOf(input['config'], 'flSchedule'),
    ...(rollout ? { rollout } : {}),
  };
}

/**
 * The devices a drift alert's cohort names: `*` is the whole fleet, `KEY=VALUE`
 * the devices with that tag (the round narrows both to those running the base).
 */
export function cohortSelector(cohort: string): TargetSelector {
  if (cohort === '*') return { all: true };
  const at = cohort.indexOf('=');
  if (at < 1) throw invalid('cohort', `'${cohort}' is not * or KEY=VALUE`);
  return buildSelector({ tags: { [cohort.slice(0, at)]: cohort.slice(at + 1) } });
}

/** What the trigger knows about the model's rounds. */
export interface RoundsOfModel {
  /** A round of the model in an active status, if any. */
  active: { id: string; status: RoundStatus } | null;
  /** When the last round this trigger started was created (epoch ms). */
  lastStartedAtMs: number | null;
}

export type TriggerDecision = { start: true } | { start: false; reason: string };

/** Whether a drift alert starts a round now. */
export function decideDriftTrigger(
  setting: FlOnDrift,
  rounds: RoundsOfModel,
  nowMs: number,
): TriggerDecision {
  if (rounds.active) {
    return {
      start: false,
      reason: `round ${rounds.active.id} of the model is ${rounds.active.status}`,
    };
  }
  const last = rounds.lastStartedAtMs;
  if (last !== null && nowMs - last < setting.cooldownMs) {
    const left = Math.ceil((setting.cooldownMs - (nowMs - last)) / 1000);
    return { start: false, reason: `cooldown: ${left}s left since the last drift-triggered round` };
  }
  return { start: true };
}

/**
 * Whether the schedule starts a round now: `everyMs` after the last scheduled
 * round (or the last failed attempt to start one), none active.
 */
export function scheduleDue(
  setting: FlSchedule,
  rounds: RoundsOfModel & { lastAttemptAtMs: number | null },
  nowMs: number,
): boolean {
  if (rounds.active) return false;
  const last = Math.max(rounds.lastStartedAtMs ?? -Infinity, rounds.lastAttemptAtMs ?? -Infinity);
  return !Number.isFinite(last) || nowMs - last >= setting.everyMs;
}
