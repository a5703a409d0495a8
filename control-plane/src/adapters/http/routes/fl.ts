/**
 * Federated round routes: start (operator), list and show (viewer), cancel
 * (operator), approve an evaluated candidate (approver).
 * `GET /v1/fl/rounds/:id` is what `fleet fl status` shows: the counts, the
 * selected devices and their answers, rejections by reason, stragglers, the
 * evaluation, the decision and the candidate.
 *
 * The body of `POST /v1/fl/rounds` takes the round settings by their core
 * names (core/fl/round-config.ts) under `config`, the deadline also as text
 * (`"10m"`), the target as text or a selector object, and the rollout
 * template as `POST /v1/rollouts` takes it (without `model`).
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { controlPlaneError } from '../../../core/errors.ts';
import { checkRoundConfig } from '../../../core/fl/round-config.ts';
import { UPDATE_REJECTION_REASONS } from '../../../core/fl/round-types.ts';
import { parseDuration } from '../../../core/rollouts/rollout-spec.ts';
import { buildSelector, parseSelector } from '../../../core/rollouts/target-selector.ts';
import type { FlRoundDetail, FlRounds } from '../../../services/fl-rounds.ts';
import { tokenActor } from '../../db/actor.ts';
import { BEARER, type AuthEnv, type RequireRole } from '../auth.ts';
import { errorResponses } from '../errors.ts';
import { jsonBody, jsonResponse as json } from './common.ts';

const MODEL_REF = /^([a-z0-9][a-z0-9._-]{0,63})(?:@([^@\s]{1,64}))?$/;
const ROUND_STATUSES = [
  'configuring',
  'collecting',
  'aggregating',
  'evaluating',
  'promoted',
  'awaiting-approval',
  'rejected',
  'failed',
  'cancelled',
] as const;

const startRoundBody = z
  .strictObject({
    model: z
      .string()
      .regex(MODEL_REF, 'expected NAME or NAME@VERSION, e.g. mnist-2nn@1.2.0')
      .openapi({
        example: 'mnist-2nn@1.2.0',
        description: 'NAME (latest release) or NAME@VERSION',
      }),
    target: z.union([z.string().max(10_000), z.record(z.string(), z.unknown())]).openapi({
      example: 'tag:site=berlin',
      description: '`all`, or tag:/hardware:/id: terms (as rollouts take it)',
    }),
    evalSet: z.string().min(1).max(128).openapi({ description: 'Held-out eval set name' }),
    config: z.record(z.string(), z.unknown()).optional().openapi({
      description:
        'fraction, minClients, minSamples, maxSamples, epochs, batchSize, learningRate, proxMu, clipNorm, encoding, strategy {kind, beta}, deadlineMs, evaluationMargin',
    }),
    deadline: z
      .string()
      .max(32)
      .optional()
      .openapi({ example: '10m', description: 'config.deadlineMs as text' }),
    rollout: z.record(z.string(), z.unknown()).optional().openapi({
      description: 'Rollout of a promoted candidate: the POST /v1/rollouts body without model',
    }),
    trigger: z
      .strictObject({
        kind: z.enum(['operator', 'drift', 'schedule']),
        detail: z.string().max(500).nullable().optional(),
      })
      .optional(),
  })
  .openapi('StartFlRound');

const answerView = z.object({
  deviceId: z.string(),
  updateId: z.string(),
  outcome: z.enum(['accepted', 'failed', 'rejected']),
  sampleCount: z.number().int(),
  reason: z.string().nullable(),
  at: z.string(),
  norm: z.number().nullable(),
  scale: z.number(),
  metrics: z.record(z.string(), z.number().nullable()),
});

export const flRoundView = z
  .object({
    id: z.string(),
    model: z.object({
      name: z.string(),
      version: z.string(),
      release: z.number().int(),
      bundleId: z.string(),
    }),
    status: z.enum(ROUND_STATUSES),
    reason: z.string().nullable(),
    trigger: z.object({ kind: z.string(), detail: z.string().nullable() }),
    createdBy: z.string(),
    createdAt: z.string(),
    updatedAt: z.string(),
    deadline: z.string().nullable(),
    config: z.record(z.string(), z.unknown()),
    promotion: z.object({ riskTier: z.string(), autoPromote: z.boolean() }),
    evalSet: z.string(),
    target: z.record(z.string(), z.unknown()),
    rollout: z.record(z.string(), z.unknown()),
    counts: z.object({
      eligible: z.number().int(),
      selected: z.number().int(),
      accepted: z.number().int(),
      failed: z.number().int(),
      rejected: z.number().int(),
      stragglers: z.number().int(),
    }),
    rejections: z.record(z.string(), z.number().int()),
    selected: z.array(z.string()).optional(),
    answers: z.array(answerView).optional(),
    stragglers: z.array(z.string()),
    evaluation: z
      .object({ candidateAccuracy: z.number(), championAccuracy: z.number() })
      .nullable(),
    decision: z.string().nullable(),
    candidate: z
      .object({
        candidateId: z.string(),
        bundleId: z.string().nullable(),
        name: z.string().nullable(),
        version: z.string().nullable(),
        release: z.number().int().nullable(),
      })
      .nullable(),
    rolloutId: z.string().nullable(),
    error: z.string().nullable(),
  })
  .openapi('FlRound');

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** The API view of a round; `withDevices` false leaves out the selected list and the answers. */
export function toFlRoundView(
  detail: FlRoundDetail,
  withDevices = true,
): z.infer<typeof flRoundView> {
  const { round, updates } = detail;
  const s = round.snapshot;
  const byId = new Map(updates.map((u) => [u.updateId, u]));
  const count = (outcome: string) => s.answers.filter((a) => a.outcome === outcome).length;
  const built = round.outcome.candidate;
  return {
    id: round.id,
    model: round.settings.model,
    status: s.status,
    reason: s.reason,
    trigger: { kind: round.trigger.kind, detail: round.trigger.detail },
    createdBy: round.createdBy,
    createdAt: iso(round.createdAtMs)!,
    updatedAt: iso(round.updatedAtMs)!,
    deadline: iso(s.deadlineAtMs),
    config: s.config as unknown as Record<string, unknown>,
    promotion: s.promotion,
    evalSet: round.settings.evalSet,
    target: round.settings.target as Record<string, unknown>,
    rollout: round.settings.rollout,
    counts: {
      eligible: s.eligibleCount,
      selected: s.selected.length,
      accepted: count('accepted'),
      failed: count('failed'),
      rejected: count('rejected'),
      stragglers: s.stragglers.length,
    },
    rejections: Object.fromEntries(UPDATE_REJECTION_REASONS.map((r) => [r, s.rejections[r] ?? 0])),
    ...(withDevices
      ? {
          selected: s.selected,
          answers: s.answers.map((a) => {
            const row = byId.get(a.updateId);
            return {
              deviceId: a.deviceId,
              updateId: a.updateId,
              outcome: a.outcome,
              sampleCount: a.sampleCount,
              reason: a.reason,
              at: iso(a.atMs)!,
              norm: row?.norm ?? null,
              scale: row?.scale ?? 1,
              metrics: row?.metrics ?? {},
            };
          }),
        }
      : {}),
    stragglers: s.stragglers,
    evaluation: s.evaluation,
    decision: s.decision,
    candidate:
      s.candidateId === null
        ? null
        : {
            candidateId: s.candidateId,
            bundleId: built?.bundleId ?? null,
            name: built?.name ?? null,
            version: built?.version ?? null,
            release: built?.release ?? null,
          },
    rolloutId: round.outcome.rolloutId ?? null,
    error: round.outcome.error ?? null,
  };
}

/** Config fields checked here so a 400 names `config.<field>`. */
function roundConfigOf(body: z.infer<typeof startRoundBody>): Record<string, unknown> {
  const config: Record<string, unknown> = { ...body.config };
  if (body.deadline !== undefined) config['deadlineMs'] = parseDuration(body.deadline, 'deadline');
  const checked = checkRoundConfig(config);
  if (!checked.ok) {
    const list = checked.errors.map((e) => `config.${e.field}: ${e.message}`).join('; ');
    throw controlPlaneError('INVALID_REQUEST', list);
  }
  return config;
}

const idParam = z.object({ id: z.string().max(64) });

export function flRoutes(
  app: OpenAPIHono<AuthEnv>,
  deps: { rounds: FlRounds; requireRole: RequireRole },
) {
  const { rounds, requireRole } = deps;

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/fl/rounds',
      tags: ['fl'],
      summary:
        'Start a federated round: select devices running the base model and send them fl-train',
      security: BEARER,
      middleware: [requireRole('operator')] as const,
      request: { body: jsonBody(startRoundBody) },
      responses: {
        201: json(flRoundView, 'The round, collecting (or failed: too few eligible devices)'),
        ...errorResponses(400, 401, 403, 404, 409),
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const [, name, version] = MODEL_REF.exec(body.model)!;
      const target =
        typeof body.target === 'string' ? parseSelector(body.target) : buildSelector(body.target);
      const detail = await rounds.startRound({
        model: version === undefined ? { name: name! } : { name: name!, version },
        config: roundConfigOf(body),
        target,
        evalSet: body.evalSet,
        ...(body.rollout ? { rollout: body.rollout } : {}),
        trigger: { kind: body.trigger?.kind ?? 'operator', detail: body.trigger?.detail ?? null },
        actor: tokenActor(c.get('operator').tokenId),
      });
      return c.json(toFlRoundView(detail), 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/fl/rounds',
      tags: ['fl'],
      summary: 'Federated rounds, newest first (no device lists)',
      security: BEARER,
      middleware: [requireRole('viewer')] as const,
      request: {
        query: z.object({
          status: z.enum(ROUND_STATUSES).optional(),
          limit: z.coerce.number().int().min(1).max(200).default(50),
          cursor: z.string().max(64).optional(),
        }),
      },
      responses: {
        200: json(
          z.object({ rounds: z.array(flRoundView), nextCursor: z.string().nullable() }),
          'A page of rounds',
        ),
        ...errorResponses(400, 401, 403),
      },
    }),
    async (c) => {
      const { status, limit, cursor } = c.req.valid('query');
      const page = await rounds.list({
        limit,
        ...(status ? { status } : {}),
        ...(cursor ? { cursor } : {}),
      });
      return c.json(
        {
          rounds: page.map((round) => toFlRoundView({ round, updates: [] }, false)),
          nextCursor: page.length === limit ? (page.at(-1)?.id ?? null) : null,
        },
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/fl/rounds/{id}',
      tags: ['fl'],
      summary: 'A federated round: counts, devices and answers, evaluation, decision, candidate',
      security: BEARER,
      middleware: [requireRole('viewer')] as const,
      request: { params: idParam },
      responses: { 200: json(flRoundView, 'The round'), ...errorResponses(401, 403, 404) },
    }),
    async (c) => c.json(toFlRoundView(await rounds.get(c.req.valid('param').id)), 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/fl/rounds/{id}/cancel',
      tags: ['fl'],
      summary: 'Cancel a round that has not ended',
      security: BEARER,
      middleware: [requireRole('operator')] as const,
      request: {
        params: idParam,
        body: jsonBody(z.strictObject({ reason: z.string().min(1).max(500) })),
      },
      responses: {
        200: json(flRoundView, 'The round, cancelled'),
        ...errorResponses(400, 401, 403, 404, 409),
      },
    }),
    async (c) => {
      const { reason } = c.req.valid('json');
      const actor = tokenActor(c.get('operator').tokenId);
      return c.json(
        toFlRoundView(await rounds.cancel(c.req.valid('param').id, actor, reason)),
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/fl/rounds/{id}/approve',
      tags: ['fl'],
      summary: 'Approve a round awaiting approval: its candidate is promoted and rolled out',
      security: BEARER,
      middleware: [requireRole('approver')] as const,
      request: { params: idParam },
      responses: {
        200: json(flRoundView, 'The round, promoted'),
        ...errorResponses(401, 403, 404, 409),
      },
    }),
    async (c) => {
      const actor = tokenActor(c.get('operator').tokenId);
      return c.json(toFlRoundView(await rounds.approve(c.req.valid('param').id, actor)), 200);
    },
  );
}
