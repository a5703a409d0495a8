/**
 * The `fleet-agent` executable as an operator runs it, in a child process,
 * against a real control plane: it enrols with a single-use token, comes
 * online, answers its local inference API with 503 NO_MODEL until a model is
 * installed, takes a rollout (files in its data dir), serves the model, and
 * after a restart without the token it is the same device, serving the
 * committed model from its slot at once.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, it } from 'node:test';
import { mergeConfig, runControlPlane, type ControlPlane } from '@fleet/control-plane';
import { createFleetBundleKit, type FleetBundleKit } from './fleet-bundles.ts';
import { controlPlaneApi, resetServiceDatabase, until } from './__fixtures__/fleet-test-kit.ts';

const BIN = fileURLToPath(new URL('../../../edge-agent/bin/fleet-agent.js', import.meta.url));
const DEVICE = `daemon-${Date.now().toString(36)}`;
let cp: ControlPlane;
let dir: string;
let kit: FleetBundleKit;
const { call } = controlPlaneApi(
  () => cp,
  () => cp.firstAdminToken!,
);
const children: ChildProcess[] = [];

/** Starts the daemon; resolves with the inference API's URL once it prints it. */
function startAgent(
  args: string[],
): Promise<{ child: ChildProcess; inferUrl: string; log: () => string }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let log = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`fleet-agent did not start:\n${log}`)), 30_000);
    child.stderr.on('data', (chunk: Buffer) => {
      log += chunk.toString();
      const match = /inference API on (http:\/\/[^\s]+)\/v1\/infer/.exec(log);
      if (match) {
        clearTimeout(timer);
        resolve({ child, inferUrl: match[1]!, log: () => log });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`fleet-agent exited ${code}:\n${log}`));
    });
  });
}

function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.once('exit', (code) => resolve(code));
    child.kill(signal);
  });
}

const device = () =>
  call<{ status: string; model: { version: string } | null }>('GET', `/v1/devices/${DEVICE}`);
const infer = (url: string, inputs: number[][]) =>
  fetch(`${url}/v1/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs }),
  });

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fleet-daemon-'));
  const databaseUrl = await resetServiceDatabase();
  [kit, cp] = await Promise.all([
    createFleetBundleKit(),
    runControlPlane({
      config: mergeConfig({
        httpPort: 0,
        mqttPort: 0,
        dataDir: join(dir, 'cp'),
        databaseUrl,
        mqttUrl: process.env['MQTT_URL'],
        logLevel: 'silent',
        rollouts: { tickIntervalMs: 200, batchWindowMs: 20 },
      }),
      announce: () => undefined,
    }),
  ]);
  await call('PUT', '/v1/trust/root', kit.rootBytes, 'application/octet-stream');
});

after(async () => {
  await Promise.all(children.map((c) => stop(c, 'SIGKILL')));
  await cp?.close();
  await rm(dir, { recursive: true, force: true });
});

it('fleet-agent enrols once, takes a rollout, serves it, and comes back after a restart without its token', async () => {
  const dataDir = join(dir, 'agent');
  const { token } = await call<{ token: string }>('POST', '/v1/enrolment-tokens', {});
  const args = [
    '--control-plane',
    cp.url!,
    '--data-dir',
    dataDir,
    '--hardware',
    'sim-cpu',
    '--device-id',
    DEVICE,
    '--tag',
    'site=bench',
    '--infer-port',
    '0',
  ];
  const first = await startAgent([...args, '--enroll-token', token]);
  await until(async () => (await device()).status === 'online', 'the device to be online', 20_000, {
    retryErrors: true,
  });

  const digit = Array.from(kit.test.features.subarray(0, 784));
  const before = await infer(first.inferUrl, [digit]);
  assert.equal(before.status, 503);
  assert.equal(((await before.json()) as { error: { code: string } }).error.code, 'NO_MODEL');

  await call(
    'POST',
    '/v1/models',
    await kit.build({ version: '1.0.0', release: 1 }),
    'application/octet-stream',
  );
  const rollout = await call<{ id: string }>('POST', '/v1/rollouts', {
    model: 'mnist-classmean@1.0.0',
    target: `id:${DEVICE}`,
    waves: '100%',
    bake: '200ms',
    probation: '1s',
    deviceTimeout: '60s',
  });
  const done = await until(
    async () => {
      const r = await call<{ status: string; reason: string | null }>(
        'GET',
        `/v1/rollouts/${rollout.id}`,
      );
      return r.status === 'completed' || r.status === 'aborted' ? r : null;
    },
    'the rollout to finish',
    30_000,
  );
  assert.equal(done.status, 'completed', `${done.reason}\n${first.log()}`);
  const served = await infer(first.inferUrl, [digit]);
  assert.equal(served.status, 200);
  const answer = (await served.json()) as { model: { version: string }; predictions: number[] };
  assert.equal(answer.model.version, '1.0.0');
  assert.equal(answer.predictions.length, 1);
  assert.ok(
    (await readdir(join(dataDir, 'slots', 'a'))).includes('slot.json'),
    'the model is in slot a',
  );

  assert.equal(await stop(first.child), 0, 'SIGTERM stops it cleanly');
  await until(
    async () => (await device()).status === 'offline',
    'the device to be offline',
    20_000,
    {
      retryErrors: true,
    },
  );

  // No token now: the identity and pinned root in the data dir are enough.
  const second = await startAgent(args);
  const again = await infer(second.inferUrl, [digit]);
  assert.equal(again.status, 200, 'the committed model serves at once after a restart');
  assert.equal(((await again.json()) as { model: { version: string } }).model.version, '1.0.0');
  await until(
    async () => (await device()).status === 'online',
    'the device to be online again',
    20_000,
    {
      retryErrors: true,
    },
  );
  assert.equal((await device()).model?.version, '1.0.0');
  await stop(second.child);
});

it('fleet-agent without a token on a fresh data dir says what is missing and exits 1', async () => {
  const child = spawn(
    process.execPath,
    [BIN, '--control-plane', cp.url!, '--data-dir', join(dir, 'fresh'), '--no-infer'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.push(child);
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.equal(code, 1);
  assert.match(stderr, /not enrolled yet: pass --enroll-token/);
});
