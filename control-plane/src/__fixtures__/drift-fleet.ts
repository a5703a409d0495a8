/**
 * Test fixture: an in-memory control plane (`startTestControlPlane`) with a
 * trust root and one registered bundle whose manifest monitors the
 * synthetic drift signals of core/drift/__fixtures__ and whose profile part
 * holds their baselines, and helpers to send devices' signed drift flushes
 * through the same path as MQTT (`rollouts.onDeviceMessage`).
 */
import {
  bundleIdOf,
  deviceTopic,
  encodeDriftProfile,
  packBundle,
  signDeviceMessage,
  type DriftReportMessage,
  type ManifestDrift,
  type Signer,
} from '@fleet/protocol';
import { manifestInput, sampleParts, testTrust } from '@fleet/protocol/testing';
import { SIGNALS, DEVICE_K, testProfile } from '../core/drift/__fixtures__/drift-fixtures.ts';
import { startTestControlPlane, type TestControlPlane } from './control-plane.ts';

export const DRIFT_SPEC: ManifestDrift = {
  part: 'drift-profile.bin',
  sampleRate: 0.1,
  flush: { maxSamples: 1000, maxIntervalMs: 60_000 },
  sketchK: DEVICE_K,
  signals: SIGNALS.map((s) => ({
    name: s.name,
    kind: s.kind,
    source:
      s.name === 'confidence'
        ? { type: 'confidence' as const }
        : s.name === 'predicted_class'
          ? { type: 'predicted-class' as const }
          : { type: 'input' as const, index: Number(s.name.split('.')[1]) },
  })),
};

export interface DriftFleet {
  t: TestControlPlane;
  /** The registered bundle with a drift profile, as flushes name it. */
  model: DriftReportMessage['model'];
  /** A registered bundle without one. */
  plainModel: DriftReportMessage['model'];
  /** Signs and hands over a flush as the MQTT subscription would (rejects what verification refuses). */
  send(device: { id: string; signer: Signer }, message: DriftReportMessage): Promise<void>;
  /** A payload on the device's telemetry topic, as received. */
  deliver(deviceId: string, payload: Uint8Array): Promise<void>;
}

export async function startDriftFleet(): Promise<DriftFleet> {
  const t = await startTestControlPlane();
  const trust = await testTrust();
  const keys = trust.bundleKeys.slice(0, 2);
  await expectOk(t.call('PUT', '/v1/trust/root', { body: trust.rootBytes }), 201);
  const profile = encodeDriftProfile({ pca: null, baselines: new Map(testProfile().baselines) });
  const bundle = await packBundle({
    manifest: manifestInput({ drift: DRIFT_SPEC }),
    parts: [...sampleParts(), { name: DRIFT_SPEC.part, bytes: profile }],
    signers: keys,
  });
  const plain = await packBundle({
    manifest: manifestInput({ name: 'plain', version: '1.0.0', release: 1 }),
    parts: sampleParts(),
    signers: keys,
  });
  for (const bytes of [bundle, plain]) {
    await expectOk(t.call('POST', '/v1/models', { body: bytes, token: t.tokens.operator }), 201);
  }
  const model = {
    name: 'mnist-2nn',
    version: '1.2.0',
    release: 5,
    bundleId: await bundleIdOf(bundle),
  };
  const plainModel = {
    name: 'plain',
    version: '1.0.0',
    release: 1,
    bundleId: await bundleIdOf(plain),
  };
  const deliver = (deviceId: string, payload: Uint8Array) =>
    t.cp.rollouts.onDeviceMessage(deviceTopic(deviceId, 'telemetry'), payload);
  return {
    t,
    model,
    plainModel,
    deliver,
    send: (device, message) =>
      deliver(
        device.id,
        new TextEncoder().encode(
          JSON.stringify(
            signDeviceMessage({ deviceId: device.id, message, signer: device.signer }),
          ),
        ),
      ),
  };
}

async function expectOk(response: Promise<Response>, status: number): Promise<void> {
  const res = await response;
  if (res.status !== status) throw new Error(`fixture: HTTP ${res.status}: ${await res.text()}`);
}

/** The value of one Prometheus sample in `/metrics` text, or 0 when absent. */
export function metricValue(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (wanted.every((w) => line.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}
