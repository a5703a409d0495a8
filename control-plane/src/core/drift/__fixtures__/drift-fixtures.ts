/**
 * Synthetic drift data built with the real sketches: a profile of six
 * numeric inputs, a confidence and a predicted class, its baselines from
 * seeded "training" traffic, and device flushes of seeded traffic that is
 * either like the training data or shifted (inputs moved by `shift`
 * standard deviations, confidence lower, classes skewed).
 */
import {
  createCategoricalSignal,
  createNumericSignal,
  createSeededRandom,
  serializeSignal,
  toBase64,
  updateSignal,
  type DriftReportMessage,
  type RandomSource,
  type SignalSketch,
} from '@fleet/protocol';
import type { DriftBaseline } from '../drift-baselines.ts';
import { encodeSignals } from '../signal-codec.ts';
import type { FlushRecord } from '../window-scoring.ts';

export const SIGNALS = [
  ...Array.from({ length: 6 }, (_, i) => ({ name: `input.${i}`, kind: 'numeric' as const })),
  { name: 'confidence', kind: 'numeric' as const },
  { name: 'predicted_class', kind: 'categorical' as const },
];

/** Devices sketch with this k; the baselines with 200 (as the bundle factory does). */
export const DEVICE_K = 100;

export interface Traffic {
  /** Input shift in standard deviations (0: like training). */
  shift: number;
}

export const CLEAN: Traffic = { shift: 0 };
export const SHIFTED: Traffic = { shift: 1 };

function normal(random: RandomSource): number {
  const u = 1 - random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/** One sampled inference's signal values, in SIGNALS order. */
export function inference(random: RandomSource, traffic: Traffic): Array<number | string> {
  const inputs = Array.from({ length: 6 }, () => traffic.shift + normal(random));
  const confidence = 1 / (1 + Math.exp(-(2.5 - traffic.shift + 0.5 * normal(random))));
  const skew = traffic.shift > 0 ? 0.5 : 0;
  const predicted = random() < skew ? 7 : Math.floor(random() * 10);
  return [...inputs, confidence, predicted];
}

function emptySketches(k: number): SignalSketch[] {
  return SIGNALS.map((s) =>
    s.kind === 'numeric' ? createNumericSignal({ k }) : createCategoricalSignal(),
  );
}

/** Sketches of `count` inferences of `traffic`, by signal name. */
export function sketchTraffic(
  count: number,
  seed: number,
  traffic: Traffic,
  k = DEVICE_K,
): Map<string, SignalSketch> {
  const random = createSeededRandom(seed);
  const sketches = emptySketches(k);
  for (let n = 0; n < count; n++) {
    inference(random, traffic).forEach((value, i) => updateSignal(sketches[i]!, value));
  }
  return new Map(SIGNALS.map((s, i) => [s.name, sketches[i]!]));
}

/** The profile: baselines (k = 200) of 20,000 clean inferences. */
export function testProfile(seed = 1): DriftBaseline {
  return {
    signals: SIGNALS,
    baselines: sketchTraffic(20_000, seed, CLEAN, 200),
    sketchK: DEVICE_K,
  };
}

/** A stored flush of `count` inferences of `traffic` from `deviceId` with `tags`. */
export function flushRecord(
  deviceId: string,
  tags: Record<string, string>,
  count: number,
  seed: number,
  traffic: Traffic,
): FlushRecord {
  const sketches = sketchTraffic(count, seed, traffic);
  return {
    deviceId,
    labels: tags,
    sampled: count,
    inferences: count * 10,
    signals: encodeSignals([...sketches].map(([name, s]) => [name, serializeSignal(s)] as const)),
  };
}

export const BUNDLE_ID = 'd'.repeat(64);
export const MODEL = { name: 'mnist-2nn', version: '1.2.0', release: 5, bundleId: BUNDLE_ID };

/** A drift message carrying `sketches`, as an agent would send it (before signing). */
export function driftMessage(options: {
  deviceId: string;
  seq: number;
  id?: string;
  end: string;
  sketches: Map<string, SignalSketch>;
  sampled: number;
  model?: DriftReportMessage['model'];
}): DriftReportMessage {
  const endMs = Date.parse(options.end);
  return {
    type: 'drift',
    id: options.id ?? `flush-${options.deviceId}-${options.seq}`,
    schemaVersion: 1,
    ts: options.end,
    deviceId: options.deviceId,
    model: options.model ?? MODEL,
    seq: options.seq,
    window: { start: new Date(endMs - 30_000).toISOString(), end: options.end },
    inferences: options.sampled * 10,
    sampled: options.sampled,
    signals: [...options.sketches].map(([name, s]) => ({
      name,
      sketch: toBase64(serializeSignal(s)),
    })),
  };
}
