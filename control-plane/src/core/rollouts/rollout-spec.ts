/**
 * A rollout's policy from operator input: the CLI's text
 * (`--waves 1%,10%,50%,100% --bake 10m --max-failure 2% --device-timeout 15m
 * --retries 2`) or the JSON API's numbers, merged over `defaultPolicy` and
 * checked once. Every refusal is INVALID_REQUEST naming the field, and
 * nothing is half-built.
 *
 * Text forms:
 *   waves      comma-separated, cumulative: `1%,10%,50%,100%` or `5,20,all`.
 *              Percentages 0 < p <= 100, counts whole numbers >= 1, each kind
 *              strictly increasing. Counts may lead percentages
 *              (`5,10%,all`: a fixed canary, then shares) but not follow one,
 *              since whether a count after a share grows the rollout depends
 *              on the target's size. The last wave is `100%` or `all` (the same
 *              thing), so the whole target is always covered. At most 20 waves.
 *   durations  unit-suffixed whole numbers, largest unit first, each unit once:
 *              `500ms`, `90s`, `10m`, `1h30m`, `2d`. A bare number is refused
 *              (seconds or minutes?); JSON numbers are milliseconds.
 *   ratios     `2%` or `0.02`; a bare number above 1 is refused (2 % or 200 %?).
 */
import { controlPlaneError } from '../errors.ts';
import type { HealthGates, RolloutPolicy, WaveSize } from './rollout-types.ts';

export const MAX_WAVES = 20;
/** Longest duration any policy field accepts: a typo like `10d` for `10m` still fits, `10y` does not. */
export const MAX_DURATION_MS = 30 * 24 * 60 * 60 * 1000;
export const MAX_RETRIES = 10;

/**
 * The policy when the operator says nothing:
 *   waves 1 %, 10 %, 50 %, 100 %   a canary of at least one device, then widening steps
 *   bake 10 min                   two probation windows, so health telemetry has arrived
 *   success 95 %                  a few slow or offline devices do not hold a wave back
 *   max failure 2 %               the example; with success 95 % the two add up
 *                                 to at most 100 %, which `buildPolicy` requires
 *   device timeout 15 min         download + verify + activation + 5 min probation, with room
 *   retries 2, backoff 30 s       three deploys in all, 30 s then 60 s apart
 *   probation 5 min               long enough to see real traffic on the new model
 *   gates                         the agent's own defaults (edge-agent DEFAULT_PROBATION:
 *                                 errors <= 5 %, p95 <= 1 s, no confidence floor), so both
 *                                 ends judge probation alike unless the operator sets them
 */
export const defaultPolicy: RolloutPolicy = {
  waves: [{ percent: 1 }, { percent: 10 }, { percent: 50 }, { percent: 100 }],
  bakeMs: 10 * 60_000,
  successRatio: 0.95,
  maxFailureRatio: 0.02,
  deviceTimeoutMs: 15 * 60_000,
  retries: 2,
  retryBackoffMs: 30_000,
  probationMs: 5 * 60_000,
  gates: { maxErrorRate: 0.05, maxLatencyP95Ms: 1_000, minMeanConfidence: 0 },
};

/** Operator input: text from the CLI or numbers (ms, ratios 0..1) from JSON; absent means the default. */
export interface PolicyInput {
  waves?: string | WaveSize[];
  bake?: string | number;
  successRatio?: string | number;
  maxFailure?: string | number;
  deviceTimeout?: string | number;
  retries?: string | number;
  retryBackoff?: string | number;
  probation?: string | number;
  maxErrorRate?: string | number;
  maxLatencyP95?: string | number;
  minConfidence?: string | number;
  /** Share of inferences sampled for drift (`10%`, 0.1); absent, the bundle's default. */
  driftSampleRate?: string | number;
}

const POLICY_FIELDS = new Set([
  'waves',
  'bake',
  'successRatio',
  'maxFailure',
  'deviceTimeout',
  'retries',
  'retryBackoff',
  'probation',
  'maxErrorRate',
  'maxLatencyP95',
  'minConfidence',
  'driftSampleRate',
]);

function invalid(field: string, message: string): Error {
  return controlPlaneError('INVALID_REQUEST', `${field}: ${message}`);
}

/**
 * Parses cumulative wave sizes; `all` is `{ percent: 100 }`.
 *
 * @example
 *   parseWaves('5,10%,all') // [{ count: 5 }, { percent: 10 }, { percent: 100 }]
 */
export function parseWaves(text: string, field = 'waves'): WaveSize[] {
  const waves = text.split(',').map((term): WaveSize => {
    const t = term.trim();
    if (t === 'all') return { percent: 100 };
    if (/^\d+(\.\d+)?%$/.test(t)) return { percent: Number(t.slice(0, -1)) };
    if (/^\d+$/.test(t)) return { count: Number(t) };
    throw invalid(field, `'${t}' is not a percentage (10%), a device count (5) or all`);
  });
  return checkWaves(waves, field);
}

/** Checks structured wave sizes by the rules in the header; returns a copy. */
export function checkWaves(waves: readonly WaveSize[], field = 'waves'): WaveSize[] {
  if (waves.length === 0) throw invalid(field, 'at least one wave is needed');
  if (waves.length > MAX_WAVES) throw invalid(field, `at most ${MAX_WAVES} waves`);
  const last = { percent: 0, count: 0 };
  for (const [index, wave] of waves.entries()) {
    const problem = waveProblem(wave, last);
    if (problem) throw invalid(field, `wave ${index + 1}: ${problem}`);
  }
  const final = waves.at(-1);
  if (!final || !('percent' in final) || final.percent !== 100) {
    throw invalid(field, 'the last wave must be 100% or all, so the whole target is covered');
  }
  return waves.map((wave) => ({ ...wave }));
}

/** Why one wave breaks the rules after the waves before it (`last`, updated), or null. */
function waveProblem(wave: WaveSize, last: { percent: number; count: number }): string | null {
  if (typeof wave === 'object' && wave !== null && 'percent' in wave) {
    const p = wave.percent;
    if (!(Number.isFinite(p) && p > 0 && p <= 100)) return `${p}% is not in (0, 100]`;
    if (p <= last.percent) return `${p}% does not grow past ${last.percent}%`;
    last.percent = p;
    return null;
  }
  if (typeof wave === 'object' && wave !== null && 'count' in wave) {
    const c = wave.count;
    if (!(Number.isSafeInteger(c) && c >= 1)) return `${c} is not a whole number >= 1`;
    if (last.percent > 0) return 'a device count may not follow a percentage';
    if (c <= last.count) return `${c} does not grow past ${last.count}`;
    last.count = c;
    return null;
  }
  return 'expected { percent } or { count }';
}

const DURATION_UNITS_MS: Record<string, number> = {
  d: 86_400_000,
  h: 3_600_000,
  m: 60_000,
  s: 1_000,
  ms: 1,
};
const DURATION_ORDER = ['d', 'h', 'm', 's', 'ms'];

/** Milliseconds from `500ms`, `90s`, `10m`, `1h30m`, `2d` (largest unit first, each once). */
export function parseDuration(text: string, field = 'duration'): number {
  const terms = [...text.trim().matchAll(/(\d+)(ms|d|h|m|s)/g)];
  const spelled = terms.map((t) => t[0]).join('');
  if (terms.length === 0 || spelled !== text.trim()) {
    throw invalid(field, `'${text}' is not a duration (e.g. 500ms, 90s, 10m, 1h30m)`);
  }
  let totalMs = 0;
  let previous = -1;
  for (const [, amount, unit] of terms) {
    const order = DURATION_ORDER.indexOf(unit!);
    if (order <= previous) {
      throw invalid(field, `'${text}': units must go largest first, each once`);
    }
    previous = order;
    totalMs += Number(amount) * DURATION_UNITS_MS[unit!]!;
  }
  return checkDuration(totalMs, field);
}

function checkDuration(ms: number, field: string): number {
  if (!Number.isSafeInteger(ms) || ms < 0) {
    throw invalid(field, `${ms} is not a whole number of ms >= 0`);
  }
  if (ms > MAX_DURATION_MS) throw invalid(field, `${ms} ms is longer than 30 days`);
  return ms;
}

/** A ratio in [0, 1] from `2%` or `0.02`. */
export function parseRatio(text: string, field = 'ratio'): number {
  const t = text.trim();
  if (/^\d+(\.\d+)?%$/.test(t)) return checkRatio(Number(t.slice(0, -1)) / 100, field, text);
  if (/^\d+(\.\d+)?$/.test(t)) return checkRatio(Number(t), field, text);
  throw invalid(field, `'${text}' is not a ratio (e.g. 2% or 0.02)`);
}

function checkRatio(ratio: number, field: string, spelled: string | number): number {
  if (!(Number.isFinite(ratio) && ratio >= 0 && ratio <= 1)) {
    throw invalid(field, `${spelled} is not between 0 and 1 (write 2% or 0.02)`);
  }
  return ratio;
}

const durationOf = (value: string | number, field: string) =>
  typeof value === 'string' ? parseDuration(value, field) : checkDuration(value, field);
const ratioOf = (value: string | number, field: string) =>
  typeof value === 'string' ? parseRatio(value, field) : checkRatio(value, field, value);

function retriesOf(value: string | number, field = 'retries'): number {
  const n = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0 || n > MAX_RETRIES) {
    throw invalid(field, `${value} is not a whole number from 0 to ${MAX_RETRIES}`);
  }
  return n;
}

/**
 * The policy for `input` over `defaultPolicy`, checked: each field by its own
 * rule, then together (see `checkPolicy`). Unknown fields are refused (a typo
 * must not silently fall back to a default).
 *
 * @example
 *   buildPolicy({ waves: '1%,10%,50%,100%', bake: '10m', maxFailure: '2%',
 *                 deviceTimeout: '15m', retries: '2' })
 */
export function buildPolicy(input: PolicyInput = {}): RolloutPolicy {
  for (const key of Object.keys(input)) {
    if (!POLICY_FIELDS.has(key)) throw invalid(key, 'unknown policy field');
  }
  const d = defaultPolicy;
  const gates: HealthGates = {
    maxErrorRate: read(input, 'maxErrorRate', ratioOf, d.gates.maxErrorRate),
    maxLatencyP95Ms: read(input, 'maxLatencyP95', durationOf, d.gates.maxLatencyP95Ms),
    minMeanConfidence: read(input, 'minConfidence', ratioOf, d.gates.minMeanConfidence),
  };
  return checkPolicy({
    waves: wavesOf(input.waves),
    bakeMs: read(input, 'bake', durationOf, d.bakeMs),
    successRatio: read(input, 'successRatio', ratioOf, d.successRatio),
    maxFailureRatio: read(input, 'maxFailure', ratioOf, d.maxFailureRatio),
    deviceTimeoutMs: read(input, 'deviceTimeout', durationOf, d.deviceTimeoutMs),
    retries: read(input, 'retries', retriesOf, d.retries),
    retryBackoffMs: read(input, 'retryBackoff', durationOf, d.retryBackoffMs),
    probationMs: read(input, 'probation', durationOf, d.probationMs),
    gates,
    ...(input.driftSampleRate === undefined
      ? {}
      : { driftSampleRate: ratioOf(input.driftSampleRate, 'driftSampleRate') }),
  });
}

type ScalarField = Exclude<keyof PolicyInput, 'waves'>;

/** `input[field]` through its reader, or the default when absent. */
function read(
  input: PolicyInput,
  field: ScalarField,
  reader: (value: string | number, field: string) => number,
  fallback: number,
): number {
  const value = input[field];
  return value === undefined ? fallback : reader(value, field);
}

function wavesOf(waves: PolicyInput['waves']): WaveSize[] {
  if (waves === undefined) return defaultPolicy.waves.map((wave) => ({ ...wave }));
  if (typeof waves === 'string') return parseWaves(waves);
  if (!Array.isArray(waves)) throw invalid('waves', 'expected text (1%,10%,all) or a list');
  return checkWaves(waves);
}

/**
 * Checks a whole policy (built here, or read back from storage): each number
 * by its field's rule, then the rules between fields:
 *   - successRatio > 0 (a wave that needs no success would advance on nothing);
 *   - maxFailureRatio < 100 % (at 100 % nothing could ever abort);
 *   - successRatio + maxFailureRatio <= 100 %, so a wave whose devices have all
 *     finished within the failure limit has always reached its success share
 *     (otherwise it could stay stuck, neither advancing nor aborting);
 *   - deviceTimeoutMs > probationMs (a device must be able to finish probation in time);
 *   - maxLatencyP95Ms > 0.
 */
export function checkPolicy(policy: RolloutPolicy): RolloutPolicy {
  checkWaves(policy.waves);
  checkDuration(policy.bakeMs, 'bake');
  checkDuration(policy.deviceTimeoutMs, 'deviceTimeout');
  checkDuration(policy.retryBackoffMs, 'retryBackoff');
  checkDuration(policy.probationMs, 'probation');
  checkDuration(policy.gates.maxLatencyP95Ms, 'maxLatencyP95');
  retriesOf(policy.retries);
  checkRatio(policy.successRatio, 'successRatio', policy.successRatio);
  checkRatio(policy.maxFailureRatio, 'maxFailure', policy.maxFailureRatio);
  checkRatio(policy.gates.maxErrorRate, 'maxErrorRate', policy.gates.maxErrorRate);
  checkRatio(policy.gates.minMeanConfidence, 'minConfidence', policy.gates.minMeanConfidence);
  if (policy.successRatio <= 0) throw invalid('successRatio', 'must be above 0');
  if (policy.maxFailureRatio >= 1) throw invalid('maxFailure', 'must be below 100%');
  if (policy.successRatio + policy.maxFailureRatio > 1 + 1e-9) {
    const sum = `success ${pct(policy.successRatio)} + max failure ${pct(policy.maxFailureRatio)}`;
    throw invalid(
      'successRatio',
      `${sum} is above 100%: a wave could end unable to advance or abort`,
    );
  }
  if (policy.deviceTimeoutMs <= policy.probationMs) {
    throw invalid(
      'deviceTimeout',
      `${policy.deviceTimeoutMs} ms must be longer than probation (${policy.probationMs} ms)`,
    );
  }
  if (policy.gates.maxLatencyP95Ms <= 0) throw invalid('maxLatencyP95', 'must be above 0');
  if (policy.driftSampleRate !== undefined) {
    checkRatio(policy.driftSampleRate, 'driftSampleRate', policy.driftSampleRate);
    if (policy.driftSampleRate <= 0)
      throw invalid('driftSampleRate', 'must be above 0 (a bundle without drift has no profile)');
  }
  return policy;
}

function pct(ratio: number): string {
  return `${(ratio * 100).toFixed(1)}%`;
}
