/**
 * What the simulator's service suites share: polling with a bound, an API
 * client for a running control plane, the shared-database reset CI needs, a
 * free fixed loopback port for servers restarted on the same port, the
 * control-plane settings they run with, and a fleet started against it.
 */
import { createServer } from 'node:net';
import { sql } from 'drizzle-orm';
import {
  mergeConfig,
  openDatabase,
  type Config,
  type ControlPlane,
  type ConfigOverrides,
} from '@fleet/control-plane';
import { startSimFleet, type SimFleet, type SimFleetOptions } from '../sim-fleet.ts';

/** Polls `check` until it returns something truthy; throws naming `what` after `timeoutMs`. */
export async function until<T>(
  check: () => Promise<T | null | false> | T | null | false,
  what: string,
  timeoutMs = 30_000,
  options: { pollMs?: number; retryErrors?: boolean } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = options.retryErrors
      ? await Promise.resolve(check()).catch(() => null)
      : await check();
    if (value) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, options.pollMs ?? 50));
  }
}

export interface RolloutView {
  id: string;
  status: string;
  reason: string | null;
  currentWave: number;
  counts: Record<string, number>;
  devices: Array<{
    deviceId: string;
    wave: number;
    status: string;
    attempts: number;
    error: { code: string; message: string } | null;
  }>;
}

/**
 * An API client for the control plane `current()` returns (it may have been
 * restarted), with the operator token `token()` returns.
 */
export function controlPlaneApi(current: () => Pick<ControlPlane, 'url'>, token: () => string) {
  async function call<T>(
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<T> {
    const response = await fetch(`${current().url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token()}`,
        ...(body === undefined ? {} : { 'content-type': contentType }),
      },
      ...(body === undefined
        ? {}
        : { body: body instanceof Uint8Array ? Buffer.from(body) : JSON.stringify(body) }),
      signal: AbortSignal.timeout(15_000),
    });
    const json = (await response.json()) as T & { error?: { code: string; message: string } };
    if (!response.ok) {
      throw new Error(
        `${method} ${path}: ${response.status} ${json.error?.code} ${json.error?.message}`,
      );
    }
    return json;
  }
  return {
    call,
    /** Uploads a bundle to the registry. */
    push: (bundle: Uint8Array) => call('POST', '/v1/models', bundle, 'application/octet-stream'),
    /** Polls a rollout until it is completed or aborted. */
    finished: (id: string, timeoutMs = 60_000) =>
      until(
        async () => {
          const r = await call<RolloutView>('GET', `/v1/rollouts/${id}`);
          return r.status === 'completed' || r.status === 'aborted' ? r : null;
        },
        `rollout ${id} to finish`,
        timeoutMs,
        { pollMs: 100 },
      ),
  };
}

/** With DATABASE_URL set (CI's shared PostgreSQL), empties the tables the fleet suites use. */
export async function resetServiceDatabase(): Promise<string | undefined> {
  const databaseUrl = process.env['DATABASE_URL'];
  if (!databaseUrl) return undefined;
  const db = await openDatabase({ url: databaseUrl });
  await db.db.execute(
    sql`truncate audit_log, device_tags, devices, enrolment_tokens, operator_tokens, model_versions, trust_roots, rollouts, rollout_devices, drift_flushes, drift_pending_windows, drift_windows, drift_cumulative, drift_alerts, fl_rounds, fl_updates, eval_sets, fl_candidates, model_approvals, model_policies cascade`,
  );
  await db.close();
  return databaseUrl;
}

/**
 * A free loopback port in 20000-29999, below the range the OS hands out for
 * port 0, so a suite running alongside cannot take it while a server that
 * must come back on it (a restarted broker) is down.
 */
export async function freeFixedPort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    if (await canListen(port)) return port;
  }
  throw new Error('no free loopback port in 20000-29999 after 50 tries');
}

export function canListen(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * The control-plane settings the fleet suites share: OS-chosen ports, silent
 * logs, fast rollout timing, and CI's PostgreSQL and broker when
 * DATABASE_URL / MQTT_URL are set. `overrides` win (rollout timing merged).
 */
export function fleetTestConfig(
  dataDir: string,
  databaseUrl: string | undefined,
  overrides: ConfigOverrides = {},
): Config {
  return mergeConfig({
    httpPort: 0,
    mqttPort: 0,
    dataDir,
    databaseUrl,
    mqttUrl: process.env['MQTT_URL'],
    logLevel: 'silent',
    ...overrides,
    rollouts: { tickIntervalMs: 200, batchWindowMs: 20, ...overrides.rollouts },
  });
}

/**
 * Starts `count` agents against a running control plane with the suites' fast
 * agent timing (tick 100 ms, no periodic health, first repair after 400 ms);
 * `agentOptions` replace those per field.
 */
export function startTestFleet(
  cp: ControlPlane,
  operatorToken: string,
  options: Pick<SimFleetOptions, 'count' | 'idPrefix' | 'tags' | 'agentOptions' | 'agentOverrides'>,
): Promise<SimFleet> {
  return startSimFleet({
    controlPlaneUrl: cp.url!,
    operatorToken,
    mqttUrl: cp.broker!.deviceUrl,
    ...options,
    agentOptions: {
      tickIntervalMs: 100,
      healthIntervalMs: 0,
      downloader: { firstRepairDelayMs: 400 },
      ...options.agentOptions,
    },
  });
}
