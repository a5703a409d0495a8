/** Builders for round-machine tests: a started round and well-formed update events. */
import { buildRoundConfig, type RoundConfig } from '../round-config.ts';
import { createRound, stepRound } from '../round-machine.ts';
import type { CandidateDevice } from '../round-selection.ts';
import type { RoundSnapshot, RoundStep, UpdateReceived } from '../round-types.ts';

export const T0 = Date.UTC(2025, 0, 1);
export const ROUND = 'round-1';
export const BASE = 'bundle-base';

export function devices(n: number): CandidateDevice[] {
  return Array.from({ length: n }, (_, i) => ({
    deviceId: `dev-${String(i).padStart(2, '0')}`,
    online: true,
    labelledSamples: 100,
    matchesTarget: true,
  }));
}

/** A round over `n` devices, started at T0 (fraction 1 unless overridden). */
export function startedRound(
  n: number,
  config: Partial<RoundConfig> = {},
  promotion: RoundSnapshot['promotion'] = { riskTier: 'low', autoPromote: true },
): RoundStep {
  const round = createRound({
    roundId: ROUND,
    baseBundleId: BASE,
    config: buildRoundConfig({
      fraction: 1,
      minClients: 2,
      clipNorm: 1,
      deadlineMs: 60_000,
      ...config,
    }),
    promotion,
    nowMs: T0,
  });
  return stepRound(round, { type: 'start', devices: devices(n) }, T0);
}

let counter = 0;
export function update(deviceId: string, over: Partial<UpdateReceived> = {}): UpdateReceived {
  counter++;
  return {
    type: 'update-received',
    updateId: `00000000-0000-4000-8000-${String(counter).padStart(12, '0')}`,
    deviceId,
    roundId: ROUND,
    baseBundleId: BASE,
    status: 'ok',
    sampleCount: 50,
    decoded: { norm: 0.5, finite: true, quantizationErrorBound: 0.01 },
    ...over,
  };
}
