/**
 * Which devices a round trains on (the paper's "select a random set of
 * max(C K, 1) clients", with Fleet's eligibility and minimum):
 *
 *   eligible  online, at least `minSamples` labelled samples, matching the target.
 *   count     max(minClients, ceil(fraction * eligible)), at most the eligible count.
 *   which     the first `count` in a seeded order (hash of seed and device id, as
 *             rollout waves are chosen: wave-plan.ts `waveOrder`), so the same
 *             seed over the same devices always picks the same ones, whatever
 *             order the devices come in, and each round's seed picks others.
 */
import { waveOrder } from '../rollouts/wave-plan.ts';

/** What the control plane knows of one candidate device when a round starts. */
export interface CandidateDevice {
  deviceId: string;
  online: boolean;
  labelledSamples: number;
  /** It matches the round's target (model and selector). */
  matchesTarget: boolean;
}

export type SelectionResult =
  | { ok: true; eligible: string[]; selected: string[] }
  | { ok: false; eligible: string[]; reason: string };

// 0.1 * 30 must select 3, not 4, even though float maths may land a hair above.
const ROUNDING_SLACK = 1e-9;

/** How many of `eligibleCount` devices a round selects. */
export function selectionSize(fraction: number, minClients: number, eligibleCount: number): number {
  const share = Math.ceil(fraction * eligibleCount - ROUNDING_SLACK);
  return Math.min(eligibleCount, Math.max(minClients, share));
}

/**
 * The round's eligible and selected devices, or why it cannot run (fewer
 * eligible devices than `minClients`). A repeated device id counts once (its first entry).
 */
export function selectDevices(
  devices: readonly CandidateDevice[],
  options: { fraction: number; minClients: number; minSamples: number; seed: string },
): SelectionResult {
  const seen = new Set<string>();
  const eligible: string[] = [];
  const counts = { offline: 0, fewSamples: 0, offTarget: 0 };
  for (const d of devices) {
    if (seen.has(d.deviceId)) continue;
    seen.add(d.deviceId);
    if (!d.matchesTarget) counts.offTarget++;
    else if (!d.online) counts.offline++;
    else if (!(d.labelledSamples >= options.minSamples)) counts.fewSamples++;
    else eligible.push(d.deviceId);
  }
  if (eligible.length < options.minClients) {
    return {
      ok: false,
      eligible,
      reason:
        `${eligible.length} eligible device(s), fewer than minClients ${options.minClients} ` +
        `(of ${seen.size}: ${counts.offTarget} off target, ${counts.offline} offline, ` +
        `${counts.fewSamples} under ${options.minSamples} labelled samples)`,
    };
  }
  const count = selectionSize(options.fraction, options.minClients, eligible.length);
  return { ok: true, eligible, selected: waveOrder(eligible, options.seed).slice(0, count) };
}
