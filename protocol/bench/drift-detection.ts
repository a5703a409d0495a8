/**
 * Part B of the drift bench: seeded streams of inferences on one device of
 * a cohort, sampled and flushed by the agent's drift monitor and scored the
 * way the control plane does.
 *
 * Each inference is a held-out digit drawn at random, with the model's
 * output; in a drifted run, once `onsetSamples` inferences have been
 * sampled, every further digit is rotated and noised (drift-digits.ts).
 *   agent          `createDriftMonitor` of @fleet/edge-agent (the agent's
 *                  pure drift core): Bernoulli sampling at the sample rate,
 *                  the shared signal extractor, one sketch per signal (KLL
 *                  of the manifest's sketchK, frequent items for the class),
 *                  a flush at flush.maxSamples sampled inferences;
 *   control plane  the drift core of control-plane/src/core/drift/:
 *                  `checkFlush` on the flush as a drift report (a refused
 *                  flush is counted and not stored, as in the service), the
 *                  accepted sketches stored as the store stores them
 *                  (`encodeSignals`), then `scoreWindowFlushes`, the pure
 *                  function the store runs on a closed window: merge per
 *                  cohort, score (DEFAULT_DRIFT_POLICY: a cohort is drifted
 *                  when >= 25% of its signals drift), decide the alerts.
 * The cohort is flagged when a window holding sampled shifted inputs opens
 * its alert; a drifted verdict on a window without any is a false alarm.
 *
 * Not simulated: the outbox, the broker and signatures; several devices per
 * cohort. Time is a fake clock of 1 ms per inference, so the monitor's time
 * bound (minutes) never closes a window first, and each flush is scored as
 * one control-plane window.
 *
 * The control plane's drift core is imported by path: @fleet/control-plane
 * does not export it, and the protocol package does not depend on the
 * control plane. Bench code only; nothing here ships.
 */
import { createDriftMonitor, type DriftFlushDraft, type DriftMonitor } from '@fleet/edge-agent';
import {
  createSeededRandom,
  fromBase64,
  type DriftReportMessage,
  type RandomSource,
} from '../src/index.ts';
import { DEFAULT_DRIFT_POLICY } from '../../control-plane/src/core/drift/drift-policy.ts';
import { checkFlush } from '../../control-plane/src/core/drift/flush-checks.ts';
import { encodeSignals } from '../../control-plane/src/core/drift/signal-codec.ts';
import { scoreWindowFlushes } from '../../control-plane/src/core/drift/window-scoring.ts';
import { gaussianFrom } from './drift-streams.ts';
import { digitOf, shiftDigit, type DigitShift } from './drift-digits.ts';
import type { DetectionSetup } from './drift-detection-setup.ts';

const COHORT_TAG = { cohort: 'bench' };
const COHORT = 'cohort=bench';
const BUNDLE = { name: 'mnist-classmean', version: '1.0.0', release: 1 };
const REF = { ...BUNDLE, bundleId: 'b'.repeat(64) };
const DEVICE_ID = 'bench-device';

export interface RunOptions {
  /** Share of inferences sampled (the manifest's, or a rollout's override). */
  sampleRate: number;
  /** Most windows; a drifted run stops at the first flagged window. */
  windows: number;
  /** null: a clean run. */
  drift: { onsetSamples: number; shift: DigitShift } | null;
  seed: number;
}

export interface RunResult {
  drifted: boolean;
  onsetSamples: number | null;
  rotateDegrees: number | null;
  windowsScored: number;
  /** 1-based window, holding sampled shifted inputs, that opened the cohort's alert; or null. */
  flaggedWindow: number | null;
  /** Sampled inferences from the onset to the end of the flagged window. */
  delaySampled: number | null;
  /** Inferences (sampled or not) from the onset to the end of the flagged window. */
  delayInferences: number | null;
  /** Windows without sampled shifted inputs whose verdict was drifted. */
  falseAlarmWindows: number;
  /** The drifted signals of the flagged window. */
  driftedSignals: string[];
  /** The largest serialized signal sketch of each flush, in bytes. */
  flushSignalBytes: number[];
  checkResults: Record<string, number>;
  firstRefusal?: string;
}

interface Device {
  monitor: DriftMonitor;
  drafts: DriftFlushDraft[];
  random: RandomSource;
  gaussian: () => number;
  clockMs: number;
  seq: number;
  /** Inferences run, and sampled inferences, when the shift began (null before). */
  onset: { inferences: number; sampled: number } | null;
}

function createDevice(setup: DetectionSetup, options: RunOptions): Device {
  const random = createSeededRandom(options.seed);
  const drafts: DriftFlushDraft[] = [];
  const device: Device = {
    drafts,
    random,
    gaussian: gaussianFrom(random),
    clockMs: Date.UTC(2026, 10, 27, 12),
    seq: 0,
    onset: null,
    monitor: createDriftMonitor({
      nowMs: () => device.clockMs,
      random,
      newId: () => `bench-${options.seed}-${drafts.length + 1}`,
      onFlush: (draft) => drafts.push(draft),
    }),
  };
  device.monitor.setModel({
    ref: REF,
    rolloutId: null,
    spec: setup.spec,
    pca: setup.pca,
    sampleRate: options.sampleRate,
  });
  return device;
}

/** Runs inferences until the monitor closes the next window; returns it and how many shifted rows it sampled. */
function nextFlush(setup: DetectionSetup, device: Device, options: RunOptions) {
  const wanted = device.drafts.length + 1;
  let shiftedSampled = 0;
  while (device.drafts.length < wanted) {
    const stats = device.monitor.stats();
    if (options.drift && !device.onset && stats.sampled >= options.drift.onsetSamples) {
      device.onset = { inferences: stats.inferences, sampled: stats.sampled };
    }
    const index = Math.floor(device.random() * setup.test.sampleCount);
    let input = digitOf(setup.test, index);
    let output = setup.cleanOutputs[index]!;
    if (device.onset) {
      input = shiftDigit(input, options.drift!.shift, device.gaussian);
      output = setup.model(input);
    }
    device.clockMs += 1;
    device.monitor.observe(REF, input, output, 1);
    if (device.onset && device.monitor.stats().sampled > stats.sampled) shiftedSampled++;
  }
  return { draft: device.drafts[wanted - 1]!, shiftedSampled };
}

function driftReport(draft: DriftFlushDraft, seq: number): DriftReportMessage {
  return {
    type: 'drift',
    id: draft.id,
    schemaVersion: 1,
    ts: draft.window.end,
    deviceId: DEVICE_ID,
    model: draft.model,
    seq,
    window: draft.window,
    inferences: draft.inferences,
    sampled: draft.sampled,
    signals: draft.signals,
  };
}

/** The control plane's side of one flush window: checked, stored, scored; the cohort's verdict. */
function scoreFlush(
  setup: DetectionSetup,
  device: Device,
  draft: DriftFlushDraft,
  result: RunResult,
  openAlerts: Set<string>,
): { verdict: string; opened: boolean; driftedSignals: string[] } {
  const message = driftReport(draft, device.seq);
  const checked = checkFlush(message, {
    bundle: BUNDLE,
    profile: setup.profile,
    nowMs: Date.parse(message.window.end),
    maxClockSkewMs: DEFAULT_DRIFT_POLICY.maxClockSkewMs,
  });
  const outcome = checked.ok ? 'accepted' : checked.result;
  result.checkResults[outcome] = (result.checkResults[outcome] ?? 0) + 1;
  if (!checked.ok) {
    result.firstRefusal ??= checked.reason;
    return { verdict: 'none', opened: false, driftedSignals: [] };
  }
  const record = {
    deviceId: DEVICE_ID,
    labels: COHORT_TAG,
    sampled: message.sampled,
    inferences: message.inferences,
    signals: encodeSignals(checked.sketches.map((s) => [s.name, s.bytes] as const)),
  };
  const decision = scoreWindowFlushes(
    [record],
    openAlerts,
    setup.profile,
    { ...DEFAULT_DRIFT_POLICY, random: device.random },
    () => `alert-${device.seq}`,
  );
  const window = decision.windows.find((w) => w.cohort === COHORT)!;
  for (const cleared of decision.clear) openAlerts.delete(cleared.cohort);
  const opened = decision.open.some((a) => a.cohort === COHORT);
  for (const alert of decision.open) openAlerts.add(alert.cohort);
  return { verdict: window.verdict, opened, driftedSignals: window.driftedSignals };
}

export function runStream(setup: DetectionSetup, options: RunOptions): RunResult {
  const device = createDevice(setup, options);
  const result: RunResult = {
    drifted: options.drift !== null,
    onsetSamples: options.drift?.onsetSamples ?? null,
    rotateDegrees: options.drift?.shift.rotateDegrees ?? null,
    windowsScored: 0,
    flaggedWindow: null,
    delaySampled: null,
    delayInferences: null,
    falseAlarmWindows: 0,
    driftedSignals: [],
    flushSignalBytes: [],
    checkResults: {},
  };
  const openAlerts = new Set<string>();
  const totals = { sampled: 0, inferences: 0 };
  for (let w = 1; w <= options.windows; w++) {
    device.seq = w;
    const { draft, shiftedSampled } = nextFlush(setup, device, options);
    totals.sampled += draft.sampled;
    totals.inferences += draft.inferences;
    result.flushSignalBytes.push(
      Math.max(...draft.signals.map((s) => fromBase64(s.sketch).length)),
    );
    const score = scoreFlush(setup, device, draft, result, openAlerts);
    result.windowsScored = w;
    if (score.verdict === 'drifted' && shiftedSampled === 0) result.falseAlarmWindows++;
    if (score.opened && shiftedSampled > 0) {
      result.flaggedWindow = w;
      result.delaySampled = totals.sampled - device.onset!.sampled;
      result.delayInferences = totals.inferences - device.onset!.inferences;
      result.driftedSignals = score.driftedSignals;
      break;
    }
  }
  return result;
}
