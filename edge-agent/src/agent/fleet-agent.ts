/**
 * One agent, assembled: its MQTT session, the update driver with its effects,
 * the block downloader, the reporter, drift monitoring with its outbox
 * (drift-reporting.ts), feedback (delayed labels kept as labelled samples,
 * online accuracy in the health report: core/feedback.ts), federated rounds
 * (`fl-train` commands: fl-training.ts), and the timers
 * that tick the update machine and the drift monitor and send health reports. Used by the `fleet-agent` daemon (main.ts)
 * and, many at once, by the simulator (each with its own session and state,
 * models shared through the model host's runtime).
 *
 * Commands arrive on `dev/{id}/cmd` and are parsed strictly (protocol
 * `parseCommand`); a malformed one is counted and dropped, and changes
 * nothing (THREATS 33). Blocks arrive on the bundle topics.
 */
import { randomUUID } from 'node:crypto';
import {
  deviceTopic,
  isFleetError,
  parseCommand,
  parseTopic,
  type CommandMessage,
} from '@fleet/protocol';
import { createAgentSession } from '../adapters/mqtt/agent-session.ts';
import { createMemoryDriftOutboxStore } from '../adapters/memory/memory-stores.ts';
import { createMemoryLabelStore } from '../adapters/memory/memory-label-store.ts';
import { createFeedback } from '../core/feedback.ts';
import type { InferenceObserver } from '../core/inference-service.ts';
import type { LabelledSampleStore, LabelRetention } from '../core/labelled-samples.ts';
import type { RecentInferenceBounds } from '../core/recent-inferences.ts';
import { createDriftOutbox } from '../core/drift-outbox.ts';
import { driftSampleRate } from '../core/drift-profile-check.ts';
import type { DriftOutboxStore } from '../core/storage.ts';
import { initialAgentState, installOf, type AgentState } from '../core/update-state.ts';
import { signMqttCredential } from '@fleet/protocol';
import { createBlockDownloader } from './block-downloader.ts';
import { createDriftReporting } from './drift-reporting.ts';
import { createReporter } from './reporter.ts';
import { createUpdateDriver, type UpdateDriver } from './update-driver.ts';
import { createUpdateEffects, errorReport } from './update-effects.ts';
import { handleRollback, type RollbackCheck } from './rollback-command.ts';
import { createFlTraining } from './fl-training.ts';
import { sharedTrainingPool } from '../adapters/tfjs/training-pool.ts';
import type { AgentEvent, FleetAgent, FleetAgentOptions } from './fleet-agent-types.ts';

export type { AgentEvent, FleetAgent, FleetAgentOptions } from './fleet-agent-types.ts';

export const AGENT_VERSION = '0.1.0';

/**
 * Rows an agent remembers for feedback unless told otherwise: 256 rows
 * (0.8 MB of MNIST rows), so the simulator's many agents a process stay
 * small. The daemon's config sets 4,096 (config.ts).
 */
export const AGENT_RECENT_INFERENCE_BOUNDS: RecentInferenceBounds = Object.freeze({
  maxRows: 256,
  maxAgeMs: 60 * 60 * 1000,
});

export function createFleetAgent(options: FleetAgentOptions): FleetAgent {
  const nowMs = options.nowMs ?? (() => Date.now());
  const agentVersion = options.agentVersion ?? AGENT_VERSION;
  const { deviceId, hardware } = options;
  const cmdTopic = deviceTopic(deviceId, 'cmd');
  /** Repair blocks the control plane sends to this device alone. */
  const blocksTopic = deviceTopic(deviceId, 'blocks');
  const timers: NodeJS.Timeout[] = [];
  let driver: UpdateDriver | null = null;
  let stopped = false;

  const emit = (event: AgentEvent) => options.onEvent?.(event);
  const currentState = () => {
    if (!driver) throw new Error(`agent ${deviceId} not started`);
    return driver.state();
  };

  const session = (options.createSession ?? createAgentSession)({
    url: options.mqttUrl,
    deviceId,
    credential: () =>
      signMqttCredential({ deviceId, clientId: deviceId, nowMs: nowMs(), signer: options.signer }),
    will: () => reporter.stateBytes(currentStateOrInitial(), false),
    willTopic: deviceTopic(deviceId, 'state'),
    onMessage: (topic, payload) => void onMessage(topic, payload),
    onConnect: () => {
      emit({ type: 'connected' });
      if (driver) void reporter.publishState(driver.state()).catch(() => undefined);
      drift.onConnect();
    },
    onDisconnect: () => emit({ type: 'disconnected' }),
    ...(options.random ? { random: options.random } : {}),
    ...options.session,
  });

  const labels =
    options.stores.labels ?? memoryLabelsOf(options.stores, nowMs, options.feedback?.retention);
  const reporter = createReporter({
    deviceId,
    hardware,
    agentVersion,
    signer: options.signer,
    nowMs,
    publish: (topic, payload, publishOptions) => session.publish(topic, payload, publishOptions),
    // Every health report (periodic and probation) tells how many labelled samples are held.
    storedSamples: () => labels.count(),
  });

  const drift = createDriftReporting({
    outbox: createDriftOutbox({
      store: options.stores.driftOutbox ?? memoryOutboxOf(options.stores),
      nowMs,
      ...(options.drift?.outboxBounds ? { bounds: options.drift.outboxBounds } : {}),
    }),
    nowMs,
    random: options.random ?? Math.random,
    newId: options.drift?.newId ?? randomUUID,
    encode: (flush) => reporter.driftReport(flush),
    send: (bytes) =>
      session.publish(deviceTopic(deviceId, 'telemetry'), bytes, { qos: 1, retain: false }),
    connected: () => session.connected(),
    ...(options.drift?.maxInFlight ? { maxInFlight: options.drift.maxInFlight } : {}),
    onEvent: emit,
  });

  const feedback = createFeedback({
    store: labels,
    nowMs,
    recent: { ...AGENT_RECENT_INFERENCE_BOUNDS, ...options.feedback?.recent },
  });
  const observer: InferenceObserver = (ref, inputs, outputs, batch, id) => {
    try {
      drift.observer(ref, inputs, outputs, batch, id);
    } finally {
      feedback.observer(ref, inputs, outputs, batch, id);
    }
  };

  async function openLabels(): Promise<void> {
    try {
      const report = await labels.open();
      for (const entry of report.corrupt) {
        const message = `${entry.name}: ${entry.reason} (moved to ${entry.movedTo})`;
        emit({ type: 'labels-corrupt', code: 'AGENT_STATE_CORRUPT', message });
      }
    } catch (error) {
      emit({ type: 'labels-error', message: String(error) });
    }
  }

  const flTraining = createFlTraining({
    deviceId,
    hardware,
    agentVersion,
    trustRoot: options.trustRoot,
    signer: options.signer,
    nowMs,
    state: currentState,
    slots: options.stores.slots,
    samples: labels,
    trainer: () => options.trainer ?? sharedTrainingPool(),
    publish: (topic, payload, publishOptions) => session.publish(topic, payload, publishOptions),
    ...(options.flUpdateOverride ? { flUpdateOverride: options.flUpdateOverride } : {}),
    onEvent: emit,
    onError: (message) => emit({ type: 'action-error', action: 'fl-update', message }),
  });

  let lastProgressAt = 0;
  const downloader = createBlockDownloader({
    downloads: options.stores.downloads,
    ...(options.timers ? { timers: options.timers } : {}),
    ...(options.random ? { random: options.random } : {}),
    ...options.downloader,
    transport: {
      subscribe: (topic) => session.subscribe(topic),
      unsubscribe: (topic) => session.unsubscribe(topic),
      requestBlocks: (request) => reporter.publishBlocksRequest(request),
    },
    onProgress: (bundleId, received, blockCount) => {
      const job = driver?.state().job;
      const now = nowMs();
      // At most one progress report a second, plus the last block.
      if (!job || (now - lastProgressAt < 1_000 && received < blockCount)) return;
      lastProgressAt = now;
      void reporter
        .publishProgress({
          rolloutId: job.rolloutId,
          bundleId,
          state: 'downloading',
          blocksReceived: received,
          blockCount,
          error: null,
        })
        .catch(() => undefined);
    },
    onComplete: (bundleId) => void driver?.dispatch({ type: 'download-complete', bundleId }),
    onFailed: (bundleId, error) =>
      void driver?.dispatch({ type: 'download-failed', bundleId, error }),
  });

  function currentStateOrInitial(): AgentState {
    return driver ? driver.state() : initialAgentState();
  }

  const rollbackCheck: RollbackCheck = {
    deviceId,
    hardware,
    nowMs,
    trustRoot: options.trustRoot,
  };

  async function onMessage(topic: string, payload: Uint8Array): Promise<void> {
    if (stopped || !driver) return;
    if (topic === cmdTopic) {
      let command: CommandMessage;
      try {
        command = parseCommand(payload);
      } catch (error) {
        emit({
          type: 'command-refused',
          code: isFleetError(error) ? error.code : 'MALFORMED',
          message: String(error),
        });
        return;
      }
      await onCommand(command);
      return;
    }
    if (topic === blocksTopic || parseTopic(topic)?.kind === 'bundle-blocks') {
      await downloader.onFrame(payload);
    }
  }

  async function onCommand(command: CommandMessage): Promise<void> {
    const d = driver!;
    switch (command.type) {
      case 'deploy':
        return d.dispatch({ type: 'deploy', command });
      case 'cancel':
        return d.dispatch({
          type: 'cancel',
          commandId: command.id,
          rolloutId: command.rolloutId,
          reason: command.reason ?? 'cancelled by the control plane',
        });
      case 'rollback': {
        const outcome = await handleRollback(command, d.state(), rollbackCheck);
        if (outcome.ok) return d.dispatch(outcome.input);
        emit({ type: 'command-refused', code: outcome.error.code, message: outcome.error.message });
        await reporter.publishState(d.state()).catch(() => undefined);
        return;
      }
      case 'fl-train':
        return flTraining.handle(command);
    }
  }

  return {
    deviceId,
    async start(startOptions = {}) {
      const effects = createUpdateEffects({
        deviceId,
        hardware,
        agentVersion,
        trustRoot: options.trustRoot,
        nowMs,
        downloads: options.stores.downloads,
        slots: options.stores.slots,
        downloader,
        host: options.host,
        reporter,
        state: () => driver!.state(),
        onServe: (model, checked, driftError) => {
          if (driftError)
            emit({ type: 'drift-error', ...errorReport(driftError, 'DRIFT_PROFILE') });
          if (!checked) return drift.setModel(null);
          // Probation traffic is the new bundle's: its sketches are that bundle's.
          const install = installOf(driver!.state(), model.bundleId);
          drift.setModel({
            ref: model,
            rolloutId: install.rolloutId,
            ...checked,
            sampleRate: driftSampleRate(checked.spec, install.driftSampleRate),
          });
        },
      });
      driver = createUpdateDriver({
        store: options.stores.state,
        run: effects,
        nowMs,
        onActionError: (action, error) =>
          emit({ type: 'action-error', action: action.type, message: String(error) }),
      });
      await drift.start();
      await openLabels();
      options.host.observeInferences(observer);
      await driver.start();
      await session.subscribe(cmdTopic);
      await session.subscribe(blocksTopic);
      await session.start(startOptions.connectTimeoutMs);
      const tickMs = options.tickIntervalMs ?? 1_000;
      timers.push(
        setInterval(() => {
          void driver?.dispatch({ type: 'tick' });
          drift.tick();
        }, tickMs),
      );
      const healthMs = options.healthIntervalMs ?? 60_000;
      if (healthMs > 0) {
        timers.push(
          setInterval(() => {
            // On probation the window belongs to the probation verdict, which reports it.
            if (driver?.state().job?.phase === 'probation') return;
            const health = options.host.takeHealth();
            if (!health) return;
            const counts = feedback.takeWindow(health.model);
            const report = counts.labelled > 0 ? { ...health, feedback: counts } : health;
            void reporter.publishHealth(report).catch(() => undefined);
          }, healthMs),
        );
      }
    },
    state: currentState,
    session: () => session,
    downloader: () => downloader,
    drift: () => drift,
    driftStats: () => drift.stats(),
    feedback: (id, label) => feedback.label(id, label),
    feedbackMany: (items) => feedback.labelMany(items),
    feedbackStats: () => feedback.stats(),
    feedbackService: () => feedback,
    labelledSamples: {
      read: (readOptions) => labels.read(readOptions),
      count: () => labels.count(),
    },
    flTraining: () => flTraining,
    settle: async () => {
      await driver?.dispatch({ type: 'tick' });
    },
    crash() {
      stopped = true;
      for (const t of timers) clearInterval(t);
      flTraining.close();
      driver?.stop();
      downloader.close();
      drift.kill();
      options.host.observeInferences(null);
      session.kill();
    },
    async close() {
      stopped = true;
      for (const t of timers) clearInterval(t);
      flTraining.close();
      downloader.close();
      driver?.stop();
      options.host.observeInferences(null);
      await drift.close();
      // A clean DISCONNECT suppresses the will, so say "offline" ourselves (with a
      // fresh timestamp, which the control plane takes as newer than the last state).
      if (driver && session.connected()) {
        const offline = reporter.publishState(driver.state(), false).catch(() => undefined);
        let timer: NodeJS.Timeout | undefined;
        const gaveUp = new Promise((r) => (timer = setTimeout(r, 2_000)));
        await Promise.race([offline, gaveUp]);
        clearTimeout(timer); // else the process lives on for the 2 s
      }
      await session.close();
    },
  };
}

const memoryOutboxes = new WeakMap<object, DriftOutboxStore>();

/** The in-memory drift outbox store of a set of stores, the same for every agent made on them. */
function memoryOutboxOf(stores: object): DriftOutboxStore {
  let store = memoryOutboxes.get(stores);
  if (!store) {
    store = createMemoryDriftOutboxStore();
    memoryOutboxes.set(stores, store);
  }
  return store;
}

const memoryLabels = new WeakMap<object, LabelledSampleStore>();

/** The in-memory label store of a set of stores, the same for every agent made on them. */
function memoryLabelsOf(
  stores: object,
  nowMs: () => number,
  retention: Partial<LabelRetention> | undefined,
): LabelledSampleStore {
  let store = memoryLabels.get(stores);
  if (!store) {
    store = createMemoryLabelStore({ nowMs, ...(retention ? { retention } : {}) });
    memoryLabels.set(stores, store);
  }
  return store;
}
