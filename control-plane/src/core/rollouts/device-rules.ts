/**
 * The rollout engine's rules for one device, as named steps over a StepContext.
 *
 *   pending --deploy--> sent --progress--> updating --> probation --committed--> succeeded
 *      ^                  |                   |             |
 *      +--- retry due ----+--- timed out, or a transient error, retries left
 *                         +--- final error, out of retries, health gates --> failed
 *
 * Reports:
 *   - Only reports naming this rollout and its bundle count; reports of an
 *     earlier stage than the device's (MQTT does not order the evt and state
 *     topics against each other) never move it back, and a report that says
 *     what the device already is changes nothing (QoS 1 redelivery).
 *   - `committed` is success. `idle` with an error, or `rolled_back`, is a
 *     failure: final, except the transient codes in TRANSIENT_ERROR_CODES,
 *     which are retried like a timeout.
 *   - A device waiting for a retry (pending, attempts > 0) takes only a
 *     commit or a final error from the attempt before; its progress is left to
 *     the retry (the agent answers a repeated deploy of the bundle it is
 *     working on with its current state), so a slow device cannot keep
 *     resetting its own timeout.
 *   - Reports carry no attempt number, so a redelivered transient failure that
 *     arrives after its retry was sent looks like a new one. The engine takes
 *     the same error again, while the retry has had no other report (`sent`),
 *     as that redelivery and ignores it; a device that really fails the same
 *     way at once is then caught by its timeout, one timeout later.
 * Timeouts: a device sent, updating or on probation for `deviceTimeoutMs`
 * since its last deploy has timed out (`DEVICE_TIMEOUT`). It is retried after
 * `retryBackoffMs * 2^(attempts - 1)` (plus up to 25 % jitter from `random`)
 * while attempts <= retries; then it fails and is told to stop (cancel).
 * Health: a probation health window of this rollout's model that breaks a gate
 * (error rate above, latency p95 above, mean confidence below) fails the device
 * (`HEALTH_GATE`), even after it reported committed: it is told to stop
 * (cancel) or, if it committed, ordered back (rollback). A window without
 * requests is no evidence; one without a mean confidence (every request
 * failed) is judged on its error rate.
 * Late commits: a failed or cancelled device that then reports committed
 * serves a model the rollout gave up on, so it is ordered back once (and a
 * cancelled one becomes rolled_back).
 */
import type { ErrorReport } from '@fleet/protocol';
import type { RolloutEvent } from './rollout-events.ts';
import type { RolloutDevice, RolloutDeviceStatus } from './rollout-types.ts';
import {
  decide,
  durationLabel,
  isFinal,
  isInFlight,
  modelLabel,
  putDevice,
  ratioLabel,
  type StepContext,
} from './step-context.ts';

/** Device error codes worth another deploy: the transfer, the link or the agent was busy, not the bundle. */
export const TRANSIENT_ERROR_CODES: ReadonlySet<string> = new Set([
  /** The agent's download deadline passed (THREATS 26): a slow or flapping link. */
  'DOWNLOAD_DEADLINE',
  /** The agent lost the broker mid-transfer. */
  'DISCONNECTED',
  /** The agent was finishing another update's probation. */
  'BUSY',
]);

/** Retry delays grow by at most this share of the backoff, from `random`. */
export const RETRY_JITTER_RATIO = 0.25;

type ReportEvent = Extract<RolloutEvent, { type: 'device-report' }>;
type HealthEvent = Extract<RolloutEvent, { type: 'device-health' }>;

/** How far along an in-flight device is; a report never moves a device down this. */
const PROGRESS_RANK: Partial<Record<RolloutDeviceStatus, number>> = {
  sent: 1,
  updating: 2,
  probation: 3,
};

export function applyReport(ctx: StepContext, report: ReportEvent): void {
  const { rollout } = ctx;
  if (report.rolloutId !== rollout.id || report.bundleId !== rollout.model.bundleId) return;
  const device = ctx.devices.get(report.deviceId);
  if (!device || device.attempts === 0) return;
  if (isFinal(device)) {
    if (report.state === 'committed') orderBackLateCommit(ctx, device);
    return;
  }
  const failure = reportedFailure(report);
  if (failure) return onReportedFailure(ctx, device, failure);
  if (report.state === 'committed') return succeed(ctx, device);
  if (device.status === 'pending') return;
  if (report.state === 'probation') return progress(ctx, device, 'probation');
  if (report.state !== 'idle') progress(ctx, device, 'updating');
}

function reportedFailure(report: ReportEvent): ErrorReport | null {
  if (report.state === 'rolled_back') {
    return (
      report.error ?? { code: 'ROLLED_BACK', message: 'the agent rolled back without a reason' }
    );
  }
  return report.state === 'idle' ? report.error : null;
}

function progress(ctx: StepContext, device: RolloutDevice, status: 'updating' | 'probation'): void {
  if ((PROGRESS_RANK[status] ?? 0) <= (PROGRESS_RANK[device.status] ?? 0)) return;
  putDevice(ctx, { ...device, status });
}

function succeed(ctx: StepContext, device: RolloutDevice): void {
  putDevice(ctx, {
    ...device,
    status: 'succeeded',
    committedAtMs: ctx.nowMs,
    nextAttemptAtMs: null,
    error: null,
  });
  const reason = `${device.deviceId} committed ${modelLabel(ctx.rollout.model)} after probation (attempt ${device.attempts})`;
  decide(ctx, 'device-succeeded', reason, { deviceId: device.deviceId, wave: device.wave });
}

function onReportedFailure(ctx: StepContext, device: RolloutDevice, error: ErrorReport): void {
  if (!TRANSIENT_ERROR_CODES.has(error.code)) {
    return failDevice(ctx, device, error, { deviceStopped: true });
  }
  // Already waiting for a retry: this is the same failure again, or one from before it.
  if (device.status === 'pending') return;
  // The retry went out and nothing came back yet but the very failure that caused it:
  // a QoS 1 redelivery (a real repeat is caught by the timeout instead).
  if (device.status === 'sent' && sameError(device.error, error)) return;
  retryOrFail(ctx, device, error, { deviceStopped: true });
}

function sameError(a: ErrorReport | null, b: ErrorReport): boolean {
  return a !== null && a.code === b.code && a.message === b.message;
}

/**
 * Schedules the next deploy if retries are left (the device goes back to
 * pending), else fails the device.
 */
export function retryOrFail(
  ctx: StepContext,
  device: RolloutDevice,
  error: ErrorReport,
  how: { deviceStopped: boolean },
): void {
  const { retries, retryBackoffMs } = ctx.rollout.policy;
  if (device.attempts > retries) {
    const outOfRetries = { ...error, message: `${error.message}; no retries left (${retries})` };
    return failDevice(ctx, device, outOfRetries, how);
  }
  const backoffMs = retryBackoffMs * 2 ** (device.attempts - 1);
  const jitter = ctx.random ? Math.min(1, Math.max(0, ctx.random())) : 0;
  const delayMs = backoffMs + Math.floor(backoffMs * RETRY_JITTER_RATIO * jitter);
  putDevice(ctx, { ...device, status: 'pending', nextAttemptAtMs: ctx.nowMs + delayMs, error });
  const reason = `${device.deviceId}: ${error.code} on attempt ${device.attempts}; deploy attempt ${device.attempts + 1} of ${retries + 1} in ${durationLabel(delayMs)}`;
  decide(ctx, 'device-retried', reason, {
    deviceId: device.deviceId,
    wave: device.wave,
    code: error.code,
  });
}

/**
 * Fails a device for good. One that may still be working on the update is
 * told to stop (cancel); one that committed it is ordered back (rollback).
 */
export function failDevice(
  ctx: StepContext,
  device: RolloutDevice,
  error: ErrorReport,
  how: { deviceStopped: boolean },
): void {
  const failed = putDevice(ctx, { ...device, status: 'failed', nextAttemptAtMs: null, error });
  const reason = `${device.deviceId} failed after ${device.attempts} attempt(s): ${error.code}: ${error.message}`;
  const ids = { deviceId: device.deviceId, wave: device.wave, code: error.code };
  decide(ctx, 'device-failed', reason, ids);
  if (failed.committedAtMs !== null) {
    orderBack(ctx, failed, `it failed after committing: ${error.code}`);
  } else if (!how.deviceStopped) {
    ctx.commands.push({ type: 'cancel', deviceId: device.deviceId, reason: reason.slice(0, 500) });
  }
}

/** Emits the rollback of a device that committed this rollout's model, with its decision. */
export function orderBack(ctx: StepContext, device: RolloutDevice, why: string): void {
  const to = device.previousModel;
  const target = to
    ? `back to ${modelLabel(to)}`
    : 'back, but no earlier model is recorded for it (nothing to roll back to)';
  const reason = `${device.deviceId} serves ${modelLabel(ctx.rollout.model)}; ${why}: ordered ${target}; needs a signed rollback authorization`;
  ctx.commands.push({
    type: 'rollback',
    deviceId: device.deviceId,
    to,
    reason: reason.slice(0, 500),
    needsSignedAuthorization: true,
  });
  decide(ctx, 'rollback-ordered', reason, { deviceId: device.deviceId, wave: device.wave });
}

function orderBackLateCommit(ctx: StepContext, device: RolloutDevice): void {
  if (device.committedAtMs !== null) return;
  if (device.status !== 'failed' && device.status !== 'cancelled') return;
  const status = device.status === 'cancelled' ? 'rolled_back' : 'failed';
  const next = putDevice(ctx, { ...device, status, committedAtMs: ctx.nowMs });
  orderBack(
    ctx,
    next,
    `it committed after it had been ${device.status === 'failed' ? 'failed' : 'cancelled'}`,
  );
}

export function applyHealth(ctx: StepContext, health: HealthEvent): void {
  const device = ctx.devices.get(health.deviceId);
  const { model, policy } = ctx.rollout;
  if (!device || device.attempts === 0 || !health.probation || health.requests === 0) return;
  if (health.model.name !== model.name || health.model.version !== model.version) return;
  if (health.model.release !== model.release) return;
  if (device.status !== 'succeeded' && isFinal(device)) return;
  const gates = policy.gates;
  const breaches: string[] = [];
  const errorRate = health.errors / health.requests;
  if (errorRate > gates.maxErrorRate) {
    breaches.push(
      `error rate ${ratioLabel(errorRate)} (${health.errors} of ${health.requests}) above ${ratioLabel(gates.maxErrorRate)}`,
    );
  }
  if (health.latencyP95Ms > gates.maxLatencyP95Ms) {
    breaches.push(`latency p95 ${health.latencyP95Ms} ms above ${gates.maxLatencyP95Ms} ms`);
  }
  if (health.meanConfidence !== null && health.meanConfidence < gates.minMeanConfidence) {
    breaches.push(
      `mean confidence ${health.meanConfidence.toFixed(3)} below ${gates.minMeanConfidence.toFixed(3)}`,
    );
  }
  if (breaches.length === 0) return;
  const message = `probation health broke the gates: ${breaches.join('; ')}`;
  failDevice(ctx, device, { code: 'HEALTH_GATE', message }, { deviceStopped: false });
}

/** Times out in-flight devices whose last deploy is `deviceTimeoutMs` old. */
export function expireTimeouts(ctx: StepContext): void {
  const { deviceTimeoutMs } = ctx.rollout.policy;
  // Nothing in flight was sent early enough to have timed out.
  if (ctx.nowMs - ctx.inFlightSentFloorMs < deviceTimeoutMs) return;
  let floor = Infinity;
  for (const device of ctx.devices.values()) {
    if (!isInFlight(device)) continue;
    if (ctx.nowMs - device.lastSentAtMs! < deviceTimeoutMs) {
      floor = Math.min(floor, device.lastSentAtMs!);
      continue;
    }
    const message = `no final report within ${durationLabel(deviceTimeoutMs)} of deploy attempt ${device.attempts} (last seen ${device.status})`;
    const ids = { deviceId: device.deviceId, wave: device.wave, code: 'DEVICE_TIMEOUT' };
    decide(ctx, 'device-timed-out', `${device.deviceId}: ${message}`, ids);
    retryOrFail(ctx, device, { code: 'DEVICE_TIMEOUT', message }, { deviceStopped: false });
  }
  // Exact now: the devices still in flight; the timed-out ones became pending or failed.
  ctx.inFlightSentFloorMs = floor;
}

/** Sends the deploy to one device now (first attempt or a retry). */
export function sendDeploy(ctx: StepContext, device: RolloutDevice): void {
  const { deviceTimeoutMs, probationMs } = ctx.rollout.policy;
  const attempt = device.attempts + 1;
  putDevice(ctx, {
    ...device,
    status: 'sent',
    attempts: attempt,
    lastSentAtMs: ctx.nowMs,
    nextAttemptAtMs: null,
  });
  const deadlineMs = ctx.nowMs + deviceTimeoutMs - probationMs;
  ctx.commands.push({ type: 'deploy', deviceId: device.deviceId, attempt, deadlineMs });
}

/** Deploys to every pending device of a started wave whose retry, if any, is due. */
export function dispatchDeploys(ctx: StepContext): void {
  // No pending device is due yet.
  if (ctx.pendingDueFloorMs > ctx.nowMs) return;
  let floor = Infinity;
  for (const device of ctx.devices.values()) {
    if (device.status !== 'pending' || device.wave > ctx.rollout.currentWave) continue;
    if (device.nextAttemptAtMs !== null && device.nextAttemptAtMs > ctx.nowMs) {
      floor = Math.min(floor, device.nextAttemptAtMs);
      continue;
    }
    sendDeploy(ctx, device);
  }
  // Exact now: the retries still waiting; the due devices were sent.
  ctx.pendingDueFloorMs = floor;
}
