/**
 * Which devices go in which wave.
 *
 *   - Sizes are cumulative: wave i holds `waveSizes(...)[i]` devices in all,
 *     counting the earlier waves. A percentage rounds up (1 % of 30 devices is
 *     one device, not zero), a count is capped at the target, and sizes never
 *     shrink from one wave to the next (a count that leads a small percentage,
 *     `5,1%,all` over 100 devices, makes the 1 % wave add nobody).
 *   - Order: devices are ranked by a hash of the rollout id and the device id,
 *     then by id. That is deterministic (the same rollout always picks the same
 *     canaries, whatever order the database returns devices in) but not
 *     alphabetical, so a canary is not "every device whose id starts with a",
 *     often one site, and each rollout picks different canaries.
 *   - Late joiners (devices enrolled or re-tagged into the target after the
 *     start) join the wave being deployed, so they are deployed at once while
 *     the rollout runs; after completion, in the last wave, deployed at once
 *     too; an aborted rollout takes nobody (`joiningWave`).
 */
import type { RolloutStatus, WaveSize } from './rollout-types.ts';

// Float products such as 1.1 * 3000 / 100 = 33.00000000000001 must not round up to 34.
const ROUNDING_SLACK = 1e-9;

/**
 * Cumulative device counts per wave for a target of `targetCount` devices.
 *
 * @example
 *   waveSizes([{ percent: 1 }, { percent: 10 }, { percent: 100 }], 250) // [3, 25, 250]
 */
export function waveSizes(waves: readonly WaveSize[], targetCount: number): number[] {
  let previous = 0;
  return waves.map((wave) => {
    const size = Math.max(previous, Math.min(targetCount, ownSize(wave, targetCount)));
    previous = size;
    return size;
  });
}

function ownSize(wave: WaveSize, targetCount: number): number {
  if ('count' in wave) return wave.count;
  if (targetCount === 0) return 0;
  return Math.max(1, Math.ceil((wave.percent * targetCount) / 100 - ROUNDING_SLACK));
}

/** FNV-1a, 32 bits: a stable, dependency-free hash for ranking (not for security). */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** The ids, de-duplicated, in the order waves take them for the rollout `seed` (its id). */
export function waveOrder(deviceIds: Iterable<string>, seed: string): string[] {
  const ranked = [...new Set(deviceIds)].map((id) => ({ id, rank: fnv1a(`${seed}\u0000${id}`) }));
  ranked.sort((a, b) => a.rank - b.rank || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return ranked.map((entry) => entry.id);
}

/**
 * Each device's wave (index into `waves`): the first `sizes[0]` devices in
 * `waveOrder` go in wave 0, the next ones up to `sizes[1]` in wave 1, and so on.
 */
export function assignWaves(
  deviceIds: Iterable<string>,
  waves: readonly WaveSize[],
  seed: string,
): Map<string, number> {
  const ordered = waveOrder(deviceIds, seed);
  const sizes = waveSizes(waves, ordered.length);
  const assigned = new Map<string, number>();
  let wave = 0;
  for (const [position, id] of ordered.entries()) {
    while (wave < sizes.length - 1 && position >= sizes[wave]!) wave++;
    assigned.set(id, wave);
  }
  return assigned;
}

/**
 * The wave a device joining now goes in: the current one while the rollout
 * runs or is paused (a paused rollout deploys it on resume), the last one
 * after completion (deployed at once), none once aborted.
 */
export function joiningWave(rollout: {
  status: RolloutStatus;
  currentWave: number;
  policy: { waves: readonly WaveSize[] };
}): number | null {
  switch (rollout.status) {
    case 'running':
    case 'paused':
      return rollout.currentWave;
    case 'completed':
      return rollout.policy.waves.length - 1;
    case 'aborted':
      return null;
  }
}
