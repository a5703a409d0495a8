/**
 * Drift flushes over MQTT into a running control plane (embedded broker and
 * PGlite by default; PostgreSQL and an external broker when DATABASE_URL /
 * MQTT_URL are set): a device publishes signed flushes on its telemetry
 * topic and every outcome is counted in /metrics: stored and replayed ones
 * in `fleet_drift_flushes_total`, unsigned, oversized or malformed envelopes
 * in `fleet_device_messages_total{topic="telemetry"}` by refusal code.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { sql } from 'drizzle-orm';
import {
  DEVICE_MESSAGE_PAYLOAD_TYPE,
  canonicalJson,
  deviceTopic,
  encodeDriftProfile,
  generateKeyPair,
  keyIdOf,
  packBundle,
  bundleIdOf,
  signDeviceMessage,
  signEnrolmentRequest,
  signEnvelope,
  signMqttCredential,
  toBase64,
  type DriftReportMessage,
  type Signer,
} from '@fleet/protocol';
import { manifestInput, sampleParts, testTrust } from '@fleet/protocol/testing';
import { mergeConfig } from './config.ts';
import type { ControlPlane } from './control-plane.ts';
import { runControlPlane } from './run-control-plane.ts';
import { DRIFT_SPEC, metricValue } from './__fixtures__/drift-fleet.ts';
import {
  CLEAN,
  driftMessage,
  sketchTraffic,
  testProfile,
} from './core/drift/__fixtures__/drift-fixtures.ts';

let cp: ControlPlane;
let dir: string;
let admin: string;
let client: MqttClient;
let signer: Signer;
let model: DriftReportMessage['model'];
const id = `drift-mqtt-${Date.now().toString(36)}`;

const api = (path: string, init: RequestInit = {}) =>
  fetch(`${cp.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${admin}`, ...(init.headers ?? {}) },
  });

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fleet-drift-'));
  const databaseUrl = process.env['DATABASE_URL'];
  if (databaseUrl) {
    const { openDatabase } = await import('./adapters/db/database.ts');
    const db = await openDatabase({ url: databaseUrl });
    await db.db.execute(
      sql`truncate audit_log, device_tags, devices, enrolment_tokens, operator_tokens, model_versions, trust_roots, drift_flushes, drift_pending_windows, drift_windows, drift_cumulative, drift_alerts`,
    );
    await db.close();
  }
  cp = await runControlPlane({
    config: mergeConfig({
      httpPort: 0,
      mqttPort: 0,
      dataDir: dir,
      databaseUrl,
      mqttUrl: process.env['MQTT_URL'],
      logLevel: 'silent',
    }),
    announce: () => undefined,
  });
  admin = cp.firstAdminToken!;
  const trust = await testTrust();
  assert.equal((await api('/v1/trust/root', { method: 'PUT', body: trust.rootBytes })).status, 201);
  const bundle = await packBundle({
    manifest: manifestInput({ drift: DRIFT_SPEC }),
    parts: [
      ...sampleParts(),
      {
        name: DRIFT_SPEC.part,
        bytes: encodeDriftProfile({ pca: null, baselines: new Map(testProfile().baselines) }),
      },
    ],
    signers: trust.bundleKeys.slice(0, 2),
  });
  assert.equal((await api('/v1/models', { method: 'POST', body: bundle })).status, 201);
  model = { name: 'mnist-2nn', version: '1.2.0', release: 5, bundleId: await bundleIdOf(bundle) };

  const { token } = (await (
    await api('/v1/enrolment-tokens', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    })
  ).json()) as { token: string };
  const pair = generateKeyPair();
  signer = { keyId: await keyIdOf(pair.publicKey), secretKey: pair.secretKey };
  const enrolled = await fetch(`${cp.url}/v1/enrol`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: signEnrolmentRequest({
      token,
      deviceId: id,
      publicKey: pair.publicKey,
      hardware: 'rpi4',
      tags: { cohort: 'a' },
      agentVersion: '0.1.0',
      nowMs: Date.now(),
      signer,
    }),
  });
  assert.equal(enrolled.status, 201);
  client = await mqtt.connectAsync(cp.broker!.deviceUrl, {
    protocolVersion: 4,
    clientId: id,
    username: id,
    password: Buffer.from(
      signMqttCredential({ deviceId: id, clientId: id, nowMs: Date.now(), signer }),
    ),
    reconnectPeriod: 0,
    connectTimeout: 5000,
  });
});
after(async () => {
  client?.end(true);
  await cp?.close();
  await rm(dir, { recursive: true, force: true });
});

async function until(check: (metrics: string) => boolean, what: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const text = await (await fetch(`${cp.url}/metrics`)).text();
    if (check(text)) return text;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const publish = (payload: Uint8Array) =>
  client.publishAsync(deviceTopic(id, 'telemetry'), Buffer.from(payload), { qos: 1 });
const signed = (message: unknown) =>
  new TextEncoder().encode(
    JSON.stringify(
      signEnvelope(DEVICE_MESSAGE_PAYLOAD_TYPE, canonicalJson({ deviceId: id, message }), [signer]),
    ),
  );

describe(`drift flushes over MQTT (${process.env['MQTT_URL'] ? 'external broker' : 'embedded broker'}, ${process.env['DATABASE_URL'] ? 'PostgreSQL' : 'PGlite'})`, () => {
  it('stores a signed flush once and counts a QoS 1 redelivery as replayed', async () => {
    const message = driftMessage({
      deviceId: id,
      seq: 1,
      end: new Date(Date.now() - 5_000).toISOString(),
      sketches: sketchTraffic(300, 1, CLEAN),
      sampled: 300,
      model,
    });
    const envelope = signDeviceMessage({ deviceId: id, message, signer });
    await publish(new TextEncoder().encode(JSON.stringify(envelope)));
    await publish(new TextEncoder().encode(JSON.stringify(envelope)));
    const text = await until(
      (m) => metricValue(m, 'fleet_drift_flushes_total', { result: 'replayed' }) === 1,
      'the replay to be counted',
    );
    assert.equal(metricValue(text, 'fleet_drift_flushes_total', { result: 'accepted' }), 1);
    assert.equal(
      metricValue(text, 'fleet_device_messages_total', { topic: 'telemetry', result: 'ok' }),
      2,
    );
    const status = (await (await api('/v1/drift?model=mnist-2nn')).json()) as {
      model: { bundleId: string };
    };
    assert.equal(status.model.bundleId, model.bundleId);
  });

  it('counts unsigned, oversized and malformed flushes by refusal code, storing none', async () => {
    const message = driftMessage({
      deviceId: id,
      seq: 2,
      end: new Date(Date.now() - 5_000).toISOString(),
      sketches: sketchTraffic(300, 2, CLEAN),
      sampled: 300,
      model,
    });
    const unsigned = JSON.parse(new TextDecoder().decode(signed(message))) as {
      signatures: unknown[];
    };
    unsigned.signatures = [];
    await publish(new TextEncoder().encode(JSON.stringify(unsigned)));
    // 6 x 16 KiB + 2 x 1 KiB of sketches: above the 96 KiB a flush may carry, under 192 KiB signed
    const overfull = { ...message, id: 'overfull-flush' };
    overfull.signals = overfull.signals.map((s, i) => ({
      ...s,
      sketch: toBase64(new Uint8Array(i < 6 ? 16 * 1024 : 1024)),
    }));
    await publish(signed(overfull));
    // 8 x 16 KiB: its envelope passes 192 KiB (the broker still takes it: its guard is 256 KiB)
    const huge = { ...message, id: 'huge-flush' };
    huge.signals = huge.signals.map((s) => ({ ...s, sketch: toBase64(new Uint8Array(16 * 1024)) }));
    await publish(signed(huge));
    await publish(new TextEncoder().encode('{"payloadType":'));
    const refusals = { MALFORMED: 2, BAD_SIGNATURE: 1, TOO_LARGE: 1 };
    const counted = (m: string) =>
      Object.fromEntries(
        Object.keys(refusals).map((result) => [
          result,
          metricValue(m, 'fleet_device_messages_total', { topic: 'telemetry', result }),
        ]),
      );
    const text = await until(
      (m) => JSON.stringify(counted(m)) === JSON.stringify(refusals),
      'the refusals to be counted',
    );
    assert.equal(metricValue(text, 'fleet_drift_flushes_total', { result: 'accepted' }), 1);
  });
});
