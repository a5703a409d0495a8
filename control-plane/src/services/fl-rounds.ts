/**
 * Drives federated rounds (core/fl/round-machine.ts) against the database,
 * the broker, the blob store and the candidate pipeline (CandidatePort):
 *
 *   start     loads the base model (a version, or the latest), checks the
 *             round's config, eval set and rollout template, lists the
 *             devices (online, matching the target, running the base model),
 *             creates the round and steps it with `start`
 *   events    device updates (fl-intake.ts), a deadline tick, cancel and
 *             approve; each is one core step written with its update row and
 *             audit entries in one transaction under the round's row lock
 *   actions   the core's non-audit actions go to the round's outbox in that
 *             same transaction and are carried out after it, in order
 *             (`send-train` publishes `fl-train`; `aggregate` runs the
 *             strategy; `evaluate`, `build-candidate`, `start-rollout` call
 *             the CandidatePort); an action's result (an `aggregated` or
 *             `evaluated` event, the built bundle, the rollout id) is written
 *             together with its removal from the outbox
 *
 * Restart-safe: everything is in the database; `start()` (and every tick)
 * carries out what outboxes hold, so a round stopped while aggregating or
 * evaluating resumes. A failing action is retried on the next ticks; after
 * MAX_ATTEMPTS an aggregate or evaluate cancels the round (as `system`), a
 * build or rollout is given up and recorded in the outcome. Partial uploads
 * are held in memory only: a restart loses them (those devices straggle).
 *
 * Triggers: `tick()` ends with `onTick` (the schedules of services/fl-triggers.ts);
 * its failure is logged, never thrown into the tick.
 *
 * Labelled samples: a device's health reports carry how many it holds
 * (`feedback.stored`, kept in the devices table); one whose count is under
 * the round's minSamples is not eligible. One that never reported it counts
 * as having enough; with too few it declines with a `failed` update (the
 * fl-train config carries minSamples).
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import {
  manifestTrainingSchema,
  type DenseShape,
  type FlUpdateMessage,
  type FlUpdatePartMessage,
} from '@fleet/protocol';
import { controlPlaneError } from '../core/errors.ts';
import type { CandidatePort } from '../core/fl/candidate-port.ts';
import { buildRoundConfig, type RoundConfig } from '../core/fl/round-config.ts';
import { createRound } from '../core/fl/round-machine.ts';
import type { RoundSnapshot, RoundStatus } from '../core/fl/round-types.ts';
import type { TargetSelector } from '../core/rollouts/rollout-types.ts';
import type { BlobStore } from '../core/models/blob-store.ts';
import type { FlRoundTrigger } from '../db/schema/index.ts';
import type {
  FlRoundListQuery,
  FlRoundRecord,
  FlStore,
  FlUpdateRecord,
} from '../adapters/db/fl-store.ts';
import type { ModelStore, ModelVersionRow } from '../adapters/db/model-store.ts';
import type { DeviceStore } from '../adapters/db/device-store.ts';
import { SYSTEM_ACTOR, type Actor } from '../adapters/db/actor.ts';
import { createFlIntake, type FlIntake } from './fl-intake.ts';
import { checkRolloutTemplate, eligibleDevices } from './fl-round-inputs.ts';
import { createRoundRunner } from './fl-round-runner.ts';

export interface StartRoundRequest {
  /** `version` absent: the latest release. */
  model: { name: string; version?: string };
  /** Core round settings (round-config.ts names), over the configured defaults. */
  config: Record<string, unknown>;
  target: TargetSelector;
  evalSet: string;
  /** `POST /v1/rollouts` body without `model` (target defaults to the round's). */
  rollout?: Record<string, unknown>;
  trigger: FlRoundTrigger;
  actor: Actor;
}

export interface FlRoundDetail {
  round: FlRoundRecord;
  updates: FlUpdateRecord[];
}

export interface FlRoundsOptions {
  store: FlStore;
  models: ModelStore;
  deviceStore: DeviceStore;
  candidates: CandidatePort;
  blobs: BlobStore;
  publish: (topic: string, payload: Uint8Array) => Promise<void>;
  nowMs: () => number;
  logger: Logger;
  /** Counts every update outcome (`fleet_fl_updates_total{result}`). */
  countUpdate?: (result: string) => void;
  /** Counts rounds reaching a final status (`fleet_fl_rounds_total{status}`). */
  countRound?: (status: RoundStatus) => void;
  tickIntervalMs?: number;
  /** Most bytes of partial updates buffered at once. */
  maxBufferedBytes?: number;
  /** Round settings used where a request gives none. */
  defaults?: Partial<RoundConfig>;
  /** Run at the end of every tick (scheduled rounds); a failure is logged. */
  onTick?: () => Promise<void>;
}

export interface FlRounds {
  /** Creates a round and starts it (selects devices, sends fl-train). */
  startRound(request: StartRoundRequest): Promise<FlRoundDetail>;
  get(id: string): Promise<FlRoundDetail>;
  list(query: FlRoundListQuery): Promise<FlRoundRecord[]>;
  /** The newest round of a model, optionally only in these statuses or by this trigger kind. */
  latestRound: FlStore['latestOf'];
  cancel(id: string, actor: Actor, reason: string): Promise<FlRoundDetail>;
  approve(id: string, actor: Actor): Promise<FlRoundDetail>;
  /** A verified `fl-update` header from `deviceId`. */
  onUpdate(deviceId: string, message: FlUpdateMessage): Promise<void>;
  /** A verified `fl-update-part` from `deviceId`. */
  onUpdatePart(deviceId: string, message: FlUpdatePartMessage): Promise<void>;
  /** Resolves once the outbox work running in the background (a closed collection's pipeline) is done. */
  idle(): Promise<void>;
  /** Deadlines, expired partial uploads, and outboxes still to carry out. */
  tick(): Promise<void>;
  /** Resumes what the database holds and starts the tick timer. */
  start(): Promise<void>;
  close(): Promise<void>;
}

export function createFlRounds(options: FlRoundsOptions): FlRounds {
  const { store, logger } = options;
  const architectures = new Map<string, DenseShape | null>();

  async function architecture(bundleId: string): Promise<DenseShape | null> {
    if (!architectures.has(bundleId)) {
      const row = await options.models.getByBundleId(bundleId);
      architectures.set(bundleId, row ? trainingOf(row) : null);
    }
    return architectures.get(bundleId)!;
  }

  const runner = createRoundRunner({ ...options, architecture });

  const intake: FlIntake = createFlIntake({
    round: async (id) => (await store.get(id))?.snapshot ?? null,
    hasUpdate: (id) => store.hasUpdate(id),
    architecture,
    submit: async (event, extra) => {
      const { admission, record } = await runner.receive(event, extra);
      // The update that closes collection leaves aggregate, evaluate, build and
      // rollout in the outbox: carried out in the background (close() awaits
      // them), so the device message that closed it is not held for minutes.
      if (record.outbox.length > 0) void runner.drain(record.id);
      return admission;
    },
    blobs: options.blobs,
    count: (result) => options.countUpdate?.(result),
    logger,
    nowMs: options.nowMs,
    maxBufferedBytes: options.maxBufferedBytes ?? 256 * 1024 * 1024,
  });

  async function detail(id: string): Promise<FlRoundDetail> {
    const round = await store.get(id);
    if (!round) throw controlPlaneError('NOT_FOUND', `no round ${id}`);
    return { round, updates: await store.updates(id) };
  }

  let timer: NodeJS.Timeout | null = null;
  let ticking: Promise<void> | null = null;

  const service: FlRounds = {
    async startRound(request) {
      const base = await baseVersion(options.models, request.model);
      const training = trainingOf(base);
      if (!training) {
        throw controlPlaneError(
          'INVALID_REQUEST',
          `model: ${base.name}@${base.version} has no training field; it cannot be trained federatedly`,
        );
      }
      const config = buildRoundConfig({ ...options.defaults, ...request.config });
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(request.evalSet)) {
        throw controlPlaneError('INVALID_REQUEST', 'evalSet: expected a name of [A-Za-z0-9._-]');
      }
      const rollout = checkRolloutTemplate(request.rollout ?? {});
      const model = {
        name: base.name,
        version: base.version,
        release: base.release,
        bundleId: base.bundleId,
      };
      const promotion = await options.candidates.promotionPolicy({
        model: base.name,
        baseBundleId: base.bundleId,
      });
      const id = `fl-${randomUUID()}`;
      const now = options.nowMs();
      const snapshot: RoundSnapshot = createRound({
        roundId: id,
        baseBundleId: base.bundleId,
        config,
        promotion,
        nowMs: now,
      });
      const devices = await eligibleDevices(options.deviceStore, request.target, base.bundleId);
      await store.create(
        {
          id,
          modelName: base.name,
          baseBundleId: base.bundleId,
          snapshot,
          settings: { model, evalSet: request.evalSet, target: request.target, rollout },
          trigger: request.trigger,
          outbox: [],
          outcome: {},
          createdBy: request.actor,
        },
        [
          {
            action: 'fl.round-created',
            detail: { model, trigger: request.trigger, config, evalSet: request.evalSet },
          },
        ],
        request.actor,
        new Date(now),
      );
      await runner.step(id, { type: 'start', devices }, request.actor);
      await runner.drain(id);
      return detail(id);
    },

    get: detail,
    list: (query) => store.list(query),
    latestRound: (modelName, where) => store.latestOf(modelName, where),

    async cancel(id, actor, reason) {
      await runner.step(id, { type: 'cancel', actor, reason }, actor);
      return detail(id);
    },

    async approve(id, actor) {
      await runner.step(id, { type: 'approved', actor }, actor);
      await runner.drain(id);
      return detail(id);
    },

    idle: () => runner.idle(),
    onUpdate: (deviceId, message) => intake.onHeader(deviceId, message),
    onUpdatePart: (deviceId, message) => intake.onPart(deviceId, message),

    async tick() {
      if (ticking) return ticking;
      ticking = (async () => {
        await intake.expire();
        const now = options.nowMs();
        for (const id of await store.resumableIds()) {
          const round = await store.get(id);
          if (!round) continue;
          const deadline = round.snapshot.deadlineAtMs;
          if (round.status === 'collecting' && deadline !== null && now >= deadline) {
            await runner.step(id, { type: 'deadline-tick' }, SYSTEM_ACTOR);
          }
          await runner.drain(id);
        }
        await options.onTick?.().catch((error: unknown) => {
          logger.error({ err: error }, 'fl tick hook failed');
        });
      })().finally(() => {
        ticking = null;
      });
      return ticking;
    },

    async start() {
      await this.tick();
      const interval = options.tickIntervalMs ?? 5_000;
      timer = setInterval(() => {
        this.tick().catch((error: unknown) => logger.error({ err: error }, 'fl tick failed'));
      }, interval);
      timer.unref();
    },

    async close() {
      if (timer) clearInterval(timer);
      timer = null;
      await ticking;
      await runner.idle();
    },
  };
  return service;
}

function trainingOf(row: ModelVersionRow): DenseShape | null {
  const parsed = manifestTrainingSchema.safeParse(row.manifest['training']);
  return parsed.success ? parsed.data.architecture : null;
}

async function baseVersion(
  models: ModelStore,
  ref: { name: string; version?: string },
): Promise<ModelVersionRow> {
  const versions = await models.listVersions(ref.name);
  const row =
    ref.version === undefined
      ? versions.reduce<ModelVersionRow | undefined>(
          (best, v) => (!best || v.release > best.release ? v : best),
          undefined,
        )
      : versions.find((v) => v.version === ref.version);
  if (!row) {
    throw controlPlaneError(
      'NOT_FOUND',
      `model ${ref.name}${ref.version ? `@${ref.version}` : ''} is not registered`,
    );
  }
  return row;
}
