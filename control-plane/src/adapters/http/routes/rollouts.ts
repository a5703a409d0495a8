/**
 * Rollout routes: create (operator), list and show (viewer), pause, resume and
 * abort (operator). `GET /v1/rollouts/:id` is what `fleet rollout status`
 * shows: the rollout, per-wave progress and every device's status.
 *
 * The body of `POST /v1/rollouts` takes the CLI's text forms (`"1%,10%,all"`,
 * `"10m"`, `"2%"`, `"tag:site=berlin,hardware:rpi4"`) or structured values;
 * core/rollouts/rollout-spec.ts and target-selector.ts check them and name the
 * field that is wrong.
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { buildPolicy, type PolicyInput } from '../../../core/rollouts/rollout-spec.ts';
import { buildSelector, parseSelector } from '../../../core/rollouts/target-selector.ts';
import { controlPlaneError } from '../../../core/errors.ts';
import type { RolloutState } from '../../db/rollout-store.ts';
import { tokenActor } from '../../db/actor.ts';
import type { RolloutService } from '../../../services/rollout-service.ts';
import { BEARER, type AuthEnv, type RequireRole } from '../auth.ts';
import { errorResponses } from '../errors.ts';
import { jsonBody, jsonResponse as json } from './common.ts';

const textOrNumber = z.union([z.string().max(64), z.number()]);

const createRolloutBody = z
  .strictObject({
    model: z.string().max(200).openapi({ example: 'mnist-2nn@1.2.0', description: 'NAME@VERSION' }),
    target: z.union([z.string().max(10_000), z.record(z.string(), z.unknown())]).openapi({
      example: 'tag:site=berlin,hardware:rpi4',
      description: '`all`, or tag:/hardware:/id: terms',
    }),
    waves: z.union([z.string().max(500), z.array(z.record(z.string(), z.number()))]).optional(),
    bake: textOrNumber.optional(),
    successRatio: textOrNumber.optional(),
    maxFailure: textOrNumber.optional(),
    deviceTimeout: textOrNumber.optional(),
    retries: textOrNumber.optional(),
    retryBackoff: textOrNumber.optional(),
    probation: textOrNumber.optional(),
    maxErrorRate: textOrNumber.optional(),
    maxLatencyP95: textOrNumber.optional(),
    minConfidence: textOrNumber.optional(),
    driftSampleRate: textOrNumber.optional().openapi({
      example: '10%',
      description: "share of inferences devices sample for drift; default: the bundle's",
    }),
  })
  .openapi('CreateRollout');

const modelRefView = z.object({
  name: z.string(),
  version: z.string(),
  release: z.number().int(),
  bundleId: z.string(),
});

const deviceView = z.object({
  deviceId: z.string(),
  wave: z.number().int(),
  status: z.string(),
  attempts: z.number().int(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  updatedAt: z.string(),
});

const waveView = z.object({
  wave: z.number().int().openapi({ description: 'Counting from 1' }),
  size: z.number().int(),
  counts: z.record(z.string(), z.number().int()),
});

export const rolloutView = z
  .object({
    id: z.string(),
    model: modelRefView,
    status: z.enum(['running', 'paused', 'completed', 'aborted']),
    reason: z.string().nullable(),
    currentWave: z.number().int().openapi({ description: 'Counting from 1' }),
    selector: z.record(z.string(), z.unknown()),
    policy: z.record(z.string(), z.unknown()),
    createdAt: z.string(),
    updatedAt: z.string(),
    counts: z.record(z.string(), z.number().int()),
    waves: z.array(waveView),
    devices: z.array(deviceView).optional(),
  })
  .openapi('Rollout');

export function toRolloutView(
  state: RolloutState,
  withDevices = true,
): z.infer<typeof rolloutView> {
  const { rollout, devices } = state;
  const counts: Record<string, number> = {};
  const waves = rollout.policy.waves.map(
    (_, i): { wave: number; size: number; counts: Record<string, number> } => ({
      wave: i + 1,
      size: 0,
      counts: {},
    }),
  );
  for (const d of devices) {
    counts[d.status] = (counts[d.status] ?? 0) + 1;
    const w = waves[d.wave];
    if (!w) continue;
    w.size += 1;
    w.counts[d.status] = (w.counts[d.status] ?? 0) + 1;
  }
  return {
    id: rollout.id,
    model: rollout.model,
    status: rollout.status,
    reason: rollout.reason,
    currentWave: rollout.currentWave + 1,
    selector: rollout.selector as Record<string, unknown>,
    policy: rollout.policy as unknown as Record<string, unknown>,
    createdAt: new Date(rollout.createdAtMs).toISOString(),
    updatedAt: new Date(rollout.updatedAtMs).toISOString(),
    counts,
    waves,
    ...(withDevices
      ? {
          devices: devices.map((d) => ({
            deviceId: d.deviceId,
            wave: d.wave + 1,
            status: d.status,
            attempts: d.attempts,
            error: d.error,
            updatedAt: new Date(d.updatedAtMs).toISOString(),
          })),
        }
      : {}),
  };
}

function parseModelRef(text: string): { name: string; version: string } {
  const at = text.lastIndexOf('@');
  if (at < 1 || at === text.length - 1) {
    throw controlPlaneError(
      'INVALID_REQUEST',
      `model: expected NAME@VERSION, got ${JSON.stringify(text.slice(0, 80))}`,
    );
  }
  return { name: text.slice(0, at), version: text.slice(at + 1) };
}

const idParam = z.object({ id: z.string().max(64) });
const reasonBody = z.strictObject({ reason: z.string().min(1).max(500) });

export function rolloutRoutes(
  app: OpenAPIHono<AuthEnv>,
  deps: { rollouts: RolloutService; requireRole: RequireRole },
) {
  const { rollouts, requireRole } = deps;

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/rollouts',
      tags: ['rollouts'],
      summary: 'Start a rollout of a model version to the devices a selector matches, in waves',
      security: BEARER,
      middleware: [requireRole('operator')] as const,
      request: { body: jsonBody(createRolloutBody) },
      responses: {
        201: json(rolloutView, 'The rollout, started (its first wave deploying)'),
        ...errorResponses(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const { model, target, ...policyFields } = body;
      const selector = typeof target === 'string' ? parseSelector(target) : buildSelector(target);
      const policy = buildPolicy(policyFields as PolicyInput);
      const state = await rollouts.create(
        { model: parseModelRef(model), selector, policy },
        tokenActor(c.get('operator').tokenId),
      );
      return c.json(toRolloutView(state), 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/rollouts',
      tags: ['rollouts'],
      summary: 'Rollouts, newest first, with device counts (no device lists)',
      security: BEARER,
      middleware: [requireRole('viewer')] as const,
      request: {
        query: z.object({
          status: z.enum(['running', 'paused', 'completed', 'aborted']).optional(),
          limit: z.coerce.number().int().min(1).max(200).default(50),
          cursor: z.string().max(64).optional(),
        }),
      },
      responses: {
        200: json(
          z.object({ rollouts: z.array(rolloutView), nextCursor: z.string().nullable() }),
          'A page of rollouts',
        ),
        ...errorResponses(400, 401, 403),
      },
    }),
    async (c) => {
      const { status, limit, cursor } = c.req.valid('query');
      const page = await rollouts.list({
        limit,
        ...(status ? { status } : {}),
        ...(cursor ? { cursor } : {}),
      });
      const views = page.map(({ rollout, deviceCounts }) => ({
        ...toRolloutView({ rollout, devices: [] }, false),
        counts: Object.fromEntries(Object.entries(deviceCounts).filter(([, n]) => n > 0)),
      }));
      return c.json(
        {
          rollouts: views,
          nextCursor: page.length === limit ? (page.at(-1)?.rollout.id ?? null) : null,
        },
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/rollouts/{id}',
      tags: ['rollouts'],
      summary: 'A rollout: waves, counts and every device',
      security: BEARER,
      middleware: [requireRole('viewer')] as const,
      request: { params: idParam },
      responses: { 200: json(rolloutView, 'The rollout'), ...errorResponses(401, 403, 404) },
    }),
    async (c) => c.json(toRolloutView(await rollouts.get(c.req.valid('param').id)), 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/rollouts/{id}/rollback',
      tags: ['rollouts'],
      summary:
        'Send a signed rollback instruction (fleet bundle sign-rollback) to the devices that committed this rollout',
      security: BEARER,
      middleware: [requireRole('approver')] as const,
      request: {
        params: idParam,
        body: jsonBody(
          z.strictObject({
            authorization: z.record(z.string(), z.unknown()).openapi({
              description: 'The signed instruction (DSSE envelope) as the CLI wrote it',
            }),
            reason: z.string().min(1).max(500),
          }),
        ),
      },
      responses: {
        200: json(
          z.object({
            sent: z.array(z.string()),
            skipped: z.array(
              z.object({ deviceId: z.string(), code: z.string(), message: z.string() }),
            ),
          }),
          'Devices sent the instruction, and those it does not cover with the reason',
        ),
        ...errorResponses(400, 401, 403, 404, 409),
      },
    }),
    async (c) => {
      const { authorization, reason } = c.req.valid('json');
      const result = await rollouts.rollback(
        c.req.valid('param').id,
        authorization,
        tokenActor(c.get('operator').tokenId),
        reason,
      );
      return c.json(result, 200);
    },
  );

  for (const action of ['pause', 'resume', 'abort'] as const) {
    app.openapi(
      createRoute({
        method: 'post',
        path: `/v1/rollouts/{id}/${action}`,
        tags: ['rollouts'],
        summary: `${action[0]!.toUpperCase()}${action.slice(1)} a rollout`,
        security: BEARER,
        middleware: [requireRole('operator')] as const,
        request: {
          params: idParam,
          ...(action === 'resume' ? {} : { body: jsonBody(reasonBody) }),
        },
        responses: {
          200: json(rolloutView, 'The rollout after the change'),
          ...errorResponses(400, 401, 403, 404, 409),
        },
      }),
      async (c) => {
        const { id } = c.req.valid('param');
        const actor = tokenActor(c.get('operator').tokenId);
        const reason = action === 'resume' ? '' : (await c.req.json<{ reason: string }>()).reason;
        const state =
          action === 'pause'
            ? await rollouts.pause(id, actor, reason)
            : action === 'abort'
              ? await rollouts.abort(id, actor, reason)
              : await rollouts.resume(id, actor);
        return c.json(toRolloutView(state), 200);
      },
    );
  }
}
