/**
 * The drift monitor of the serving model (ARCHITECTURE "Drift"): it samples
 * inferences at the model's rate, computes their signals with protocol's
 * extractor (the very code the bundle's baselines were built with), feeds
 * one sketch per signal, and closes the window into a flush draft when it
 * holds `flush.maxSamples` samples or `flush.maxIntervalMs` has passed since
 * it started (checked on every observation and on `tick`).
 *
 * Pure: time, randomness and ids are injected, and closed windows go to the
 * `onFlush` callback (the agent writes them to its outbox); nothing here
 * does I/O.
 *
 * - One model at a time. `setModel` closes the current window (what it holds
 *   is flushed for the model that produced it) and starts a fresh one;
 *   `null` (no model, or one without a drift spec) monitors nothing. Setting
 *   the model already monitored (same bundle, rollout and rate) keeps the
 *   window.
 * - Observations are by model: rows answered by another model than the
 *   monitored one (a request in flight across a switch) are ignored.
 * - Sampling is a Bernoulli(rate) draw per row, done as geometric skips: the
 *   number of rows to the next sampled one is drawn once per sample, so an
 *   unsampled batch costs a subtraction, whatever its size.
 * - A window that saw no inference is not flushed: at its time bound it
 *   just starts again. One that saw inferences but sampled none is flushed
 *   (its counts are information); its sketches are empty.
 *
 * @example
 *   const monitor = createDriftMonitor({ nowMs, random, newId, onFlush: (d) => outbox.append(d) });
 *   monitor.setModel({ ref, rolloutId, spec: manifest.drift, pca: profile.pca, sampleRate: 0.1 });
 *   monitor.observe(ref, inputs, outputs, batch); // after each inference
 *   monitor.tick(); // from a timer
 */
import {
  createCategoricalSignal,
  createNumericSignal,
  createSignalExtractor,
  driftKindOf,
  serializeSignal,
  toBase64,
  updateSignal,
  type BundleModelRef,
  type ManifestDrift,
  type PcaBasis,
  type RandomSource,
  type SignalExtractor,
  type SignalSketch,
} from '@fleet/protocol';
import type { DriftFlushDraft } from './drift-flush.ts';

/** What the monitor needs to know about the serving model. */
export interface MonitoredModel {
  ref: BundleModelRef;
  /** The rollout that installed it, or null. */
  rolloutId: string | null;
  /** The manifest's signed `drift` field. */
  spec: ManifestDrift;
  /** The drift profile's PCA basis (null when no signal uses one). */
  pca: PcaBasis | null;
  /** Share of inferences sampled, in (0, 1]: the rollout's override, else the manifest's. */
  sampleRate: number;
}

export interface DriftMonitorOptions {
  /** Wall clock, epoch ms: window bounds and the time bound. */
  nowMs: () => number;
  /** Uniform in [0, 1): sampling and the KLL sketches' compactions. */
  random: RandomSource;
  /** A fresh flush id (a UUID). */
  newId: () => string;
  /** Receives every closed window, in order. */
  onFlush: (draft: DriftFlushDraft) => void;
}

export interface DriftMonitorStats {
  /** Inferences (rows) of the monitored model seen since the monitor was made. */
  inferences: number;
  sampled: number;
  /** Sampled rows whose signals could not be computed (counted, not sampled). */
  extractErrors: number;
  /** Windows closed into drafts. */
  flushes: number;
}

export interface DriftMonitor {
  /** Closes the current window (flushing what it holds) and monitors `model` from now; null monitors nothing. */
  setModel(model: MonitoredModel | null): void;
  /** The monitored model, or null. */
  model(): BundleModelRef | null;
  /**
   * One successful inference of `ref`: `batch` input rows and their output
   * rows, flat and row-major. The arrays are read now and not kept.
   */
  observe(ref: BundleModelRef, inputs: Float32Array, outputs: Float32Array, batch: number): void;
  /** Applies the time bound (call it from a timer). */
  tick(): void;
  stats(): DriftMonitorStats;
}

interface Window {
  startMs: number;
  inferences: number;
  sampled: number;
  sketches: SignalSketch[];
}

interface Monitoring {
  model: MonitoredModel;
  extract: SignalExtractor;
  /** ln(1 - rate), for the geometric skips; -Infinity when every row is sampled. */
  logMiss: number;
  window: Window;
  /** Rows still to pass before the next sampled one. */
  skip: number;
}

/** Serving the same bundle again, for the same rollout at the same rate, keeps the window. */
function sameMonitoring(a: MonitoredModel, b: MonitoredModel): boolean {
  return (
    a.ref.bundleId === b.ref.bundleId &&
    a.rolloutId === b.rolloutId &&
    a.sampleRate === b.sampleRate
  );
}

export function createDriftMonitor(options: DriftMonitorOptions): DriftMonitor {
  const { nowMs, random, newId, onFlush } = options;
  const totals: DriftMonitorStats = { inferences: 0, sampled: 0, extractErrors: 0, flushes: 0 };
  let current: Monitoring | null = null;

  const newWindow = (m: MonitoredModel, startMs: number): Window => ({
    startMs,
    inferences: 0,
    sampled: 0,
    sketches: m.spec.signals.map((signal) =>
      driftKindOf(signal.source) === 'numeric'
        ? createNumericSignal({ k: m.spec.sketchK, random })
        : createCategoricalSignal(),
    ),
  });

  /** Rows to pass before the next sampled one: Geometric(rate) on {0, 1, ...}. */
  function drawSkip(logMiss: number): number {
    if (logMiss === -Infinity) return 0;
    if (logMiss === 0) return Infinity; // rate 0 (never valid on the wire): nothing is sampled
    return Math.floor(Math.log(1 - random()) / logMiss);
  }

  /** Ends the window at `endMs`: flushed when it saw any inference; a new one starts. */
  function close(m: Monitoring, nowEndMs: number): void {
    const w = m.window;
    // A wall clock stepped back must not make a window end before it starts.
    const endMs = Math.max(nowEndMs, w.startMs);
    m.window = newWindow(m.model, endMs);
    if (w.inferences === 0) return;
    totals.flushes++;
    onFlush({
      id: newId(),
      model: m.model.ref,
      rolloutId: m.model.rolloutId,
      window: { start: new Date(w.startMs).toISOString(), end: new Date(endMs).toISOString() },
      inferences: w.inferences,
      sampled: w.sampled,
      signals: m.model.spec.signals.map((signal, i) => ({
        name: signal.name,
        sketch: toBase64(serializeSignal(w.sketches[i]!)),
      })),
    });
  }

  function applyTimeBound(m: Monitoring, now: number): void {
    if (now - m.window.startMs >= m.model.spec.flush.maxIntervalMs) close(m, now);
  }

  function sample(m: Monitoring, input: Float32Array, output: Float32Array): void {
    let values: Array<number | string>;
    try {
      values = m.extract(input, output);
    } catch {
      totals.extractErrors++;
      return;
    }
    const { sketches } = m.window;
    for (let i = 0; i < values.length; i++) updateSignal(sketches[i]!, values[i]);
    m.window.sampled++;
    totals.sampled++;
  }

  return {
    setModel(model) {
      if (current && model && sameMonitoring(current.model, model)) return;
      const now = nowMs();
      if (current) close(current, now);
      current = null;
      if (!model) return;
      const rate = Math.min(1, Math.max(0, model.sampleRate));
      const logMiss = rate >= 1 ? -Infinity : Math.log(1 - rate);
      current = {
        model,
        extract: createSignalExtractor(model.spec, model.pca),
        logMiss,
        window: newWindow(model, now),
        skip: drawSkip(logMiss),
      };
    },
    model: () => current?.model.ref ?? null,
    observe(ref, inputs, outputs, batch) {
      const m = current;
      if (m === null || ref.bundleId !== m.model.ref.bundleId || batch <= 0) return;
      applyTimeBound(m, nowMs());
      totals.inferences += batch;
      let row = 0;
      while (row < batch) {
        const rest = batch - row;
        if (m.skip >= rest) {
          m.skip -= rest;
          m.window.inferences += rest;
          return;
        }
        row += m.skip;
        m.window.inferences += m.skip + 1;
        const inWidth = inputs.length / batch;
        const outWidth = outputs.length / batch;
        sample(
          m,
          inputs.subarray(row * inWidth, (row + 1) * inWidth),
          outputs.subarray(row * outWidth, (row + 1) * outWidth),
        );
        m.skip = drawSkip(m.logMiss);
        row++;
        if (m.window.sampled >= m.model.spec.flush.maxSamples) close(m, nowMs());
      }
    },
    tick() {
      if (current) applyTimeBound(current, nowMs());
    },
    stats: () => ({ ...totals }),
  };
}
