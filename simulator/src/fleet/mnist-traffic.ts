/**
 * Inference traffic for a simulated fleet: real MNIST digits (the `mnist`
 * package's test split, via @fleet/bundles) sent through each agent's own
 * inference service, scored against their labels per model version. This is
 * the fleet's accuracy as an operator would measure it in the field.
 */
import type { EvalData } from '@fleet/bundles';
import { shiftDigits, type DigitShift } from './digit-shift.ts';
import type { SimAgent } from './sim-fleet.ts';

export interface TrafficOptions {
  /** Digits each agent infers per round. */
  perAgent: number;
  /** Rows per inference request. */
  batch?: number;
  /** Offset into the data, so successive rounds see different digits. */
  offset?: number;
  /** The input shift an agent's digits undergo (a drifted cohort), or null for none. */
  shift?: (agent: SimAgent) => DigitShift | null;
  /** Uniform randomness for the shift's noise (seeded in tests). */
  random?: () => number;
  /**
   * Whether an agent's users label its answers afterwards: each inferred row
   * then gets its true digit through the agent's feedback API (delayed
   * labels), so the agent builds labelled samples for federated rounds.
   */
  label?: (agent: SimAgent) => boolean;
}

export interface AccuracyByModel {
  [version: string]: { correct: number; total: number; errors: number; meanConfidence: number };
}

/** Sends one round of digits through every agent that serves a model; returns accuracy per model version. */
export async function runTraffic(
  agents: readonly SimAgent[],
  data: EvalData,
  options: TrafficOptions,
): Promise<AccuracyByModel> {
  const batch = options.batch ?? 8;
  const byModel: AccuracyByModel = {};
  const confidenceSum: Record<string, number> = {};
  let cursor = options.offset ?? 0;
  await Promise.all(
    agents.map(async (sim) => {
      for (let sent = 0; sent < options.perAgent; sent += batch) {
        const rows = Math.min(batch, options.perAgent - sent);
        const start = cursor;
        cursor = (cursor + rows) % (data.sampleCount - rows);
        const digits = data.features.subarray(
          start * data.featureCount,
          (start + rows) * data.featureCount,
        );
        const shift = options.shift?.(sim) ?? null;
        const input = shift
          ? shiftDigits(digits, shift, options.random ?? Math.random)
          : new Float32Array(digits);
        try {
          const result = await sim.host.inference.infer(input, { batch: rows });
          if (data.labels && options.label?.(sim)) {
            await sim.agent.feedbackMany(
              result.ids.map((id, i) => ({ id, label: data.labels![start + i]! })),
            );
          }
          const key = result.model.version;
          const entry = (byModel[key] ??= { correct: 0, total: 0, errors: 0, meanConfidence: 0 });
          result.predictions.forEach((p: number, i: number) => {
            entry.total += 1;
            if (data.labels && p === data.labels[start + i]) entry.correct += 1;
            confidenceSum[key] = (confidenceSum[key] ?? 0) + result.confidences[i]!;
          });
        } catch {
          const entry = (byModel['none'] ??= {
            correct: 0,
            total: 0,
            errors: 0,
            meanConfidence: 0,
          });
          entry.errors += rows;
        }
      }
    }),
  );
  for (const [key, entry] of Object.entries(byModel)) {
    entry.meanConfidence = entry.total ? (confidenceSum[key] ?? 0) / entry.total : 0;
  }
  return byModel;
}

/** Keeps traffic flowing in the background (so probation has something to judge) until stopped. */
export function startBackgroundTraffic(
  agents: () => readonly SimAgent[],
  data: EvalData,
  options: TrafficOptions & { intervalMs: number },
): { stop(): Promise<void>; totals: AccuracyByModel } {
  const totals: AccuracyByModel = {};
  let running = true;
  let round = 0;
  const loop = (async () => {
    while (running) {
      const result = await runTraffic(agents(), data, {
        ...options,
        offset: (round++ * 97) % 1000,
      });
      for (const [key, r] of Object.entries(result)) {
        const t = (totals[key] ??= { correct: 0, total: 0, errors: 0, meanConfidence: 0 });
        const before = t.total;
        t.correct += r.correct;
        t.total += r.total;
        t.errors += r.errors;
        t.meanConfidence = t.total
          ? (t.meanConfidence * before + r.meanConfidence * r.total) / t.total
          : 0;
      }
      await new Promise((resolve) => setTimeout(resolve, options.intervalMs));
    }
  })();
  return {
    totals,
    async stop() {
      running = false;
      await loop;
    },
  };
}
