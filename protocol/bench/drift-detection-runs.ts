/**
 * The drift bench's detection figures over many seeded runs (Part B): clean
 * runs (no shift in any window) and drifted runs (the shift starts after a
 * random number of sampled inferences within the second flush window, so
 * the first window is clean and the second mixed), summarised as false
 * alarms, detection delays in sampled inferences, and flush sizes.
 */
import { runStream, type RunResult } from './drift-detection.ts';
import type { DetectionSetup } from './drift-detection-setup.ts';
import { median, round } from './drift-sketch-figures.ts';
import { createSeededRandom } from '../src/index.ts';

export interface DetectionOptions {
  runs: number;
  /** Windows per clean run. */
  cleanWindows: number;
  /** Windows a drifted run may take after the onset window before it counts as missed. */
  extraWindows: number;
  sampleRate: number;
  /** Rotation magnitude, uniform in [min, max] degrees, either direction. */
  rotateDegrees: [number, number];
  noiseSigma: number;
  seed: number;
  onProgress?: (line: string) => void;
}

export interface DetectionFigures {
  clean: { runs: number; windows: number; falseAlarmRuns: number; falseAlarmWindows: number };
  drifted: {
    runs: number;
    detected: number;
    /** Runs flagged at most 2 x flushSize sampled inferences after the onset. */
    withinTwoWindows: number;
    /** Clean first windows of the drifted runs that were flagged. */
    preOnsetFalseAlarmWindows: number;
    delaySampled: { min: number; median: number; mean: number; max: number } | null;
    /** Largest delay in inferences (sampled or not). */
    maxDelayInferences: number | null;
    /** Flagged window counted from the onset's window (1 = the window the shift began in). */
    flaggedWindowAfterOnset: Record<string, number>;
    /** How often each signal was among the drifted ones of the flagging window. */
    signalsDrifted: Record<string, number>;
  };
  /** The largest signal sketch of each flush, over every flush of every run. */
  flushSignalBytes: { flushes: number; max: number; median: number };
  flushChecks: { results: Record<string, number>; firstRefusal: string | null };
}

export function runDetection(setup: DetectionSetup, options: DetectionOptions): DetectionFigures {
  const pick = createSeededRandom(options.seed);
  const flushSize = setup.spec.flush.maxSamples;
  const clean: RunResult[] = [];
  const drifted: RunResult[] = [];
  for (let run = 0; run < options.runs; run++) {
    clean.push(
      runStream(setup, {
        sampleRate: options.sampleRate,
        windows: options.cleanWindows,
        drift: null,
        seed: options.seed + 2 * run + 1,
      }),
    );
    const [low, high] = options.rotateDegrees;
    const magnitude = low + (high - low) * pick();
    const onsetSamples = flushSize + Math.floor(pick() * flushSize);
    drifted.push(
      runStream(setup, {
        sampleRate: options.sampleRate,
        windows: 2 + options.extraWindows,
        drift: {
          onsetSamples,
          shift: {
            rotateDegrees: pick() < 0.5 ? -magnitude : magnitude,
            noiseSigma: options.noiseSigma,
          },
        },
        seed: options.seed + 2 * run + 2,
      }),
    );
    if ((run + 1) % 10 === 0 || run + 1 === options.runs) {
      options.onProgress?.(`detection: ${run + 1}/${options.runs} clean and drifted runs`);
    }
  }
  return summarize(clean, drifted, flushSize);
}

function summarize(clean: RunResult[], drifted: RunResult[], flushSize: number): DetectionFigures {
  const delays = drifted.flatMap((r) => (r.delaySampled === null ? [] : [r.delaySampled]));
  const afterOnset: Record<string, number> = {};
  const signals: Record<string, number> = {};
  for (const r of drifted) {
    const key =
      r.flaggedWindow === null ? 'missed' : String(r.flaggedWindow - onsetWindow(r, flushSize) + 1);
    afterOnset[key] = (afterOnset[key] ?? 0) + 1;
    for (const name of r.driftedSignals) signals[name] = (signals[name] ?? 0) + 1;
  }
  const all = [...clean, ...drifted];
  const bytes = all.flatMap((r) => r.flushSignalBytes);
  const results: Record<string, number> = {};
  for (const r of all) {
    for (const [k, v] of Object.entries(r.checkResults)) results[k] = (results[k] ?? 0) + v;
  }
  return {
    clean: {
      runs: clean.length,
      windows: clean.reduce((s, r) => s + r.windowsScored, 0),
      falseAlarmRuns: clean.filter((r) => r.falseAlarmWindows > 0).length,
      falseAlarmWindows: clean.reduce((s, r) => s + r.falseAlarmWindows, 0),
    },
    drifted: {
      runs: drifted.length,
      detected: delays.length,
      withinTwoWindows: delays.filter((d) => d <= 2 * flushSize).length,
      preOnsetFalseAlarmWindows: drifted.reduce((s, r) => s + r.falseAlarmWindows, 0),
      delaySampled:
        delays.length === 0
          ? null
          : {
              min: Math.min(...delays),
              median: median(delays),
              mean: round(delays.reduce((s, d) => s + d, 0) / delays.length, 1),
              max: Math.max(...delays),
            },
      maxDelayInferences:
        delays.length === 0 ? null : Math.max(...drifted.map((r) => r.delayInferences ?? 0)),
      flaggedWindowAfterOnset: afterOnset,
      signalsDrifted: signals,
    },
    flushSignalBytes: { flushes: bytes.length, max: Math.max(...bytes), median: median(bytes) },
    flushChecks: { results, firstRefusal: all.find((r) => r.firstRefusal)?.firstRefusal ?? null },
  };
}

/** The 1-based window holding the run's first shifted inference. */
function onsetWindow(result: RunResult, flushSize: number): number {
  return Math.floor(result.onsetSamples! / flushSize) + 1;
}
