/**
 * Fault: the MQTT broker dies in the middle of a rollout's download and comes
 * back on the same port. A private Mosquitto (never the system one) is the
 * control plane's external broker; it is killed with SIGKILL while every
 * agent is downloading, before the control plane's block broadcast, and
 * restarted with the same configuration and persistence directory. Agents
 * reconnect on their own (persistent sessions, jittered backoff; THREATS 25,
 * 34), the control plane's link reconnects and subscribes again, and the
 * rollout completes with every agent committed.
 *
 * Skipped, visibly, where Mosquitto is not installed. The database is the
 * embedded PGlite, or PostgreSQL with DATABASE_URL.
 *
 * Not the control-plane fixture (`__fixtures__/mosquitto-process.ts`): it runs
 * the documented password-file setup, and these agents authenticate with
 * signed credentials that only an auth plugin could check; so this broker
 * allows anonymous clients (as CI's does) and keeps its own port across
 * restarts.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { mergeConfig, runControlPlane, type ControlPlane } from '@fleet/control-plane';
import { createFleetBundleKit, type FleetBundleKit } from './fleet-bundles.ts';
import type { SimFleet } from './sim-fleet.ts';
import { startBackgroundTraffic } from './mnist-traffic.ts';
import {
  controlPlaneApi,
  freeFixedPort,
  resetServiceDatabase,
  type RolloutView,
  startTestFleet,
  until,
} from './__fixtures__/fleet-test-kit.ts';

const MOSQUITTO = '/usr/sbin/mosquitto';
const missing = existsSync(MOSQUITTO) ? null : `mosquitto not installed (${MOSQUITTO})`;
const FLEET_SIZE = 12;
const BROADCAST_DELAY_MS = 1_500;
const START_TIMEOUT_MS = 5_000;
let broker: PrivateBroker | undefined;
let cp: ControlPlane | undefined;
let dir: string;
let admin: string;
let kit: FleetBundleKit;
let fleet: SimFleet | undefined;
let traffic: ReturnType<typeof startBackgroundTraffic> | undefined;
const { call } = controlPlaneApi(
  () => cp!,
  () => admin,
);

interface PrivateBroker {
  readonly port: number;
  /** Kills the broker as a crash would (SIGKILL), and waits for it to exit. */
  crash(): Promise<void>;
  /** Starts it again: same port, same configuration, same persistence directory. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** A Mosquitto on a free loopback port, anonymous, persisting sessions every second. */
async function startPrivateBroker(root: string): Promise<PrivateBroker> {
  const port = await freeFixedPort();
  const data = join(root, 'mosquitto');
  await mkdir(data);
  // Mosquitto started as root runs as the "mosquitto" user: it must write here.
  await chmod(root, 0o755);
  await chmod(data, 0o777);
  const conf = join(root, 'mosquitto.conf');
  await writeFile(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence true',
      `persistence_location ${data}/`,
      'autosave_interval 1',
      'max_packet_size 262144',
      'log_dest stderr',
      'log_type error',
    ].join('\n') + '\n',
    { mode: 0o644 },
  );
  let child: ChildProcess | null = null;
  let stderr = '';
  async function start(): Promise<void> {
    const c = spawn(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    c.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child = c;
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (c.exitCode !== null) throw new Error(`mosquitto exited: ${stderr}`);
      if (await canConnect(port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`mosquitto did not listen on ${port} in ${START_TIMEOUT_MS} ms: ${stderr}`);
  }
  async function kill(signal: NodeJS.Signals): Promise<void> {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    c.kill(signal);
    const timer = setTimeout(() => c.kill('SIGKILL'), 2_000);
    await exited;
    clearTimeout(timer);
  }
  await start();
  return {
    port,
    crash: () => kill('SIGKILL'),
    restart: start,
    stop: () => kill('SIGTERM'),
  };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

before(async () => {
  if (missing) return;
  dir = await mkdtemp(join(tmpdir(), 'fleet-fault-broker-'));
  const databaseUrl = await resetServiceDatabase();
  broker = await startPrivateBroker(dir);
  [kit, cp] = await Promise.all([
    createFleetBundleKit(),
    runControlPlane({
      config: mergeConfig({
        httpPort: 0,
        dataDir: join(dir, 'control-plane'),
        databaseUrl,
        mqttUrl: `mqtt://127.0.0.1:${broker.port}`,
        logLevel: 'silent',
        rollouts: {
          tickIntervalMs: 200,
          batchWindowMs: 20,
          broadcastMinDelayMs: BROADCAST_DELAY_MS,
        },
      }),
      announce: () => undefined,
    }),
  ]);
  admin = cp.firstAdminToken!;
  await call('PUT', '/v1/trust/root', kit.rootBytes, 'application/octet-stream');
  await call(
    'POST',
    '/v1/models',
    await kit.build({ version: '1.0.0', release: 1 }),
    'application/octet-stream',
  );
  fleet = await startTestFleet(cp, admin, {
    count: FLEET_SIZE,
    idPrefix: `brokerrestart-${Date.now().toString(36)}`,
    agentOptions: {
      downloader: { firstRepairDelayMs: 2_000 },
      session: { minBackoffMs: 100, maxBackoffMs: 1_000 },
    },
  });
  traffic = startBackgroundTraffic(() => fleet!.agents, kit.test, {
    perAgent: 2,
    batch: 2,
    intervalMs: 100,
  });
});

after(async () => {
  await traffic?.stop();
  await fleet?.close();
  await cp?.close();
  await broker?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('broker restarted mid-rollout (private Mosquitto)', () => {
  it(
    'agents and the control plane reconnect to the restarted broker; every agent commits',
    { skip: missing ?? false },
    async () => {
      const agents = fleet!.agents;
      const created = await call<RolloutView>('POST', '/v1/rollouts', {
        model: 'mnist-classmean@1.0.0',
        target: 'all',
        waves: '100%',
        bake: '500ms',
        probation: '1s',
        deviceTimeout: '30s',
        successRatio: '90%',
        maxFailure: '10%',
        minConfidence: 0.3,
      });
      await until(
        () => agents.every((a) => a.agent.state().job?.phase === 'downloading'),
        'every agent to be downloading',
        BROADCAST_DELAY_MS,
      );
      assert.ok(
        agents.every((a) => a.agent.downloader().stats().blocksWritten === 0),
        'no block is in yet: the broadcast is still to come',
      );

      await broker!.crash();
      await until(
        () => agents.every((a) => !a.agent.session().connected()) && !cp!.broker!.isUp(),
        'every agent and the control plane to see the broker gone',
        5_000,
      );
      // Down through the control plane's broadcast.
      await new Promise((r) => setTimeout(r, BROADCAST_DELAY_MS));
      assert.equal(
        (await call<RolloutView>('GET', `/v1/rollouts/${created.id}`)).status,
        'running',
      );
      await broker!.restart();

      await until(
        () => agents.every((a) => a.agent.session().connected()) && cp!.broker!.isUp(),
        'every agent and the control plane to reconnect',
        10_000,
      );
      const done = await until(
        async () => {
          const r = await call<RolloutView>('GET', `/v1/rollouts/${created.id}`);
          return r.status === 'completed' || r.status === 'aborted' ? r : null;
        },
        'the rollout to finish after the broker restart',
        40_000,
      );
      assert.equal(done.status, 'completed', done.reason ?? '');
      assert.equal(done.counts['succeeded'], FLEET_SIZE, JSON.stringify(done.counts));
      for (const a of agents) {
        assert.equal(a.agent.state().committed?.ref.version, '1.0.0', a.id);
        assert.equal(a.agent.state().job, null, a.id);
      }
      await until(
        () => agents.every((a) => a.host.inference.active()?.version === '1.0.0'),
        'every agent to serve v1',
        10_000,
      );
    },
  );
});
