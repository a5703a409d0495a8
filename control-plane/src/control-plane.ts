/**
 * Wires the control plane together: database, blob store, services, broker
 * link, the HTTP app, and the device-state subscription. `createControlPlane`
 * returns everything built and a `close()` that drains and stops it in order
 * (HTTP first, then the broker, then the database).
 *
 * For tests, `{ inMemory: true }` gives an in-memory PGlite and blob store
 * and no broker or HTTP listener: drive `app.request()` directly.
 */
import { join } from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { pino, type Logger } from 'pino';
import { sql } from 'drizzle-orm';
import { allDevicesFilter, isFleetError, parseTopic } from '@fleet/protocol';
import type { Config } from './config.ts';
import type { BlobStore } from './core/models/blob-store.ts';
import { openDatabase, type OpenDatabase } from './adapters/db/database.ts';
import { createAuditStore, type AuditStore } from './adapters/db/audit-store.ts';
import { createDeviceStore } from './adapters/db/device-store.ts';
import { createModelStore } from './adapters/db/model-store.ts';
import { createOperatorTokenStore } from './adapters/db/operator-token-store.ts';
import { createFsBlobStore } from './adapters/blob/fs-blob-store.ts';
import { createMemoryBlobStore } from './adapters/blob/memory-blob-store.ts';
import type { BrokerLink } from './adapters/mqtt/broker-link.ts';
import { createApp } from './adapters/http/app.ts';
import { createMetrics, type Metrics } from './adapters/http/metrics.ts';
import { createDeviceRegistry, type DeviceRegistry } from './services/device-registry.ts';
import { createModelRegistry, type ModelRegistry } from './services/model-registry.ts';
import { createOperators, type Operators } from './services/operators.ts';
import { createRolloutStore } from './adapters/db/rollout-store.ts';
import {
  createBundleDistribution,
  type BundleDistribution,
} from './services/bundle-distribution.ts';
import { createRolloutService, type RolloutService } from './services/rollout-service.ts';
import { createDriftStore } from './adapters/db/drift-store.ts';
import { createDriftService, type DriftService } from './services/drift-service.ts';
import { createDriftReports, type DriftReports } from './services/drift-reports.ts';
import { createDriftProfiles } from './services/drift-profiles.ts';
import { createFlStore } from './adapters/db/fl-store.ts';
import { createFlRounds, type FlRounds } from './services/fl-rounds.ts';
import type { CandidatePort } from './core/fl/candidate-port.ts';
import { createGovernanceStore } from './adapters/db/governance-store.ts';
import { createEvalSets, type EvalSets } from './services/eval-sets.ts';
import { createModelPolicies, type ModelPolicies } from './services/model-policies.ts';
import { createFlCandidates, type FlCandidates } from './services/fl-candidates.ts';
import { createFlTriggers, type FlTriggers } from './services/fl-triggers.ts';

export interface ControlPlaneOptions {
  config: Config;
  nowMs?: () => number;
  logger?: Logger;
  /** In-memory database and blobs, no listeners (tests). */
  inMemory?: boolean;
  /** Starts the broker link; omitted: no MQTT (tests of the HTTP API alone). */
  connectBroker?: (devices: DeviceRegistry, metrics: Metrics) => Promise<BrokerLink>;
  /** Whether to listen for HTTP (false: use `app.request()`). */
  listen?: boolean;
  /** Replaces the candidate pipeline federated rounds evaluate, build and roll out through (tests). */
  flCandidates?: CandidatePort;
}

export interface ControlPlane {
  app: ReturnType<typeof createApp>;
  database: OpenDatabase;
  devices: DeviceRegistry;
  models: ModelRegistry;
  operators: Operators;
  audit: AuditStore;
  /** Where bundle bytes are kept. */
  blobs: BlobStore;
  rollouts: RolloutService;
  /** Drift flushes in, windows scored on a timer (tests call `drift.tick()`). */
  drift: DriftService;
  driftReports: DriftReports;
  /** Federated rounds (tests call `fl.tick()`). */
  fl: FlRounds;
  /** Held-out evaluation sets for federated candidates. */
  evalSets: EvalSets;
  /** Per-model risk tiers and promotion policies. */
  modelPolicies: ModelPolicies;
  /** The candidate pipeline (evaluate, build, sign, register, roll out) and approvals. */
  flCandidates: FlCandidates;
  /** Rounds started by drift alerts and schedules (model policies' flOnDrift, flSchedule). */
  flTriggers: FlTriggers;
  /** Block delivery of bundles over MQTT (its counters are the rollout benchmark's). */
  distribution: BundleDistribution;
  metrics: Metrics;
  broker: BrokerLink | null;
  /** The HTTP URL when listening. */
  url: string | null;
  /** The first admin token when this start created it (print it once). */
  firstAdminToken: string | null;
  close(): Promise<void>;
}

export async function createControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const { config } = options;
  const nowMs = options.nowMs ?? (() => Date.now());
  const logger = options.logger ?? pino({ level: config.logLevel });
  const database = await openDatabase(
    options.inMemory
      ? {}
      : {
          url: config.databaseUrl,
          dataDir: join(config.dataDir, 'db'),
          poolSize: config.databasePoolSize,
        },
  );
  const blobs = options.inMemory
    ? createMemoryBlobStore()
    : createFsBlobStore(join(config.dataDir, 'blobs'));
  const audit = createAuditStore(database.db);
  const deviceStore = createDeviceStore(database.db);
  const modelStore = createModelStore(database.db);
  const driftStore = createDriftStore(database.db);
  const driftReports = createDriftReports({
    store: driftStore,
    models: modelStore,
    policy: config.drift,
    nowMs,
  });
  const metrics = createMetrics({
    deviceCounts: () => deviceStore.countByStatus(),
    driftGauges: () => driftReports.gauges(),
    defaultMetrics: !options.inMemory,
  });
  let broker: BrokerLink | null = null;
  /** Device messages and connection events being applied: awaited on close. */
  const pendingDeviceWork = new Set<Promise<unknown>>();
  const devices = createDeviceRegistry({
    store: deviceStore,
    nowMs,
    disconnect: (id) => broker?.disconnect(id),
  });
  const models = createModelRegistry({ store: modelStore, blobs, nowMs });
  const operators = createOperators({ store: createOperatorTokenStore(database.db), nowMs });
  const firstAdminToken = await operators.bootstrap();
  const distribution = createBundleDistribution({
    blobs,
    nowMs,
    // Blocks go at QoS 0: a lost one is asked for again (repair), and QoS 1
    // would make the broker hold every block for every offline session.
    publish: (topic, payload) => broker?.publish(topic, payload, { qos: 0 }) ?? Promise.resolve(),
  });
  const drift = createDriftService({
    store: driftStore,
    baselines: createDriftProfiles({ models: modelStore, blobs }),
    models: modelStore,
    deviceTags: async (id) => (await deviceStore.get(id))?.tags ?? {},
    policy: config.drift,
    nowMs,
    logger,
    metrics,
    // Bound late: the triggers are built with the rounds below.
    onAlert: (alert) => flTriggers.onDriftAlert(alert),
  });
  const governance = createGovernanceStore(database.db);
  const evalSets = createEvalSets({
    store: governance,
    blobs,
    nowMs,
    maxBytes: config.fl.maxEvalSetBytes,
  });
  const modelPolicies = createModelPolicies({ store: governance, nowMs });
  const flCandidates = createFlCandidates({
    models: modelStore,
    registry: models,
    blobs,
    store: governance,
    evalSets,
    policies: modelPolicies,
    // Bound late: the rollout service and the rounds are built below (and use this).
    rollouts: { create: (request, actor) => rollouts.create(request, actor) },
    approveRound: (roundId, actor) => fl.approve(roundId, actor),
    signingKeysDir: config.fl.signingKeysDir,
    nowMs,
  });
  const fl = createFlRounds({
    store: createFlStore(database.db),
    models: modelStore,
    deviceStore,
    candidates: options.flCandidates ?? flCandidates,
    blobs,
    publish: (topic, payload) => broker?.publish(topic, payload, { qos: 1 }) ?? Promise.resolve(),
    nowMs,
    logger,
    countUpdate: (result) => metrics.flUpdates.inc({ result }),
    countRound: (status) => metrics.flRounds.inc({ status }),
    tickIntervalMs: config.fl.tickIntervalMs,
    maxBufferedBytes: config.fl.maxBufferedUpdateBytes,
    defaults: config.fl.round,
    onTick: () => flTriggers.runSchedules(),
  });
  const flTriggers = createFlTriggers({
    rounds: fl,
    policies: modelPolicies,
    audit,
    nowMs,
    logger,
  });
  const rollouts = createRolloutService({
    store: createRolloutStore(database.db),
    models: modelStore,
    deviceStore,
    devices,
    distribution,
    nowMs,
    logger,
    publish: (topic, payload) => broker?.publish(topic, payload, { qos: 1 }) ?? Promise.resolve(),
    tickIntervalMs: config.rollouts.tickIntervalMs,
    batchWindowMs: config.rollouts.batchWindowMs,
    broadcast: {
      minDelayMs: config.rollouts.broadcastMinDelayMs,
      quietMs: config.rollouts.broadcastQuietMs,
      maxWaitMs: config.rollouts.broadcastMaxWaitMs,
    },
    onDrift: (deviceId, message) => drift.onFlush(deviceId, message),
    onFlUpdate: (deviceId, message) =>
      message.type === 'fl-update'
        ? fl.onUpdate(deviceId, message)
        : fl.onUpdatePart(deviceId, message),
  });
  devices.observeState((deviceId, message) => rollouts.onDeviceState(deviceId, message));

  if (options.connectBroker) {
    broker = await options.connectBroker(devices, metrics);
    await followDeviceState(broker, devices, metrics, logger, pendingDeviceWork);
    await followRolloutMessages(broker, rollouts, metrics, logger, pendingDeviceWork);
  }
  if (!options.inMemory) {
    rollouts.start();
    drift.start();
    await fl.start();
  }

  const app = createApp({
    devices,
    models,
    modelStore,
    blobs,
    operators,
    rollouts,
    drift: driftReports,
    fl,
    governance: {
      evalSets,
      policies: modelPolicies,
      candidates: flCandidates,
      maxEvalSetBytes: config.fl.maxEvalSetBytes,
    },
    audit,
    metrics,
    logger,
    maxBundleBytes: config.maxBundleBytes,
    nowMs,
    deviceMqttUrl: broker?.deviceUrl ?? null,
    health: {
      database: async () => {
        await database.db.execute(sql`select 1`);
      },
      ...(broker ? { broker: () => brokerHealth(broker) } : {}),
    },
  });

  let server: ServerType | null = null;
  let url: string | null = null;
  const inFlight = { count: 0 };
  if (options.listen) {
    const countedFetch = async (request: Request) => {
      inFlight.count++;
      try {
        return await app.fetch(request);
      } finally {
        inFlight.count--;
      }
    };
    ({ server, url } = await listen(countedFetch, config));
    logger.info(
      { url, broker: broker?.deviceUrl, database: database.kind },
      'control plane listening',
    );
  }

  return {
    app,
    database,
    devices,
    models,
    operators,
    audit,
    blobs,
    rollouts,
    drift,
    driftReports,
    fl,
    evalSets,
    modelPolicies,
    flCandidates,
    flTriggers,
    distribution,
    metrics,
    broker,
    url,
    firstAdminToken,
    async close() {
      if (server) await drain(server, inFlight, config.shutdownGraceMs);
      await broker?.close(); // no new device messages after this
      await Promise.allSettled(pendingDeviceWork);
      await rollouts.close();
      await drift.close();
      await fl.close();
      await distribution.close();
      await database.close();
    },
  };
}

function brokerHealth(broker: BrokerLink): Promise<void> {
  return broker.isUp()
    ? Promise.resolve()
    : Promise.reject(new Error(`${broker.kind} broker is not connected`));
}

/** Keeps device rows current from signed state messages and connection events. */
async function followDeviceState(
  broker: BrokerLink,
  devices: DeviceRegistry,
  metrics: Metrics,
  logger: Logger,
  pending: Set<Promise<unknown>>,
): Promise<void> {
  const track = <T>(work: Promise<T>): Promise<T> => {
    pending.add(work);
    return work.finally(() => pending.delete(work));
  };
  broker.onConnection?.((deviceId, online) => {
    metrics.mqttConnections.inc(online ? 1 : -1);
    void track(
      devices
        .onConnection(deviceId, online)
        .catch((error: unknown) =>
          logger.warn({ err: error, deviceId }, 'connection update failed'),
        ),
    );
  });
  await broker.subscribe(allDevicesFilter('state'), (topic, payload) =>
    track(applyState(devices, metrics, logger, topic, payload)),
  );
}

/** Device progress, probation health and repair requests go to the rollout service. */
async function followRolloutMessages(
  broker: BrokerLink,
  rollouts: RolloutService,
  metrics: Metrics,
  logger: Logger,
  pending: Set<Promise<unknown>>,
): Promise<void> {
  // MQTT 3.1.1 4.6: a topic is ordered, and a device's messages on one topic
  // are applied in that order (an fl-update header before its parts; a
  // progress report before the next). Topics run concurrently.
  const chains = new Map<string, Promise<void>>();
  const inTopicOrder = (topic: string, work: () => Promise<void>): Promise<void> => {
    // A refused message (rejected work) must not hold up or fail the next one.
    const next = (chains.get(topic) ?? Promise.resolve()).then(work);
    const settled = next.then(
      () => undefined,
      () => undefined,
    );
    chains.set(topic, settled);
    void settled.then(() => {
      if (chains.get(topic) === settled) chains.delete(topic);
    });
    return next;
  };
  for (const channel of ['evt', 'telemetry', 'blocks/req'] as const) {
    await broker.subscribe(allDevicesFilter(channel), (topic, payload) => {
      const work = inTopicOrder(topic, () => rollouts.onDeviceMessage(topic, payload)).then(
        () => metrics.deviceMessages.inc({ topic: channel, result: 'ok' }),
        (error: unknown) => {
          const code = isFleetError(error) ? error.code : 'error';
          metrics.deviceMessages.inc({ topic: channel, result: code });
          logger.warn(
            { topic, code, err: isFleetError(error) ? undefined : error },
            'device message refused',
          );
        },
      );
      pending.add(work);
      return work.finally(() => pending.delete(work));
    });
  }
}

async function applyState(
  devices: DeviceRegistry,
  metrics: Metrics,
  logger: Logger,
  topic: string,
  payload: Uint8Array,
): Promise<void> {
  const parsed = parseTopic(topic);
  if (parsed?.kind !== 'device') return;
  try {
    const applied = await devices.onStateMessage(parsed.deviceId, payload);
    metrics.deviceMessages.inc({ topic: 'state', result: applied ? 'ok' : 'stale' });
  } catch (error) {
    const code = isFleetError(error) ? error.code : 'error';
    metrics.deviceMessages.inc({ topic: 'state', result: code });
    logger.warn(
      { deviceId: parsed.deviceId, code, err: isFleetError(error) ? undefined : error },
      'state message refused',
    );
  }
}

async function listen(fetch: (request: Request) => Response | Promise<Response>, config: Config) {
  return new Promise<{ server: ServerType; url: string }>((resolve, reject) => {
    const server = serve({ fetch, port: config.httpPort, hostname: config.httpHost }, (info) =>
      resolve({ server, url: `http://${config.httpHost}:${info.port}` }),
    );
    server.once('error', reject);
  });
}

/**
 * Stops accepting connections, waits (at most `graceMs`) until no request is
 * being handled, then closes the remaining (idle keep-alive) connections.
 */
async function drain(
  server: ServerType,
  inFlight: { count: number },
  graceMs: number,
): Promise<void> {
  server.close();
  const deadline = Date.now() + graceMs;
  while (inFlight.count > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  if ('closeAllConnections' in server) server.closeAllConnections();
}
