/**
 * The demo's control-plane stage: a real control plane (embedded PGlite in
 * the demo dir, embedded MQTT broker, HTTP on a free port) driven the way an
 * operator and a device would: the trust root and its rotation pushed with
 * `fleet trust push`, bundles pushed (and refused) with `fleet models push`,
 * a device enrolled with a single-use token, connected over MQTT with its
 * signed credential, seen online with its model, then revoked; the audit log
 * verified, then caught after an edit behind the application's back.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { sql } from 'drizzle-orm';
import { runCli, type CliIo } from '@fleet/bundles';
import {
  mergeConfig,
  registryCommands,
  runControlPlane,
  type ControlPlane,
} from '@fleet/control-plane';
import {
  bundleIdOf,
  deviceTopic,
  generateKeyPair,
  keyIdOf,
  signDeviceMessage,
  signEnrolmentRequest,
  signMqttCredential,
  type Signer,
} from '@fleet/protocol';
import type { DemoReport } from './demo-report.ts';

export interface ControlPlaneStageOptions {
  workDir: string;
  keysDir: string;
  bundles: { v1: string; v2: string; tampered: string; forged: string };
  report: DemoReport;
  cli: CliIo;
}

export async function controlPlaneStage(options: ControlPlaneStageOptions): Promise<void> {
  const { report } = options;
  report.step('operator: fleet up (embedded database and broker, in the demo dir)');
  const cp = await runControlPlane({
    config: mergeConfig({
      httpPort: 0,
      mqttPort: 0,
      dataDir: join(options.workDir, 'control-plane'),
      logLevel: 'warn',
    }),
    announce: (text) => report.note(text.trim().split('\n').at(-1) ?? ''),
  });
  const clients: MqttClient[] = [];
  try {
    await runStage(cp, options, clients);
  } finally {
    for (const c of clients) c.end(true);
    await cp.close();
  }
}

async function runStage(
  cp: ControlPlane,
  options: ControlPlaneStageOptions,
  clients: MqttClient[],
) {
  const { report, keysDir, bundles } = options;
  const env = {
    url: cp.url!,
    token: cp.firstAdminToken!,
    configPath: join(options.workDir, 'cli.json'),
  };
  const fleet = async (...argv: string[]) => {
    let out = '';
    const io = { ...options.cli, stdout: (t: string) => void (out += t), stderr: () => undefined };
    const code = await runCli(argv, io, registryCommands(io, env));
    const json = out.trim().startsWith('{') ? (JSON.parse(out) as Record<string, unknown>) : {};
    return { code, json, out };
  };
  const result = (r: { code: number; json: Record<string, unknown> }) =>
    r.code === 0 ? 'ACCEPTED' : String(r.json.code);

  report.step('operator: fleet trust push, root v1 then the rotation to v2');
  for (const version of [1, 2]) {
    const pushed = await fleet('trust', 'push', join(keysDir, 'history', `${version}.root.json`));
    report.outcome(
      `install root v${version}`,
      'ACCEPTED',
      `${result(pushed)} v${String(pushed.json.version)}`,
    );
  }

  report.step('operator: fleet models push (verified against the root before it is stored)');
  const push = async (check: string, expected: string, path: string) =>
    report.outcome(check, expected, result(await fleet('models', 'push', path)));
  await push('release 2, signed by the current bundle keys', 'ACCEPTED', bundles.v2);
  await push('release 1, signed by rotated-out keys', 'SIGNATURE_THRESHOLD', bundles.v1);
  await push('release 9, one stolen key', 'SIGNATURE_THRESHOLD', bundles.forged);
  await push('release 2 again', 'CONFLICT', bundles.v2);

  report.step('operator: fleet enroll-token create; a device enrols and comes online over MQTT');
  const token = (await fleet('enroll-token', 'create', '--tag', 'site=demo', '--ttl', '600')).json
    .token as string;
  const device = await enrol(cp.url!, token, 'demo-rpi-1');
  report.outcome('enrolment with the token', 'ACCEPTED', device ? 'ACCEPTED' : 'refused');
  const reuse = await enrol(cp.url!, token, 'demo-rpi-2');
  report.outcome(
    'the same token a second time',
    'refused',
    reuse ? 'ACCEPTED' : 'refused (single use)',
  );
  const client = await connectDevice(cp, 'demo-rpi-1', device!);
  clients.push(client);
  await client.publishAsync(
    deviceTopic('demo-rpi-1', 'state'),
    stateMessage(
      'demo-rpi-1',
      device!,
      true,
      await bundleIdOf(new Uint8Array(await readFile(bundles.v2))),
    ),
    {
      qos: 1,
      retain: true,
    },
  );
  const online = await waitFor(async () => {
    const listed = await fleet('devices', 'ls', '--tag', 'site=demo');
    return /demo-rpi-1\s+online\s+rpi4\s+demo-model@1\.2\.0/.test(listed.out) ? listed.out : null;
  });
  report.note((online ?? 'device not listed online').split('\n')[0]!);
  report.outcome(
    'device listed online, serving release 2',
    'online',
    online ? 'online' : 'not online',
  );
  const impostor = await connectDevice(cp, 'demo-rpi-1', await newSigner()).then(
    (c) => (clients.push(c), 'CONNECTED'),
    () => 'refused',
  );
  report.outcome('another key claiming to be demo-rpi-1', 'refused', impostor);

  report.step('operator: fleet devices revoke demo-rpi-1');
  await fleet('devices', 'revoke', 'demo-rpi-1', '--reason', 'demo: stolen device');
  const dropped = await waitFor(() => Promise.resolve(client.connected ? null : 'disconnected'));
  report.outcome('revoked device connection', 'disconnected', dropped ?? 'still connected');
  const back = await connectDevice(cp, 'demo-rpi-1', device!).then(
    (c) => (clients.push(c), 'CONNECTED'),
    () => 'refused',
  );
  report.outcome('revoked device reconnecting', 'refused', back);

  report.step('auditor: fleet audit verify, before and after a row is edited in the database');
  report.outcome(
    'audit chain',
    'ok',
    (await fleet('audit', 'verify')).code === 0 ? 'ok' : 'broken',
  );
  await cp.database.db.execute(
    sql`update audit_log set actor = 'token:nobody' where action = 'device.revoked'`,
  );
  const broken = await fleet('audit', 'verify');
  report.outcome(
    'audit chain after the edit',
    'AUDIT_BROKEN',
    `${result(broken)} (${String(broken.json.message)})`,
  );
}

async function newSigner(): Promise<Signer> {
  const pair = generateKeyPair();
  return { keyId: await keyIdOf(pair.publicKey), secretKey: pair.secretKey };
}

async function enrol(url: string, token: string, deviceId: string): Promise<Signer | null> {
  const pair = generateKeyPair();
  const signer: Signer = { keyId: await keyIdOf(pair.publicKey), secretKey: pair.secretKey };
  const response = await fetch(`${url}/v1/enrol`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: signEnrolmentRequest({
      token,
      deviceId,
      publicKey: pair.publicKey,
      hardware: 'rpi4',
      tags: {},
      agentVersion: '0.1.0',
      nowMs: Date.now(),
      signer,
    }),
  });
  return response.status === 201 ? signer : null;
}

function connectDevice(cp: ControlPlane, deviceId: string, signer: Signer, clientId = deviceId) {
  return mqtt.connectAsync(cp.broker!.deviceUrl, {
    protocolVersion: 4,
    clientId,
    username: deviceId,
    password: Buffer.from(signMqttCredential({ deviceId, clientId, nowMs: Date.now(), signer })),
    reconnectPeriod: 0,
    connectTimeout: 5000,
  });
}

function stateMessage(deviceId: string, signer: Signer, online: boolean, bundleId: string): Buffer {
  const now = new Date();
  const message = {
    type: 'state' as const,
    id: `state-${deviceId}-${now.getTime()}`,
    schemaVersion: 1 as const,
    ts: now.toISOString(),
    deviceId,
    online,
    agentVersion: '0.1.0',
    hardware: 'rpi4',
    model: { name: 'demo-model', version: '1.2.0', release: 2, bundleId },
    update: { state: 'committed' as const },
  };
  return Buffer.from(JSON.stringify(signDeviceMessage({ deviceId, message, signer })));
}

async function waitFor<T>(probe: () => Promise<T | null>, timeoutMs = 5000): Promise<T | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
}
