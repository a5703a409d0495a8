/**
 * Test fixtures of the federated-learning messages: one valid `fl-train`,
 * `fl-update` (ok) and `fl-update-part`, all for device `dev-a`, round
 * ROUND_ID, base bundle BUNDLE_ID. Each call returns a fresh copy.
 */
import type { FlTrainMessage } from '../fl-train.ts';
import type { FlUpdateMessage, FlUpdatePartMessage } from '../fl-update.ts';
import { BUNDLE_ID, TS } from './examples.ts';

export const ROUND_ID = 'round-0001-abcdef';
export const UPDATE_ID = '6d1c2d4b-5e6f-4a7b-8c9d-0e1f2a3b4c5d';
// A function, not a constant: examples.ts imports this module, so BUNDLE_ID is read at call time.
const model = () => ({ name: 'mnist-2nn', version: '1.2.0', release: 5, bundleId: BUNDLE_ID });

export function flTrain(): FlTrainMessage {
  return {
    type: 'fl-train',
    id: 'fl-train-0001',
    schemaVersion: 1,
    ts: TS,
    roundId: ROUND_ID,
    model: model(),
    config: {
      epochs: 1,
      batchSize: 10,
      learningRate: 0.05,
      proxMu: 0,
      clipNorm: 5,
      minSamples: 20,
      maxSamples: 600,
      encoding: 'int8',
      seed: 42,
    },
    deadline: '2026-11-26T12:05:00Z',
  };
}

/** An ok update of 150,000 bytes in 3 parts. */
export function flUpdate(deviceId = 'dev-a'): FlUpdateMessage {
  return {
    type: 'fl-update',
    id: UPDATE_ID,
    schemaVersion: 1,
    ts: TS,
    deviceId,
    roundId: ROUND_ID,
    model: model(),
    status: 'ok',
    sampleCount: 240,
    metrics: {
      lossBefore: 0.61,
      lossAfter: 0.42,
      accuracyBefore: 0.81,
      accuracyAfter: 0.88,
      trainMs: 1250,
    },
    update: {
      encoding: 'int8',
      sizeBytes: 150_000,
      sha256: 'e'.repeat(64),
      partCount: 3,
      normBeforeClip: 7.5,
      clipped: true,
    },
  };
}

/** Part 1 of 3 of UPDATE_ID: the bytes 1, 2, 3. */
export function flUpdatePart(deviceId = 'dev-a'): FlUpdatePartMessage {
  return {
    type: 'fl-update-part',
    id: 'fl-part-0001',
    schemaVersion: 1,
    ts: TS,
    deviceId,
    roundId: ROUND_ID,
    updateId: UPDATE_ID,
    index: 1,
    count: 3,
    data: 'AQID',
  };
}
