/**
 * Governance routes: held-out eval sets (upload: operator; list: viewer),
 * model risk tiers, promotion policies and round triggers (set: admin;
 * read: viewer; `flOnDrift` and `flSchedule` as core/fl/fl-triggers.ts
 * checks them, null turning one off), and
 * the approval of a federated candidate waiting for one (approver), which
 * starts its rollout through the round.
 *
 * An eval-set upload is capped while it streams (`fl.maxEvalSetBytes`) and
 * decoded whole before anything is stored: a bad file stores nothing.
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { modelNameSchema } from '@fleet/protocol';
import { tokenActor } from '../../db/actor.ts';
import type { ApprovalRow, EvalSetRow } from '../../db/governance-store.ts';
import type { EvalSets } from '../../../services/eval-sets.ts';
import type { ModelPolicies, ModelPolicy } from '../../../services/model-policies.ts';
import type { FlCandidates } from '../../../services/fl-candidates.ts';
import { limitBody } from '../body-limits.ts';
import { BEARER, type AuthEnv, type RequireRole } from '../auth.ts';
import { errorResponses } from '../errors.ts';
import { jsonBody, jsonResponse as json } from './common.ts';

export interface GovernanceDeps {
  evalSets: EvalSets;
  policies: ModelPolicies;
  candidates: Pick<FlCandidates, 'approve'>;
  /** Largest eval-set upload accepted. */
  maxEvalSetBytes: number;
}

const evalSetView = z
  .object({
    name: z.string(),
    blobId: z.string(),
    sizeBytes: z.number().int(),
    sampleCount: z.number().int(),
    featureCount: z.number().int(),
    classCount: z.number().int(),
    uploadedBy: z.string(),
    uploadedAt: z.string(),
  })
  .openapi('EvalSet');

const roundTemplate = {
  evalSet: z.string().min(1).max(128).openapi({ description: 'Held-out eval set name' }),
  config: z.record(z.string(), z.unknown()).openapi({
    description: 'Round config overrides (the names `POST /v1/fl/rounds` takes under config)',
  }),
  rollout: z.record(z.string(), z.unknown()).optional().openapi({
    description: 'Rollout template of a promoted candidate (`POST /v1/rollouts` body, no model)',
  }),
};
const targetField = z.union([z.string().max(10_000), z.record(z.string(), z.unknown())]).openapi({
  example: 'tag:site=berlin',
  description: '`all`, or tag:/hardware:/id: terms (as rollouts take it), or a selector object',
});

const flOnDriftView = z
  .object({ ...roundTemplate, cooldownMs: z.number().int() })
  .openapi('FlOnDrift', {
    description:
      "A drift alert for a cohort starts a round on that cohort from the alerted version (none while one of the model's rounds is active or within cooldownMs of the last drift-started one)",
  });
const flScheduleView = z
  .object({
    ...roundTemplate,
    everyMs: z.number().int(),
    target: z.record(z.string(), z.unknown()).openapi({ description: 'A target selector' }),
  })
  .openapi('FlSchedule', {
    description:
      'A round every everyMs on target, from the latest version (none while one is active)',
  });

const policyView = z
  .object({
    model: z.string(),
    riskTier: z.enum(['low', 'high']),
    autoPromote: z.boolean(),
    promotionMargin: z.number(),
    flOnDrift: flOnDriftView.nullable(),
    flSchedule: flScheduleView.nullable(),
    explicit: z.boolean().openapi({ description: 'false: no policy was set, these are defaults' }),
    updatedBy: z.string().nullable(),
    updatedAt: z.string().nullable(),
  })
  .openapi('ModelPolicy');

const approvalView = z
  .object({
    bundleId: z.string(),
    model: z.string(),
    version: z.string(),
    release: z.number().int(),
    roundId: z.string(),
    status: z.enum(['pending', 'approved', 'rejected']),
    requestedAt: z.string(),
    decidedBy: z.string().nullable(),
    decidedAt: z.string().nullable(),
    rolloutId: z.string().nullable(),
  })
  .openapi('ModelApproval');

const toEvalSetView = (r: EvalSetRow): z.infer<typeof evalSetView> => ({
  ...r,
  uploadedAt: r.uploadedAt.toISOString(),
});

const toPolicyView = (p: ModelPolicy): z.infer<typeof policyView> => ({
  model: p.modelName,
  riskTier: p.riskTier,
  autoPromote: p.autoPromote,
  promotionMargin: p.promotionMargin,
  flOnDrift: p.flOnDrift,
  flSchedule: p.flSchedule && { ...p.flSchedule, target: { ...p.flSchedule.target } },
  explicit: p.explicit,
  updatedBy: p.updatedBy,
  updatedAt: p.updatedAt,
});

const toApprovalView = (a: ApprovalRow): z.infer<typeof approvalView> => ({
  bundleId: a.bundleId,
  model: a.modelName,
  version: a.version,
  release: a.release,
  roundId: a.roundId,
  status: a.status,
  requestedAt: a.requestedAt.toISOString(),
  decidedBy: a.decidedBy,
  decidedAt: a.decidedAt?.toISOString() ?? null,
  rolloutId: a.rolloutId,
});

const nameParam = z.object({ name: modelNameSchema });

export function governanceRoutes(
  app: OpenAPIHono<AuthEnv>,
  deps: GovernanceDeps & { requireRole: RequireRole },
) {
  const { evalSets, policies, candidates, requireRole } = deps;

  app.openapi(
    createRoute({
      method: 'put',
      path: '/v1/eval-sets/{name}',
      tags: ['governance'],
      summary: 'Upload (or replace) a held-out evaluation set: a labelled .fleval file',
      security: BEARER,
      middleware: [
        requireRole('operator'),
        limitBody('the eval set', deps.maxEvalSetBytes),
      ] as const,
      request: {
        params: nameParam,
        body: {
          required: true,
          content: {
            'application/octet-stream': { schema: z.string().openapi({ format: 'binary' }) },
          },
        },
      },
      responses: {
        200: json(evalSetView, 'The stored eval set'),
        ...errorResponses(400, 401, 403, 413),
      },
    }),
    async (c) => {
      const { name } = c.req.valid('param');
      const bytes = new Uint8Array(await c.req.arrayBuffer());
      const row = await evalSets.put(name, bytes, tokenActor(c.get('operator').tokenId));
      return c.json(toEvalSetView(row), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/eval-sets',
      tags: ['governance'],
      summary: 'Held-out evaluation sets',
      security: BEARER,
      middleware: [requireRole('viewer')] as const,
      responses: {
        200: json(z.object({ evalSets: z.array(evalSetView) }), 'Every eval set'),
        ...errorResponses(401, 403),
      },
    }),
    async (c) => c.json({ evalSets: (await evalSets.list()).map(toEvalSetView) }, 200),
  );

  app.openapi(
    createRoute({
      method: 'put',
      path: '/v1/models/{name}/policy',
      tags: ['governance'],
      summary:
        "Set a model's risk tier, auto-promotion, promotion margin and round triggers (fields not given stay; null turns a trigger off)",
      security: BEARER,
      middleware: [requireRole('admin')] as const,
      request: {
        params: nameParam,
        body: jsonBody(
          z.strictObject({
            riskTier: z.enum(['low', 'high']).optional(),
            autoPromote: z.boolean().optional(),
            promotionMargin: z.number().min(0).lt(1).optional().openapi({ example: 0.005 }),
            flOnDrift: z
              .strictObject({
                ...roundTemplate,
                config: roundTemplate.config.optional(),
                cooldownMs: z.number().int().min(0).optional().openapi({ example: 3_600_000 }),
              })
              .nullable()
              .optional(),
            flSchedule: z
              .strictObject({
                ...roundTemplate,
                config: roundTemplate.config.optional(),
                everyMs: z.number().int().min(60_000).openapi({ example: 86_400_000 }),
                target: targetField,
              })
              .nullable()
              .optional(),
          }),
        ),
      },
      responses: {
        200: json(policyView, 'The policy now in force'),
        ...errorResponses(400, 401, 403),
      },
    }),
    async (c) => {
      const { name } = c.req.valid('param');
      const policy = await policies.set(
        name,
        c.req.valid('json'),
        tokenActor(c.get('operator').tokenId),
      );
      return c.json(toPolicyView(policy), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/models/{name}/policy',
      tags: ['governance'],
      summary: "A model's promotion policy (the defaults when none was set)",
      security: BEARER,
      middleware: [requireRole('viewer')] as const,
      request: { params: nameParam },
      responses: { 200: json(policyView, 'The policy'), ...errorResponses(400, 401, 403) },
    }),
    async (c) => c.json(toPolicyView(await policies.policyFor(c.req.valid('param').name)), 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/models/{name}/versions/{release}/approve',
      tags: ['governance'],
      summary: 'Approve a federated candidate awaiting approval: its round starts the rollout',
      security: BEARER,
      middleware: [requireRole('approver')] as const,
      request: {
        params: z.object({
          name: modelNameSchema,
          release: z.coerce.number().int().min(1).openapi({ example: 4 }),
        }),
      },
      responses: {
        200: json(approvalView, 'The approval, with the rollout it started'),
        ...errorResponses(400, 401, 403, 404, 409),
      },
    }),
    async (c) => {
      const { name, release } = c.req.valid('param');
      const approval = await candidates.approve(
        name,
        release,
        tokenActor(c.get('operator').tokenId),
      );
      return c.json(toApprovalView(approval), 200);
    },
  );
}
