/**
 * The agent's update state machine (ARCHITECTURE "Over-the-air delivery") as a
 * pure function: `step(state, input, nowMs) -> { state, actions }`.
 *
 *   idle -> downloading -> verifying -> staged -> activating -> probation
 *        -> committed | rolled_back
 *
 * The driver (agent/update-driver.ts) persists the returned state atomically
 * and only then runs the actions, in order; results come back as inputs. So a
 * crash between any two steps restarts from a persisted state, and `boot`
 * decides from it alone:
 *
 *   - downloading / verifying / staged: carry on (blocks already written and
 *     verified are kept; the bitmap is the download store's);
 *   - activating / probation: the new model was loaded or serving when the
 *     process died. It may be what killed it (THREATS 21), so roll back: the
 *     committed slot serves, and the failure is reported.
 *
 * The committed model is never touched before the new one has passed its
 * self-test and probation, and success is reported only after the commit is
 * persisted (THREATS 19, 20). The agent decides to roll back on its own: it
 * needs no word from the control plane (THREATS 22).
 */
import type { DeployMessage, ErrorReport, BundleModelRef } from '@fleet/protocol';
import {
  RECENT_COMMAND_IDS,
  reportedUpdateState,
  spareSlot,
  type AgentState,
  type InstalledModel,
  type Slot,
  type UpdateJob,
} from './update-state.ts';

/** Probation used when a deploy names none: one minute with lenient gates. */
export const DEFAULT_PROBATION = {
  durationMs: 60_000,
  maxErrorRate: 0.05,
  maxLatencyP95Ms: 1_000,
  minMeanConfidence: 0,
} as const;

export type UpdateInput =
  | { type: 'boot' }
  | { type: 'tick' }
  | { type: 'deploy'; command: DeployMessage }
  /** The adapter checked the deploy's signed manifest (signatures, expiry, release, hardware). */
  | {
      type: 'manifest-checked';
      command: DeployMessage;
      result: { ok: true; model: BundleModelRef } | { ok: false; error: ErrorReport };
      authorizedRollback?: boolean;
    }
  | { type: 'download-complete'; bundleId: string }
  | { type: 'download-failed'; bundleId: string; error: ErrorReport }
  /** The whole file hashed to its id, verified against the trust root, and its parts were written to the slot. */
  | { type: 'staged'; bundleId: string }
  | { type: 'stage-failed'; bundleId: string; error: ErrorReport }
  /** The internal "go on" after a persisted phase that needs no outside result. */
  | { type: 'advance' }
  /** The new model loaded in its slot and passed the golden vectors. */
  | { type: 'activated'; bundleId: string }
  | { type: 'activation-failed'; bundleId: string; error: ErrorReport }
  | { type: 'probation-judged'; bundleId: string; pass: boolean; reason: string }
  | { type: 'cancel'; commandId: string; rolloutId: string; reason: string }
  /** A verified rollback instruction whose target bundle sits in the previous slot. */
  | { type: 'rollback-to-previous'; commandId: string; rolloutId: string | null; reason: string };

export type UpdateAction =
  /** Verify the deploy's manifest envelope; answer with `manifest-checked`. */
  | { type: 'check-manifest'; command: DeployMessage; installedRelease: number }
  /** Fetch the missing blocks (resuming from the persisted bitmap); answer with `download-complete`. */
  | { type: 'download'; job: UpdateJob }
  /** Stop fetching; `discard` drops the partial file. */
  | { type: 'stop-download'; bundleId: string; discard: boolean }
  /** Hash and verify the whole file, write its parts to `job.slot`; answer with `staged`. */
  | { type: 'stage'; job: UpdateJob }
  /** Load the slot's model beside the serving one and run its golden vectors; answer with `activated`. */
  | { type: 'activate'; job: UpdateJob }
  /** Route inference to this slot's model. */
  | { type: 'serve'; slot: Slot; model: BundleModelRef }
  /** Unload a slot's model if loaded (the slot's files stay until overwritten). */
  | { type: 'unload'; slot: Slot }
  /** Judge the probation window's health against the policy; answer with `probation-judged`. */
  | { type: 'judge-probation'; job: UpdateJob }
  /** Feed `advance` back in (after the state is persisted). */
  | { type: 'advance' }
  /** Publish progress (evt) and state (retained). */
  | {
      type: 'report';
      rolloutId: string | null;
      bundleId: string | null;
      error: ErrorReport | null;
    };

export interface StepResult {
  state: AgentState;
  actions: UpdateAction[];
}

const unchanged = (state: AgentState): StepResult => ({ state, actions: [] });

/** One transition. Pure: the same state, input and time always give the same result. */
export function step(state: AgentState, input: UpdateInput, nowMs: number): StepResult {
  switch (input.type) {
    case 'boot':
      return onBoot(state, nowMs);
    case 'tick':
      return onTick(state, nowMs);
    case 'deploy':
      return onDeploy(state, input.command);
    case 'manifest-checked':
      return onManifestChecked(state, input, nowMs);
    case 'download-complete':
      // Staging writes the spare slot, which may hold the previous model: it
      // stops being a way back before the first byte is written.
      return forJob(state, input.bundleId, 'downloading', (job) =>
        persistPhase({ ...state, previous: null }, { ...job, phase: 'verifying' }, [
          { type: 'stage', job },
        ]),
      );
    case 'staged':
      return forJob(state, input.bundleId, 'verifying', (job) =>
        persistPhase(state, { ...job, phase: 'staged' }, [{ type: 'advance' }]),
      );
    case 'advance':
      return onAdvance(state);
    case 'activated':
      return forJob(state, input.bundleId, 'activating', (job) => {
        const next = { ...job, phase: 'probation' as const, probationStartedAtMs: nowMs };
        return persistPhase(state, next, [{ type: 'serve', slot: job.slot, model: job.model }]);
      });
    case 'probation-judged':
      return forJob(state, input.bundleId, 'probation', (job) =>
        input.pass
          ? commit(state, job, nowMs)
          : rollBack(state, job, nowMs, { code: 'PROBATION_FAILED', message: input.reason }),
      );
    case 'download-failed':
    case 'stage-failed':
    case 'activation-failed':
      return forJob(state, input.bundleId, null, (job) => rollBack(state, job, nowMs, input.error));
    case 'cancel':
      return onCancel(state, input, nowMs);
    case 'rollback-to-previous':
      return onRollbackToPrevious(state, input, nowMs);
  }
}

/** Runs `then` only when the input is about the job in flight (and in `phase`, when given). */
function forJob(
  state: AgentState,
  bundleId: string,
  phase: UpdateJob['phase'] | null,
  then: (job: UpdateJob) => StepResult,
): StepResult {
  const job = state.job;
  if (!job || job.model.bundleId !== bundleId) return unchanged(state);
  if (phase !== null && job.phase !== phase) return unchanged(state);
  return then(job);
}

function persistPhase(state: AgentState, job: UpdateJob, actions: UpdateAction[]): StepResult {
  return {
    state: { ...state, job },
    actions: [...actions, report(job.rolloutId, job.model.bundleId, null)],
  };
}

function report(
  rolloutId: string | null,
  bundleId: string | null,
  error: ErrorReport | null,
): UpdateAction {
  return { type: 'report', rolloutId, bundleId, error };
}

function onBoot(state: AgentState, nowMs: number): StepResult {
  const serveCommitted: UpdateAction[] = state.committed
    ? [{ type: 'serve', slot: state.committed.slot, model: state.committed.ref }]
    : [];
  const job = state.job;
  if (!job) {
    return { state, actions: [...serveCommitted, report(null, null, state.last?.error ?? null)] };
  }
  switch (job.phase) {
    case 'downloading':
      return { state, actions: [...serveCommitted, { type: 'download', job }, reportJob(job)] };
    case 'verifying':
      return { state, actions: [...serveCommitted, { type: 'stage', job }, reportJob(job)] };
    case 'staged':
      return { state, actions: [...serveCommitted, { type: 'advance' }, reportJob(job)] };
    case 'activating':
    case 'probation': {
      // THREATS 21: the process died with the new model loaded; it may be the cause.
      const rolled = rollBack(state, job, nowMs, {
        code: 'CRASHED_DURING_UPDATE',
        message: `the agent restarted while the new model was ${job.phase === 'activating' ? 'being activated' : 'on probation'}; rolled back to the committed model`,
      });
      return { state: rolled.state, actions: [...serveCommitted, ...rolled.actions] };
    }
  }
}

function reportJob(job: UpdateJob): UpdateAction {
  return report(job.rolloutId, job.model.bundleId, null);
}

function onTick(state: AgentState, nowMs: number): StepResult {
  const job = state.job;
  if (!job) return unchanged(state);
  if (job.phase === 'probation') {
    const started = job.probationStartedAtMs ?? nowMs;
    return nowMs >= started + job.probation.durationMs
      ? { state, actions: [{ type: 'judge-probation', job }] }
      : unchanged(state);
  }
  if ((job.phase === 'downloading' || job.phase === 'verifying') && nowMs > job.deadlineMs) {
    // THREATS 26: a slow transfer hits its deadline and is reported.
    return rollBack(state, job, nowMs, {
      code: 'DOWNLOAD_DEADLINE',
      message: `bundle ${job.model.bundleId.slice(0, 12)}… not downloaded and verified by the deploy's deadline ${new Date(job.deadlineMs).toISOString()}`,
    });
  }
  return unchanged(state);
}

function remember(state: AgentState, commandId: string): AgentState {
  const ids = [...state.recentCommandIds, commandId].slice(-RECENT_COMMAND_IDS);
  return { ...state, recentCommandIds: ids };
}

function onDeploy(state: AgentState, command: DeployMessage): StepResult {
  // THREATS 23: a duplicate QoS 1 delivery is handled once.
  if (state.recentCommandIds.includes(command.id)) return unchanged(state);
  const bundleId = command.bundle.bundleId;
  const remembered = remember(state, command.id);
  // Already serving it (committed), or already working on it: say so, do nothing else.
  if (state.committed?.ref.bundleId === bundleId) {
    const last = {
      rolloutId: command.rolloutId,
      bundleId,
      state: 'committed' as const,
      error: null,
      atMs: state.last?.atMs ?? 0,
    };
    return {
      state: { ...remembered, last },
      actions: [report(command.rolloutId, bundleId, null)],
    };
  }
  if (state.job?.model.bundleId === bundleId) {
    return { state: remembered, actions: [reportJob(state.job)] };
  }
  if (state.job && (state.job.phase === 'activating' || state.job.phase === 'probation')) {
    return {
      state: remembered,
      actions: [
        report(command.rolloutId, bundleId, {
          code: 'BUSY',
          message: `another update (${state.job.model.name}@${state.job.model.version}) is on probation; try again after it ends`,
        }),
      ],
    };
  }
  const installedRelease = state.releaseFloor[command.model.name] ?? 0;
  return { state: remembered, actions: [{ type: 'check-manifest', command, installedRelease }] };
}

function onManifestChecked(
  state: AgentState,
  input: Extract<UpdateInput, { type: 'manifest-checked' }>,
  nowMs: number,
): StepResult {
  const { command, result } = input;
  const bundleId = command.bundle.bundleId;
  if (!result.ok) {
    const last = {
      rolloutId: command.rolloutId,
      bundleId,
      state: 'idle' as const,
      error: result.error,
      atMs: nowMs,
    };
    return {
      state: { ...state, last },
      actions: [report(command.rolloutId, bundleId, result.error)],
    };
  }
  // A newer deploy replaces a download that has not reached activation.
  const replaced: UpdateAction[] = state.job
    ? [{ type: 'stop-download', bundleId: state.job.model.bundleId, discard: true }]
    : [];
  const job: UpdateJob = {
    rolloutId: command.rolloutId,
    commandId: command.id,
    model: result.model,
    sizeBytes: command.bundle.sizeBytes,
    blockSizeBytes: command.bundle.blockSizeBytes,
    blockCount: command.bundle.blockCount,
    blockRoot: command.bundle.blockRoot,
    manifestEnvelope: JSON.stringify(command.bundle.manifestEnvelope),
    phase: 'downloading',
    slot: spareSlot(state.committed?.slot),
    startedAtMs: nowMs,
    deadlineMs: Date.parse(command.deadline),
    probation: command.probation ?? DEFAULT_PROBATION,
    probationStartedAtMs: null,
    authorizedRollback: input.authorizedRollback ?? false,
    ...(command.drift ? { driftSampleRate: command.drift.sampleRate } : {}),
  };
  return {
    state: { ...state, job },
    actions: [...replaced, { type: 'download', job }, reportJob(job)],
  };
}

function onAdvance(state: AgentState): StepResult {
  const job = state.job;
  if (job?.phase !== 'staged') return unchanged(state);
  return persistPhase(state, { ...job, phase: 'activating' }, [{ type: 'activate', job }]);
}

function commit(state: AgentState, job: UpdateJob, nowMs: number): StepResult {
  const name = job.model.name;
  const floor = Math.max(state.releaseFloor[name] ?? 0, job.model.release);
  const next: AgentState = {
    ...state,
    previous: state.committed,
    committed: installedBy(job),
    releaseFloor: { ...state.releaseFloor, [name]: floor },
    job: null,
    last: {
      rolloutId: job.rolloutId,
      bundleId: job.model.bundleId,
      state: 'committed',
      error: null,
      atMs: nowMs,
    },
  };
  const unloadOld: UpdateAction[] = state.committed
    ? [{ type: 'unload', slot: state.committed.slot }]
    : [];
  return { state: next, actions: [...unloadOld, report(job.rolloutId, job.model.bundleId, null)] };
}

/** The committed model a job leaves: its slot, and the rollout (and its drift rate) that put it there. */
function installedBy(job: UpdateJob): InstalledModel {
  return {
    ref: job.model,
    slot: job.slot,
    rolloutId: job.rolloutId,
    ...(job.driftSampleRate !== undefined ? { driftSampleRate: job.driftSampleRate } : {}),
  };
}

/**
 * Ends the job without touching the committed model: stop fetching, serve the
 * committed slot again if the new one was serving, unload the new one.
 */
function rollBack(
  state: AgentState,
  job: UpdateJob,
  nowMs: number,
  error: ErrorReport,
): StepResult {
  const wasLoaded = job.phase === 'activating' || job.phase === 'probation';
  const next: AgentState = {
    ...state,
    job: null,
    last: {
      rolloutId: job.rolloutId,
      bundleId: job.model.bundleId,
      // Reported as rolled_back once the new model had been loaded; before that nothing changed.
      state: wasLoaded ? 'rolled_back' : 'idle',
      error,
      atMs: nowMs,
    },
  };
  const actions: UpdateAction[] = [];
  if (job.phase === 'downloading' || job.phase === 'verifying') {
    actions.push({ type: 'stop-download', bundleId: job.model.bundleId, discard: true });
  }
  if (wasLoaded) {
    if (state.committed) {
      actions.push({ type: 'serve', slot: state.committed.slot, model: state.committed.ref });
    }
    actions.push({ type: 'unload', slot: job.slot });
  }
  actions.push(report(job.rolloutId, job.model.bundleId, error));
  return { state: next, actions };
}

function onCancel(
  state: AgentState,
  input: Extract<UpdateInput, { type: 'cancel' }>,
  nowMs: number,
): StepResult {
  if (state.recentCommandIds.includes(input.commandId)) return unchanged(state);
  const remembered = remember(state, input.commandId);
  const job = state.job;
  if (!job || job.rolloutId !== input.rolloutId) return unchanged(remembered);
  return rollBack(remembered, job, nowMs, {
    code: 'CANCELLED',
    message: `rollout ${input.rolloutId} cancelled: ${input.reason}`.slice(0, 1000),
  });
}

/**
 * A signed rollback instruction (verified by the adapter) naming the model in
 * the previous slot: that model becomes the committed one again. The release
 * floor stays where it is, so the release rolled away from is never installed
 * again, and any later release above it still is.
 */
function onRollbackToPrevious(
  state: AgentState,
  input: Extract<UpdateInput, { type: 'rollback-to-previous' }>,
  nowMs: number,
): StepResult {
  if (state.recentCommandIds.includes(input.commandId)) return unchanged(state);
  const remembered = remember(state, input.commandId);
  const { previous, committed } = remembered;
  if (!previous || !committed) return unchanged(remembered);
  const aborted = remembered.job
    ? rollBack(remembered, remembered.job, nowMs, cancelled(input))
    : null;
  const base = aborted?.state ?? remembered;
  const next: AgentState = {
    ...base,
    committed: previous,
    previous: committed,
    last: {
      rolloutId: input.rolloutId,
      bundleId: previous.ref.bundleId,
      state: 'rolled_back',
      error: { code: 'ROLLED_BACK', message: input.reason.slice(0, 1000) },
      atMs: nowMs,
    },
  };
  return {
    state: next,
    actions: [
      ...(aborted?.actions.filter((a) => a.type !== 'report') ?? []),
      { type: 'serve', slot: previous.slot, model: previous.ref },
      { type: 'unload', slot: committed.slot },
      report(input.rolloutId, previous.ref.bundleId, next.last!.error),
    ],
  };
}

function cancelled(input: { reason: string }): ErrorReport {
  return { code: 'CANCELLED', message: `superseded by a rollback: ${input.reason}`.slice(0, 1000) };
}

export { reportedUpdateState };
