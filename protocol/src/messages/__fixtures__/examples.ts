/**
 * Test fixtures: one valid example of every control message, and a signed
 * manifest / rollback envelope to embed in them. Each call returns a fresh copy
 * that a test may mutate.
 */
import { toBase64, utf8 } from '../../encoding/bytes.ts';
import { canonicalJson } from '../../encoding/json.ts';
import { signEnvelope, type Signer } from '../../crypto/envelope.ts';
import { MANIFEST_PAYLOAD_TYPE } from '../../bundle/manifest.ts';
import { ROLLBACK_PAYLOAD_TYPE, type RollbackInstruction } from '../rollback-instruction.ts';
import type { CancelMessage, DeployMessage, RollbackMessage } from '../commands.ts';
import type {
  BlocksRequestMessage,
  HealthMessage,
  ProgressMessage,
  StateMessage,
} from '../device-messages.ts';
import type { ControlMessage } from '../control-message.ts';
import type { DriftReportMessage } from '../drift-report.ts';
import { flTrain, flUpdate, flUpdatePart } from './fl-examples.ts';
import {
  createCategoricalSignal,
  createNumericSignal,
  serializeSignal,
  updateSignal,
} from '../../drift/signal-sketch.ts';

export const BUNDLE_ID = 'a'.repeat(64);
export const OLD_BUNDLE_ID = 'b'.repeat(64);
export const BLOCK_ROOT = 'c'.repeat(64);
export const TS = '2026-11-26T12:00:00Z';

/** An envelope shaped like a signed manifest (the schemas do not verify it). */
export function manifestEnvelope(signer: Signer) {
  return signEnvelope(MANIFEST_PAYLOAD_TYPE, utf8('{"type":"fleet-bundle"}'), [signer]);
}

export function rollbackInstruction(): RollbackInstruction {
  return {
    type: 'fleet-rollback',
    schemaVersion: 1,
    modelName: 'mnist-2nn',
    toRelease: 4,
    toBundleId: OLD_BUNDLE_ID,
    fromReleaseAtMost: 5,
    devices: ['dev-a', 'dev-b'],
    hardware: ['rpi4'],
    issuedAt: TS,
    expires: '2026-12-26T12:00:00Z',
  };
}

export function rollbackAuthorization(signer: Signer) {
  return signEnvelope(ROLLBACK_PAYLOAD_TYPE, canonicalJson(rollbackInstruction()), [signer]);
}

export function deploy(signer: Signer): DeployMessage {
  return {
    type: 'deploy',
    id: '01JDQ6ZJ4W8W6J0Q3X9G7Y2K1M',
    schemaVersion: 1,
    ts: TS,
    rolloutId: 'rollout-canary-01',
    bundle: {
      bundleId: BUNDLE_ID,
      sizeBytes: 150_000,
      blockSizeBytes: 65_536,
      blockCount: 3,
      blockRoot: BLOCK_ROOT,
      manifestEnvelope: manifestEnvelope(signer) as DeployMessage['bundle']['manifestEnvelope'],
    },
    model: { name: 'mnist-2nn', version: '1.2.0', release: 5 },
    deadline: '2026-11-26T13:00:00Z',
    samplingRate: 0.05,
    probation: {
      durationMs: 600_000,
      maxErrorRate: 0.02,
      maxLatencyP95Ms: 40,
      minMeanConfidence: 0.7,
    },
  };
}

export function rollback(signer: Signer): RollbackMessage {
  return {
    type: 'rollback',
    id: 'b3f1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d',
    schemaVersion: 1,
    ts: TS,
    rolloutId: 'rollout-canary-01',
    target: { name: 'mnist-2nn', version: '1.1.0', release: 4, bundleId: OLD_BUNDLE_ID },
    reason: 'canary error rate 12% above the 2% gate',
    authorization: rollbackAuthorization(signer) as RollbackMessage['authorization'],
  };
}

export function cancel(): CancelMessage {
  return {
    type: 'cancel',
    id: 'cancel-0001',
    schemaVersion: 1,
    ts: TS,
    rolloutId: 'rollout-canary-01',
    reason: 'rollout aborted by operator',
  };
}

export function state(deviceId = 'dev-a'): StateMessage {
  return {
    type: 'state',
    id: 'state-0001',
    schemaVersion: 1,
    ts: TS,
    deviceId,
    online: true,
    agentVersion: '0.3.1',
    hardware: 'rpi4',
    model: { name: 'mnist-2nn', version: '1.1.0', release: 4, bundleId: OLD_BUNDLE_ID },
    update: {
      state: 'downloading',
      rolloutId: 'rollout-canary-01',
      bundleId: BUNDLE_ID,
    },
  };
}

export function progress(): ProgressMessage {
  return {
    type: 'progress',
    id: 'progress-0001',
    schemaVersion: 1,
    ts: TS,
    rolloutId: 'rollout-canary-01',
    bundleId: BUNDLE_ID,
    state: 'downloading',
    blocksReceived: 2,
    blockCount: 3,
  };
}

export function health(): HealthMessage {
  return {
    type: 'health',
    id: 'health-0001',
    schemaVersion: 1,
    ts: TS,
    model: { name: 'mnist-2nn', version: '1.2.0', release: 5 },
    windowStart: '2026-11-26T11:55:00Z',
    windowEnd: '2026-11-26T12:00:00.000Z',
    requests: 120,
    errors: 3,
    latencyMs: { p50: 4.2, p95: 11.5, p99: 19 },
    meanConfidence: 0.91,
    probation: true,
  };
}

/** A request for blocks 1 and 9 of 10: bitmap bytes 0x02 0x02, in base64. */
export function blocksRequest(): BlocksRequestMessage {
  return {
    type: 'blocks-request',
    id: 'blocks-req-0001',
    schemaVersion: 1,
    ts: TS,
    rolloutId: 'rollout-canary-01',
    bundleId: BUNDLE_ID,
    blockCount: 10,
    missing: 'AgI=',
  };
}

/** A flush of two small signals (confidence, predicted class) of bundle BUNDLE_ID. */
export function driftReport(): DriftReportMessage {
  const confidence = createNumericSignal({ k: 200 });
  const predicted = createCategoricalSignal();
  for (let i = 0; i < 40; i++) {
    updateSignal(confidence, 0.5 + i / 100);
    updateSignal(predicted, i % 10);
  }
  return {
    type: 'drift',
    id: '3f1c2d4b-5e6f-4a7b-8c9d-0e1f2a3b4c5d',
    schemaVersion: 1,
    ts: TS,
    deviceId: 'dev-a',
    model: { name: 'mnist-2nn', version: '1.2.0', release: 5, bundleId: BUNDLE_ID },
    rolloutId: 'rollout-canary-01',
    seq: 7,
    window: { start: '2026-11-26T11:59:00Z', end: '2026-11-26T12:00:00.000Z' },
    inferences: 800,
    sampled: 40,
    signals: [
      { name: 'confidence', sketch: toBase64(serializeSignal(confidence)) },
      { name: 'class', sketch: toBase64(serializeSignal(predicted)) },
    ],
  };
}

/** Every example, by type: a fresh copy per call. */
export function examples(signer: Signer): Record<ControlMessage['type'], ControlMessage> {
  return {
    deploy: deploy(signer),
    rollback: rollback(signer),
    cancel: cancel(),
    state: state(),
    progress: progress(),
    health: health(),
    'blocks-request': blocksRequest(),
    drift: driftReport(),
    'fl-train': flTrain(),
    'fl-update': flUpdate(),
    'fl-update-part': flUpdatePart(),
  };
}

/** JSON bytes of any value, as a message arrives on the wire. */
export function wire(value: unknown): Uint8Array {
  return utf8(JSON.stringify(value));
}

/** Marks a field for removal in `patched`. */
export const DELETE = Symbol('delete');

/**
 * A deep copy of `value` with fields replaced, or removed with DELETE, by dotted
 * path: `patched(deploy(key), { 'bundle.blockCount': 2, probation: DELETE })`.
 */
export function patched(value: unknown, changes: Record<string, unknown>): unknown {
  const copy = structuredClone(value);
  for (const [path, replacement] of Object.entries(changes)) {
    const keys = path.split('.');
    const last = keys.pop()!;
    let target = copy as Record<string, unknown>;
    for (const key of keys) target = target[key] as Record<string, unknown>;
    if (replacement === DELETE) delete target[last];
    else target[last] = replacement;
  }
  return copy;
}
