/**
 * The running control plane end to end, on the embedded defaults (PGlite in a
 * data dir, aedes) or on PostgreSQL and an external broker when DATABASE_URL /
 * MQTT_URL are set (CI): a device enrols over HTTP, connects over MQTT with
 * its signed credential and a last will, publishes its signed retained state,
 * and the registry follows it online, onto its model, and offline when its
 * connection dies. Health, metrics and a graceful stop are checked too.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { sql } from 'drizzle-orm';
import {
  deviceTopic,
  generateKeyPair,
  keyIdOf,
  signDeviceMessage,
  signEnrolmentRequest,
  signMqttCredential,
  type Signer,
  type StateMessage,
} from '@fleet/protocol';
import { mergeConfig } from './config.ts';
import type { ControlPlane } from './control-plane.ts';
import { runControlPlane } from './run-control-plane.ts';

const external = Boolean(process.env['MQTT_URL']);
let cp: ControlPlane;
let dir: string;
let admin: string;
const clients: MqttClient[] = [];

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fleet-cp-'));
  const databaseUrl = process.env['DATABASE_URL'];
  if (databaseUrl) {
    // A shared CI database: start from empty registries (the storage suite truncates too).
    const { openDatabase } = await import('./adapters/db/database.ts');
    const db = await openDatabase({ url: databaseUrl });
    await db.db.execute(
      sql`truncate audit_log, device_tags, devices, enrolment_tokens, operator_tokens, model_versions, trust_roots`,
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
});
after(async () => {
  for (const c of clients) c.end(true);
  await cp.close();
  await rm(dir, { recursive: true, force: true });
});

const api = (path: string, init: RequestInit = {}) =>
  fetch(`${cp.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${admin}`, ...(init.headers ?? {}) },
  });

async function enrol(id: string): Promise<Signer> {
  const tokenRes = await api('/v1/enrolment-tokens', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{}',
  });
  const { token } = (await tokenRes.json()) as { token: string };
  const pair = generateKeyPair();
  const signer = { keyId: await keyIdOf(pair.publicKey), secretKey: pair.secretKey };
  const res = await fetch(`${cp.url}/v1/enrol`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: signEnrolmentRequest({
      token,
      deviceId: id,
      publicKey: pair.publicKey,
      hardware: 'rpi4',
      tags: {},
      agentVersion: '0.1.0',
      nowMs: Date.now(),
      signer,
    }),
  });
  assert.equal(res.status, 201);
  const enrolled = (await res.json()) as { mqttUrl: string | null };
  assert.equal(enrolled.mqttUrl, cp.broker!.deviceUrl);
  return signer;
}

function stateOf(id: string, online: boolean, ts: Date): StateMessage {
  return {
    type: 'state',
    id: `state-${id}-${ts.getTime()}`,
    schemaVersion: 1,
    ts: ts.toISOString(),
    deviceId: id,
    online,
    agentVersion: '0.1.0',
    hardware: 'rpi4',
    model: { name: 'mnist-2nn', version: '1.0.0', release: 1, bundleId: 'cd'.repeat(32) },
    update: { state: 'committed' },
  };
}

const signedState = (id: string, signer: Signer, online: boolean, ts: Date) =>
  Buffer.from(
    JSON.stringify(signDeviceMessage({ deviceId: id, message: stateOf(id, online, ts), signer })),
  );

async function device(id: string) {
  const response = await api(`/v1/devices/${id}`);
  return (await response.json()) as { status: string; model: { version: string } | null };
}

describe(`running control plane (${external ? 'external broker' : 'embedded broker'}, ${process.env['DATABASE_URL'] ? 'PostgreSQL' : 'PGlite'})`, () => {
  it('is healthy and reports its broker', async () => {
    const res = await fetch(`${cp.url}/healthz`);
    assert.deepEqual(await res.json(), { status: 'ok', checks: { database: 'ok', broker: 'ok' } });
  });

  it('follows a device online through its signed retained state, and offline through its will', async () => {
    const id = `e2e-${Date.now().toString(36)}`;
    const signer = await enrol(id);
    const stateTopic = deviceTopic(id, 'state');
    const client = await mqtt.connectAsync(cp.broker!.deviceUrl, {
      protocolVersion: 4,
      clientId: id,
      username: id,
      password: Buffer.from(
        signMqttCredential({ deviceId: id, clientId: id, nowMs: Date.now(), signer }),
      ),
      reconnectPeriod: 0,
      connectTimeout: 5000,
      will: {
        topic: stateTopic,
        payload: signedState(id, signer, false, new Date(Date.now() + 1000)),
        qos: 1,
        retain: true,
      },
    });
    clients.push(client);
    await client.publishAsync(stateTopic, signedState(id, signer, true, new Date()), {
      qos: 1,
      retain: true,
    });
    await until(async () => (await device(id)).status === 'online', 'the device online');
    assert.equal((await device(id)).model?.version, '1.0.0');
    // A dead connection (no DISCONNECT) fires the will.
    client.stream.destroy();
    await until(async () => (await device(id)).status === 'offline', 'the last will', 10_000);
  });

  it('ignores a state signed by another device’s key', async () => {
    const id = `e2e-forged-${Date.now().toString(36)}`;
    await enrol(id);
    const thief = await enrol(`${id}-x`);
    const metricsBefore = await (await fetch(`${cp.url}/metrics`)).text();
    const refusedBefore = Number(
      /fleet_device_messages_total\{topic="state",result="BAD_SIGNATURE"\} (\d+)/.exec(
        metricsBefore,
      )?.[1] ?? 0,
    );
    // On the embedded broker only `id` itself may publish here, so the forged
    // message is injected as the control plane would receive it.
    await cp.broker!.publish(deviceTopic(id, 'state'), signedState(id, thief, true, new Date()));
    await until(async () => {
      const text = await (await fetch(`${cp.url}/metrics`)).text();
      const now = Number(
        /fleet_device_messages_total\{topic="state",result="BAD_SIGNATURE"\} (\d+)/.exec(
          text,
        )?.[1] ?? 0,
      );
      return now > refusedBefore;
    }, 'the refusal to be counted');
    assert.equal((await device(id)).status, 'offline');
  });

  it('stops gracefully: a request still uploading completes, then the port is closed', async () => {
    const url = cp.url!;
    // A body that trickles in over ~300 ms keeps the request in flight while close() starts.
    let chunk = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        await new Promise((r) => setTimeout(r, 30));
        if (chunk++ < 10) controller.enqueue(new Uint8Array(1024));
        else controller.close();
      },
    });
    const inFlight = fetch(`${url}/v1/models`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/octet-stream' },
      body,
      duplex: 'half',
    });
    await new Promise((r) => setTimeout(r, 100));
    await cp.close();
    const response = await inFlight;
    assert.equal(response.status, 409); // answered in full: no trust root installed
    assert.equal(
      ((await response.json()) as { error: { code: string } }).error.code,
      'NO_TRUST_ROOT',
    );
    await assert.rejects(fetch(`${url}/healthz`));
    cp = { close: () => Promise.resolve() } as ControlPlane; // closed; `after` must not close twice
  });
});
