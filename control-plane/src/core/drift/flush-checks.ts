/**
 * What a verified drift flush must satisfy before it is stored: ordered,
 * named steps over the message, the registered bundle it names, that
 * bundle's drift profile and the clock. The first step that fails decides
 * the refusal (`FlushResult`); nothing is stored for a refused flush. The
 * steps before this (device known and not revoked, the device's signature,
 * the schema with its size caps, `sampled <= inferences`, `start <= end`)
 * ran in `verifyDeviceMessage`; the one after (replay of the flush id or of
 * the device's `seq`) needs the database and runs in the store.
 *
 *   1. registered      the bundle id is a registered model version      unknown_bundle
 *                      with the same name, version and release           model_mismatch
 *   2. profile         the bundle has a drift profile                    no_profile
 *   3. signal names    exactly the profile's signals, no more, no fewer  signal_mismatch
 *   4. sketches        each decodes (`deserializeSignal`, capped at
 *                      MAX_DRIFT_SIGNAL_BYTES; all of it checked)        malformed
 *   5. kinds           each sketch is of its signal's kind, and a KLL
 *                      sketch's k is not below the manifest's `sketchK`
 *                      (merging keeps the smaller k: one low-k device
 *                      would blur the whole cohort)                      signal_mismatch
 *   6. counts          no signal saw more values than `sampled`          malformed
 *   7. window          it ends at most `maxClockSkewMs` after now        bad_window
 */
import {
  MAX_DRIFT_SIGNAL_BYTES,
  deserializeSignal,
  fromBase64,
  isFleetError,
  type DriftReportMessage,
  type ModelRef,
  type SignalSketch,
} from '@fleet/protocol';
import type { DriftBaseline } from './drift-baselines.ts';

/** Every outcome of a flush, as counted in `fleet_drift_flushes_total{result}`. */
export const FLUSH_RESULTS = [
  'accepted',
  'replayed',
  'seq_reused',
  'unknown_bundle',
  'model_mismatch',
  'no_profile',
  'signal_mismatch',
  'malformed',
  'bad_window',
] as const;
export type FlushResult = (typeof FLUSH_RESULTS)[number];
export type FlushRefusal = Exclude<FlushResult, 'accepted'>;

export interface FlushContext {
  /** The registered model version of `message.model.bundleId`, or null. */
  bundle: ModelRef | null;
  profile: DriftBaseline | null;
  nowMs: number;
  maxClockSkewMs: number;
}

/** A flush that passed: its sketches decoded, and their bytes as received, in the profile's order. */
export interface CheckedFlush {
  ok: true;
  sketches: Array<{ name: string; sketch: SignalSketch; bytes: Uint8Array }>;
}

export interface RefusedFlush {
  ok: false;
  result: FlushRefusal;
  reason: string;
}

interface Work {
  message: DriftReportMessage;
  context: FlushContext;
  profile: DriftBaseline;
  sketches: CheckedFlush['sketches'];
}

type Step = (work: Work) => RefusedFlush | undefined;

const refuse = (result: FlushRefusal, reason: string): RefusedFlush => ({
  ok: false,
  result,
  reason,
});

const signalNames: Step = ({ message, profile }) => {
  const expected = profile.signals.map((s) => s.name);
  const got = new Set(message.signals.map((s) => s.name));
  const missing = expected.filter((name) => !got.has(name));
  const known = new Set(expected);
  const extra = [...got].filter((name) => !known.has(name));
  if (missing.length === 0 && extra.length === 0) return undefined;
  const list = (names: string[]) =>
    names.slice(0, 5).join(', ') + (names.length > 5 ? ', ...' : '');
  return refuse(
    'signal_mismatch',
    [
      missing.length > 0 ? `missing ${list(missing)}` : '',
      extra.length > 0 ? `not in the profile: ${list(extra)}` : '',
    ]
      .filter(Boolean)
      .join('; '),
  );
};

const sketchesDecode: Step = (work) => {
  const byName = new Map(work.message.signals.map((s) => [s.name, s.sketch]));
  for (const { name } of work.profile.signals) {
    try {
      const bytes = fromBase64(byName.get(name)!);
      const sketch = deserializeSignal(bytes, { maxBytes: MAX_DRIFT_SIGNAL_BYTES });
      work.sketches.push({ name, sketch, bytes });
    } catch (error) {
      if (!isFleetError(error)) throw error;
      return refuse('malformed', `signal ${name}: ${error.message}`);
    }
  }
  return undefined;
};

const sketchKinds: Step = ({ profile, sketches }) => {
  for (const [i, { name, sketch }] of sketches.entries()) {
    const kind = profile.signals[i]!.kind;
    if (sketch.kind !== kind) {
      return refuse(
        'signal_mismatch',
        `signal ${name} is ${kind}, the flush has a ${sketch.kind} sketch`,
      );
    }
    if (sketch.kind === 'numeric' && sketch.kll.k < profile.sketchK) {
      return refuse(
        'signal_mismatch',
        `signal ${name}: a KLL sketch of k = ${sketch.kll.k}, below the manifest's ${profile.sketchK}`,
      );
    }
  }
  return undefined;
};

const countsFit: Step = ({ message, sketches }) => {
  for (const { name, sketch } of sketches) {
    const seen = valuesSeen(sketch);
    if (seen > message.sampled) {
      return refuse(
        'malformed',
        `signal ${name} saw ${seen} values, more than the ${message.sampled} sampled`,
      );
    }
  }
  return undefined;
};

const windowSane: Step = ({ message, context }) => {
  const endMs = Date.parse(message.window.end);
  const latestMs = context.nowMs + context.maxClockSkewMs;
  if (endMs > latestMs) {
    return refuse(
      'bad_window',
      `the window ends at ${message.window.end}, more than ${context.maxClockSkewMs} ms after the control plane's clock (${new Date(context.nowMs).toISOString()})`,
    );
  }
  return undefined;
};

/** Values (missing ones included) a signal sketch has seen. */
export function valuesSeen(sketch: SignalSketch): number {
  return sketch.kind === 'numeric' ? sketch.counters.total : sketch.items.n + sketch.nullCount;
}

/** Runs steps 1-7 in order; the first refusal wins. */
export function checkFlush(
  message: DriftReportMessage,
  context: FlushContext,
): CheckedFlush | RefusedFlush {
  // 1. registered, under the same name
  const { bundle } = context;
  if (!bundle)
    return refuse('unknown_bundle', `bundle ${message.model.bundleId} is not registered`);
  const named = message.model;
  if (
    bundle.name !== named.name ||
    bundle.version !== named.version ||
    bundle.release !== named.release
  ) {
    return refuse(
      'model_mismatch',
      `the flush names ${named.name}@${named.version} (release ${named.release}); bundle ${named.bundleId} is ${bundle.name}@${bundle.version} (release ${bundle.release})`,
    );
  }
  // 2. profile
  if (!context.profile) {
    return refuse('no_profile', `${bundle.name}@${bundle.version} has no drift profile`);
  }
  const work: Work = { message, context, profile: context.profile, sketches: [] };
  // 3-7
  for (const step of [signalNames, sketchesDecode, sketchKinds, countsFit, windowSane]) {
    const refused = step(work);
    if (refused) return refused;
  }
  return { ok: true, sketches: work.sketches };
}
