/**
 * Drives the pure rollout engine (core/rollouts/rollout-engine.ts) against
 * the database, the broker and the clock:
 *
 *   events in     device progress (`evt`) and state (`state`), probation
 *                 health (`telemetry`), operator pause / resume / abort, a
 *                 timer tick, and devices that come online matching a
 *                 rollout's target (they join)
 *   one step      per rollout, events are applied in arrival order inside
 *                 one database transaction holding the rollout's row lock
 *                 (rollout-store `update`), with every decision appended to
 *                 the audit log in the same transaction; events that arrive
 *                 together are applied in one transaction (a batch), so a
 *                 wave of a thousand reports is not a thousand transactions
 *   out           after the commit, the commands are published (deploy,
 *                 cancel; a rollback needs a signed authorization, which the
 *                 control plane does not hold, so it is recorded as needed),
 *                 and when a wave starts its bundle's blocks are broadcast
 *
 * A control plane restarted mid-rollout picks up where the database says:
 * the tick resumes timeouts, retries and waves. A crash between a commit and
 * its publishes leaves devices "sent" with nothing sent; their timeout and
 * retry cover it.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import {
  deviceTopic,
  encodeControlMessage,
  fromBase64,
  isFleetError,
  loadTrustedRoot,
  parseTopic,
  rollbackAuthorizationSchema,
  validateMessage,
  verifyRollbackAuthorization,
  verifyDeviceMessage,
  type BundleModelRef,
  type CommandMessage,
  type DeployMessage,
  type DeviceMessage,
  type ErrorReport,
  type SignedEnvelope,
  type StateMessage,
  type UpdateState,
} from '@fleet/protocol';
import { controlPlaneError } from '../core/errors.ts';
import { startRollout, stepRolloutEvents } from '../core/rollouts/rollout-engine.ts';
import type {
  RolloutCommand,
  RolloutDecision,
  RolloutEvent,
} from '../core/rollouts/rollout-events.ts';
import type {
  RolloutPolicy,
  RolloutSnapshot,
  TargetSelector,
} from '../core/rollouts/rollout-types.ts';
import { matchesSelector } from '../core/rollouts/target-selector.ts';
import { createBroadcastGate, type BroadcastGateOptions } from './broadcast-gate.ts';
import { createRoutingCache } from './rollout-routing.ts';
import type {
  RolloutAudit,
  RolloutListQuery,
  RolloutState,
  RolloutStore,
  RolloutSummary,
} from '../adapters/db/rollout-store.ts';
import type { ModelStore } from '../adapters/db/model-store.ts';
import type { DeviceStore } from '../adapters/db/device-store.ts';
import { SYSTEM_ACTOR, type Actor } from '../adapters/db/actor.ts';
import type { DeviceRegistry } from './device-registry.ts';
import type { BundleDistribution } from './bundle-distribution.ts';

export interface CreateRolloutRequest {
  model: { name: string; version: string };
  selector: TargetSelector;
  policy: RolloutPolicy;
}

export interface RolloutServiceOptions {
  store: RolloutStore;
  models: ModelStore;
  deviceStore: DeviceStore;
  devices: DeviceRegistry;
  distribution: BundleDistribution;
  publish: (topic: string, payload: Uint8Array) => Promise<void>;
  nowMs: () => number;
  logger: Logger;
  random?: () => number;
  /** How often timers (timeouts, retries, bake) are checked. */
  tickIntervalMs?: number;
  /** Events arriving within this window are applied in one transaction. */
  batchWindowMs?: number;
  /** When a wave's blocks are broadcast (services/broadcast-gate.ts); defaults in config.ts. */
  broadcast?: Partial<Pick<BroadcastGateOptions, 'minDelayMs' | 'quietMs' | 'maxWaitMs'>>;
  /** Verified drift flushes (`telemetry`) go here (services/drift-service.ts). */
  onDrift?: (
    deviceId: string,
    message: Extract<DeviceMessage, { type: 'drift' }>,
  ) => Promise<unknown>;
  /** Verified federated updates and their parts (`telemetry`) go here (services/fl-rounds.ts). */
  onFlUpdate?: (
    deviceId: string,
    message: Extract<DeviceMessage, { type: 'fl-update' | 'fl-update-part' }>,
  ) => Promise<unknown>;
}

/** Deploy commands published at once; the broker queues each, so more only adds memory. */
const SEND_CONCURRENCY = 64;

export interface RolloutService {
  create(request: CreateRolloutRequest, actor: Actor): Promise<RolloutState>;
  get(id: string): Promise<RolloutState>;
  /** Newest first, with device counts per status; `cursor` is the last id of the previous page. */
  list(query: RolloutListQuery): Promise<RolloutSummary[]>;
  pause(id: string, actor: Actor, reason: string): Promise<RolloutState>;
  resume(id: string, actor: Actor): Promise<RolloutState>;
  abort(id: string, actor: Actor, reason: string): Promise<RolloutState>;
  /**
   * Sends a signed rollback instruction (made offline with the bundle keys) to
   * every device that committed this rollout's model, after checking it for
   * each device exactly as the agent will; devices it does not cover are
   * listed with the reason. Throws INVALID_REQUEST when it covers none.
   */
  rollback(
    id: string,
    authorization: unknown,
    actor: Actor,
    reason: string,
  ): Promise<RollbackResult>;
  /** A payload on a device's `evt`, `telemetry` or `blocks/req` topic. */
  onDeviceMessage(topic: string, payload: Uint8Array): Promise<void>;
  /** A verified state message (applied by the device registry first). */
  onDeviceState(deviceId: string, state: StateMessage): Promise<void>;
  /** Steps every active rollout with a tick (also runs on its own timer once started). */
  tick(): Promise<void>;
  /** Applies every queued event now. */
  flush(): Promise<void>;
  start(): void;
  close(): Promise<void>;
}

export interface RollbackResult {
  sent: string[];
  skipped: Array<{ deviceId: string; code: string; message: string }>;
}

/** Decisions too many to audit one by one: each device's success is in its rollout row. */
const UNAUDITED: ReadonlySet<RolloutDecision['kind']> = new Set(['device-succeeded']);

export function createRolloutService(options: RolloutServiceOptions): RolloutService {
  const { store, logger } = options;
  const batchWindowMs = options.batchWindowMs ?? 50;
  const gate = createBroadcastGate({
    minDelayMs: options.broadcast?.minDelayMs ?? 0,
    quietMs: options.broadcast?.quietMs ?? 3_000,
    maxWaitMs: options.broadcast?.maxWaitMs ?? 30_000,
    nowMs: options.nowMs,
    broadcast: (bundleId) =>
      void options.distribution
        .broadcast(bundleId)
        .catch((error: unknown) => logger.warn({ err: error, bundleId }, 'block broadcast failed')),
  });
  const queues = new Map<string, RolloutEvent[]>();
  const chains = new Map<string, Promise<unknown>>();
  let tickTimer: NodeJS.Timeout | null = null;
  let flushTimer: NodeJS.Timeout | null = null;
  let closed = false;
  const deployCache = new Map<string, Promise<Pick<DeployMessage, 'bundle' | 'model'>>>();
  const routing = createRoutingCache(store, options.nowMs, options.tickIntervalMs ?? 1_000);

  /** Runs `work` after every earlier step of the same rollout (one writer per rollout per process). */
  function serialized<T>(id: string, work: () => Promise<T>): Promise<T> {
    const previous = chains.get(id) ?? Promise.resolve();
    const next = previous.then(work, work);
    const settled = next.catch(() => undefined);
    chains.set(id, settled);
    void settled.then(() => {
      if (chains.get(id) === settled) chains.delete(id);
    });
    return next;
  }

  function enqueue(id: string, event: RolloutEvent): void {
    if (closed) return;
    const queue = queues.get(id) ?? [];
    queue.push(event);
    queues.set(id, queue);
    flushTimer ??= setTimeout(() => {
      flushTimer = null;
      void flushAll();
    }, batchWindowMs);
  }

  async function flushAll(): Promise<void> {
    const ids = [...queues.keys()];
    await Promise.all(ids.map((id) => serialized(id, () => applyQueued(id))));
  }

  async function applyQueued(id: string): Promise<void> {
    const events = queues.get(id);
    queues.delete(id);
    if (!events?.length) return;
    await applyEvents(id, events, SYSTEM_ACTOR).catch((error: unknown) =>
      logger.warn({ err: error, rolloutId: id, events: events.length }, 'rollout step failed'),
    );
  }

  /**
   * Steps the rollout through `events` in one transaction, then carries out
   * the commands. Null when the events changed nothing.
   */
  async function applyEvents(
    id: string,
    events: RolloutEvent[],
    actor: Actor,
  ): Promise<RolloutState | null> {
    const commands: RolloutCommand[] = [];
    const decisions: RolloutDecision[] = [];
    let model: BundleModelRef | null = null;
    const result = await store.update(
      id,
      (current) => {
        // The batch as one engine step, at one time (rollout-engine.ts
        // `stepRolloutEvents`: the result of stepping event by event, without
        // settling over every device after each of them).
        const step = stepRolloutEvents({
          rollout: current.rollout,
          devices: current.devices,
          events,
          nowMs: options.nowMs(),
          ...(options.random ? { random: options.random } : {}),
        });
        const { rollout } = step;
        commands.push(...step.commands);
        decisions.push(...step.decisions);
        model = rollout.model;
        if (rollout === current.rollout && step.devices.length === 0) return null;
        const known = new Set(current.devices.map((d) => d.deviceId));
        return {
          rollout,
          changedDevices: step.devices.filter((d) => known.has(d.deviceId)),
          newDevices: step.devices.filter((d) => !known.has(d.deviceId)),
          audit: auditOf(decisions),
        };
      },
      actor,
      new Date(options.nowMs()),
    );
    // null: the events changed nothing (the store throws NOT_FOUND for an unknown id).
    if (!result) return null;
    routing.stepped(result);
    if (model) await carryOut(result.rollout, commands, decisions);
    return result;
  }

  function auditOf(decisions: RolloutDecision[]): RolloutAudit[] {
    return decisions
      .filter((d) => !UNAUDITED.has(d.kind))
      .map((d): RolloutAudit => ({ action: `rollout.${d.kind}`, detail: { ...d } }));
  }

  async function deployParts(
    model: BundleModelRef,
  ): Promise<Pick<DeployMessage, 'bundle' | 'model'>> {
    let cached = deployCache.get(model.bundleId);
    if (!cached) {
      cached = (async () => {
        const row = await options.models.getByBundleId(model.bundleId);
        if (!row)
          throw controlPlaneError('NOT_FOUND', `bundle ${model.bundleId} is not registered`);
        const plan = await options.distribution.plan(model.bundleId);
        const manifestEnvelope = JSON.parse(
          Buffer.from(row.manifestEnvelope, 'base64').toString('utf8'),
        ) as SignedEnvelope;
        return {
          bundle: {
            bundleId: plan.bundleId,
            sizeBytes: plan.sizeBytes,
            blockSizeBytes: plan.blockSizeBytes,
            blockCount: plan.blockCount,
            blockRoot: plan.blockRoot,
            manifestEnvelope: manifestEnvelope as DeployMessage['bundle']['manifestEnvelope'],
          },
          model: { name: row.name, version: row.version, release: row.release },
        };
      })();
      deployCache.set(model.bundleId, cached);
      cached.catch(() => deployCache.delete(model.bundleId));
    }
    return cached;
  }

  function header<T extends CommandMessage['type']>(type: T) {
    return {
      type,
      id: randomUUID(),
      schemaVersion: 1 as const,
      ts: new Date(options.nowMs()).toISOString(),
    };
  }

  async function send(deviceId: string, message: CommandMessage): Promise<void> {
    await options.publish(deviceTopic(deviceId, 'cmd'), encodeControlMessage(message));
  }

  async function carryOut(
    rollout: RolloutSnapshot,
    commands: RolloutCommand[],
    decisions: RolloutDecision[],
  ): Promise<void> {
    const parts = commands.some((c) => c.type === 'deploy')
      ? await deployParts(rollout.model)
      : null;
    // A wave's blocks go out once its devices are subscribed (broadcast-gate.ts).
    // The gate expects them before the deploys go out: a device can be ready
    // before the last of a large wave's deploys is sent (10,000 deploys took
    // seconds), and a readiness report no gate waits for is ignored; the
    // broadcast then waited for the gate's maximum wait. Deploys outside a
    // wave start (retries, devices joining) are fetched by repair requests.
    const waveStart = decisions.some((d) => d.kind === 'started' || d.kind === 'wave-started');
    const bundleId = rollout.model.bundleId;
    if (waveStart)
      gate.expect(
        bundleId,
        commands.filter((c) => c.type === 'deploy').map((c) => c.deviceId),
      );
    const notSent: string[] = [];
    await forEachConcurrently(commands, SEND_CONCURRENCY, async (command) => {
      try {
        if (command.type === 'deploy') {
          await send(command.deviceId, {
            ...header('deploy'),
            rolloutId: rollout.id,
            ...parts!,
            deadline: new Date(command.deadlineMs).toISOString(),
            probation: {
              durationMs: rollout.policy.probationMs,
              maxErrorRate: rollout.policy.gates.maxErrorRate,
              maxLatencyP95Ms: rollout.policy.gates.maxLatencyP95Ms,
              minMeanConfidence: rollout.policy.gates.minMeanConfidence,
            },
            ...(rollout.policy.driftSampleRate === undefined
              ? {}
              : { drift: { sampleRate: rollout.policy.driftSampleRate } }),
          });
        } else if (command.type === 'cancel') {
          await send(command.deviceId, {
            ...header('cancel'),
            rolloutId: rollout.id,
            reason: command.reason.slice(0, 500),
          });
        } else {
          // A committed device goes back only on a signed rollback instruction
          // (ARCHITECTURE "Trust"); no single online key may sign one, so the
          // control plane holds none. The decision is recorded; operators sign
          // one offline and send it with `rollback()`.
          logger.warn(
            { rolloutId: rollout.id, deviceId: command.deviceId, to: command.to?.version ?? null },
            'rollback needs a signed rollback instruction; none is held by the control plane',
          );
        }
      } catch (error) {
        if (command.type === 'deploy') notSent.push(command.deviceId);
        logger.warn(
          { err: error, rolloutId: rollout.id, command: command.type },
          'command not sent',
        );
      }
    });
    if (waveStart) gate.forget(bundleId, notSent); // they will not say they are ready
  }

  async function verified(deviceId: string, payload: Uint8Array): Promise<DeviceMessage | null> {
    const device = await options.devices.lookup(deviceId);
    if (!device || device.revoked) return null;
    return verifyDeviceMessage(payload, {
      expectedDeviceId: deviceId,
      publicKey: device.publicKey,
      keyId: device.keyId,
    });
  }

  /** A device's update status (from `progress`, or the `update` of its `state`) goes to the rollout it names. */
  function routeReport(
    deviceId: string,
    report: {
      rolloutId?: string | undefined;
      bundleId?: string | undefined;
      state: UpdateState;
      error?: ErrorReport | undefined;
    },
  ): void {
    if (!report.rolloutId || !report.bundleId) return;
    enqueue(report.rolloutId, {
      type: 'device-report',
      deviceId,
      rolloutId: report.rolloutId,
      bundleId: report.bundleId,
      state: report.state,
      error: report.error ?? null,
    });
  }

  async function operatorStep(
    id: string,
    event: RolloutEvent,
    actor: Actor,
  ): Promise<RolloutState> {
    return serialized(id, async () => {
      await applyQueued(id); // what devices said before the operator acted comes first
      // Null: the operator's event changed nothing (the store throws NOT_FOUND for an unknown id).
      return (await applyEvents(id, [event], actor)) ?? (await store.get(id))!;
    });
  }

  return {
    async create(request, actor) {
      const versions = await options.models.listVersions(request.model.name);
      const row = versions.find((v) => v.version === request.model.version);
      if (!row) {
        throw controlPlaneError(
          'NOT_FOUND',
          `model ${request.model.name}@${request.model.version} is not registered`,
        );
      }
      const model: BundleModelRef = {
        name: row.name,
        version: row.version,
        release: row.release,
        bundleId: row.bundleId,
      };
      await deployParts(model); // the bundle is in the blob store and can be cut into blocks
      const targets = await matchingDevices(options.deviceStore, request.selector);
      const id = `r-${randomUUID()}`;
      const step = startRollout({
        id,
        model,
        selector: request.selector,
        policy: request.policy,
        devices: targets,
        nowMs: options.nowMs(),
      });
      await serialized(id, async () => {
        await store.create(step.rollout, step.devices, actor, new Date(options.nowMs()));
        routing.stepped({ rollout: step.rollout, devices: step.devices });
        if (step.decisions.length > 0) {
          // The start's own decisions (started, wave 1) go to the audit log with it.
          await store.update(
            id,
            (current) => ({
              rollout: current.rollout,
              changedDevices: [],
              audit: auditOf(step.decisions),
            }),
            actor,
            new Date(options.nowMs()),
          );
        }
        await carryOut(step.rollout, step.commands, step.decisions);
      });
      return this.get(id);
    },

    async get(id) {
      const state = await store.get(id);
      if (!state) throw controlPlaneError('NOT_FOUND', `no rollout ${id}`);
      return state;
    },

    list: (query) => store.list(query),

    async rollback(id, authorization, actor, reason) {
      const { rollout, devices } = await this.get(id);
      const rootRow = await options.models.currentRoot();
      if (!rootRow) throw controlPlaneError('NO_TRUST_ROOT', 'no trust root is installed');
      const root = await loadTrustedRoot(fromBase64(rootRow.envelope));
      const result: RollbackResult = { sent: [], skipped: [] };
      const envelope = validateMessage(rollbackAuthorizationSchema, authorization, 'authorization');
      for (const device of devices) {
        if (device.committedAtMs === null) continue; // never ran the new model: nothing to undo
        const skip = (code: string, message: string) =>
          result.skipped.push({ deviceId: device.deviceId, code, message });
        const to = device.previousModel;
        if (!to) {
          skip('NOTHING_TO_ROLL_BACK_TO', 'the device served no model before this rollout');
          continue;
        }
        const row = await options.deviceStore.get(device.deviceId);
        if (!row || row.revokedAt) {
          skip('REVOKED', 'the device is revoked or gone');
          continue;
        }
        try {
          // The agent's own check, for this device: a threshold of bundle keys of the
          // installed root, unexpired, for its model, hardware and id, to its previous model.
          await verifyRollbackAuthorization(envelope, {
            root,
            nowMs: options.nowMs(),
            deviceId: device.deviceId,
            hardwareClass: row.hardware,
            modelName: rollout.model.name,
            installedRelease: rollout.model.release,
            target: { bundleId: to.bundleId, release: to.release },
          });
        } catch (error) {
          if (!isFleetError(error)) throw error;
          skip(error.code, error.message);
          continue;
        }
        result.sent.push(device.deviceId);
      }
      if (result.sent.length === 0) {
        const first = result.skipped[0];
        throw controlPlaneError(
          'INVALID_REQUEST',
          `authorization: covers none of the rollout's committed devices${first ? ` (${first.deviceId}: ${first.message})` : ''}`,
        );
      }
      await store.update(
        id,
        (current) => ({
          rollout: current.rollout,
          changedDevices: [],
          audit: [
            {
              action: 'rollout.rollback-sent',
              detail: { reason, sent: result.sent.length, skipped: result.skipped.length },
            },
          ],
        }),
        actor,
        new Date(options.nowMs()),
      );
      const byId = new Map(devices.map((d) => [d.deviceId, d]));
      for (const deviceId of result.sent) {
        await send(deviceId, {
          ...header('rollback'),
          rolloutId: rollout.id,
          target: byId.get(deviceId)!.previousModel!,
          reason: reason.slice(0, 500),
          authorization: envelope,
        });
      }
      return result;
    },

    pause: (id, actor, reason) => operatorStep(id, { type: 'pause', actor, reason }, actor),
    resume: (id, actor) => operatorStep(id, { type: 'resume', actor }, actor),
    abort: (id, actor, reason) => operatorStep(id, { type: 'abort', actor, reason }, actor),

    async onDeviceMessage(topic, payload) {
      const parsed = parseTopic(topic);
      if (parsed?.kind !== 'device') return;
      const { deviceId } = parsed;
      const message = await verified(deviceId, payload);
      if (!message) return;
      switch (message.type) {
        case 'progress':
          // The first `downloading` report of a transfer comes once the agent
          // has subscribed to the bundle's blocks.
          if (message.state === 'downloading') gate.ready(message.bundleId, deviceId);
          routeReport(deviceId, message);
          return;
        case 'health': {
          for (const rollout of await routing.memberRollouts(deviceId)) {
            if (
              rollout.model.release !== message.model.release ||
              rollout.model.name !== message.model.name
            )
              continue;
            enqueue(rollout.id, {
              type: 'device-health',
              deviceId,
              model: message.model,
              probation: message.probation,
              requests: message.requests,
              errors: message.errors,
              latencyP95Ms: message.latencyMs.p95,
              meanConfidence: message.meanConfidence,
            });
          }
          // The labelled samples held, for federated round eligibility (fl-round-inputs.ts).
          const stored = message.feedback?.stored;
          if (stored !== undefined)
            await options.deviceStore.recordLabelledSamples(
              deviceId,
              stored,
              new Date(options.nowMs()),
            );
          return;
        }
        case 'blocks-request': {
          // Asked before the wave's broadcast: the broadcast answers it, and
          // the asker is subscribed to the blocks, so it is ready.
          const broadcastDue = gate.due(message.bundleId);
          if (broadcastDue) gate.ready(message.bundleId, deviceId);
          return options.distribution.requestRepair(deviceId, message, { broadcastDue });
        }
        case 'drift':
          return void (await options.onDrift?.(deviceId, message));
        case 'fl-update':
        case 'fl-update-part':
          return void (await options.onFlUpdate?.(deviceId, message));
        case 'state':
          return; // state arrives on its own topic (onDeviceState)
      }
    },

    async onDeviceState(deviceId, state) {
      routeReport(deviceId, state.update);
      if (!state.online) return;
      await joinRollouts(deviceId, state);
    },

    async tick() {
      for (const id of await routing.activeIds()) enqueue(id, { type: 'tick' });
      await this.flush();
    },

    async flush() {
      if (flushTimer) clearTimeout(flushTimer);
      flushTimer = null;
      await flushAll();
    },

    start() {
      tickTimer = setInterval(() => {
        void this.tick().catch((error: unknown) =>
          logger.warn({ err: error }, 'rollout tick failed'),
        );
      }, options.tickIntervalMs ?? 1_000);
    },

    async close() {
      closed = true;
      if (tickTimer) clearInterval(tickTimer);
      gate.close();
      if (flushTimer) clearTimeout(flushTimer);
      flushTimer = null;
      await Promise.allSettled([...chains.values()]);
    },
  };

  /** A device online that matches an active rollout's target but is not in it joins it. */
  async function joinRollouts(deviceId: string, state: StateMessage): Promise<void> {
    const ids = await routing.activeIds();
    if (ids.length === 0) return;
    const unsure = ids.filter((id) => !routing.isMember(id, deviceId));
    if (unsure.length === 0) return; // the common case: a member reporting its progress
    const member = new Set((await store.rolloutsForDevice(deviceId)).map((r) => r.rollout.id));
    for (const id of member) routing.addMember(id, deviceId);
    const candidates = unsure.filter((id) => !member.has(id));
    if (candidates.length === 0) return;
    const row = await options.deviceStore.get(deviceId);
    if (!row || row.revokedAt) return;
    for (const id of candidates) {
      const selector = await routing.selector(id);
      if (
        !selector ||
        !matchesSelector({ id: row.id, hardware: row.hardware, tags: row.tags }, selector)
      )
        continue;
      enqueue(id, {
        type: 'device-joined',
        device: { id: row.id, hardware: row.hardware, tags: row.tags },
        previousModel: state.model,
      });
    }
  }
}

/** Every enrolled, unrevoked device matching the selector, with the model it serves. */
async function matchingDevices(deviceStore: DeviceStore, selector: TargetSelector) {
  const out: { deviceId: string; previousModel: BundleModelRef | null }[] = [];
  let afterId: string | undefined;
  for (;;) {
    const page = await deviceStore.list({
      tags: selector.tags ?? {},
      limit: 1_000,
      ...(afterId ? { afterId } : {}),
    });
    for (const row of page) {
      if (row.revokedAt) continue;
      if (!matchesSelector({ id: row.id, hardware: row.hardware, tags: row.tags }, selector))
        continue;
      out.push({
        deviceId: row.id,
        previousModel:
          row.bundleId && row.modelName && row.modelVersion && row.modelRelease
            ? {
                name: row.modelName,
                version: row.modelVersion,
                release: row.modelRelease,
                bundleId: row.bundleId,
              }
            : null,
      });
    }
    if (page.length < 1_000) return out;
    afterId = page.at(-1)!.id;
  }
}

/** Runs `work` on every item, at most `limit` at a time; resolves when all have settled. */
async function forEachConcurrently<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
