/**
 * Operator routes: API tokens (admin only) and the audit log (viewer reads,
 * verification of the hash chain).
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { OPERATOR_ROLES } from '../../../core/auth/operator-tokens.ts';
import type { AuditStore } from '../../db/audit-store.ts';
import { tokenActor } from '../../db/actor.ts';
import type { Operators } from '../../../services/operators.ts';
import { BEARER, type AuthEnv, type RequireRole } from '../auth.ts';
import { errorResponses } from '../errors.ts';
import { toTokenView, tokenView } from '../views.ts';
import { jsonBody, jsonResponse as json } from './common.ts';

const auditEntryView = z
  .object({
    seq: z.number().int(),
    at: z.string(),
    actor: z.string(),
    action: z.string(),
    subject: z.string(),
    before: z.unknown(),
    after: z.unknown(),
    prevHash: z.string(),
    hash: z.string(),
  })
  .openapi('AuditEntry');

const verdictView = z
  .object({
    ok: z.boolean(),
    count: z.number().int().optional(),
    head: z.object({ seq: z.number().int(), hash: z.string() }).nullable().optional(),
    seq: z.number().int().optional().openapi({ description: 'First row where the chain breaks' }),
    problem: z.enum(['edited', 'missing-or-reordered', 'broken-link', 'truncated']).optional(),
  })
  .openapi('AuditVerdict');

export function operatorRoutes(
  app: OpenAPIHono<AuthEnv>,
  deps: { operators: Operators; audit: AuditStore; requireRole: RequireRole },
) {
  const { operators, audit, requireRole } = deps;

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/tokens',
      tags: ['operators'],
      summary: 'Create an API token (the secret is shown once)',
      security: BEARER,
      middleware: [requireRole('admin')] as const,
      request: {
        body: jsonBody(
          z.strictObject({ name: z.string().min(1).max(100), role: z.enum(OPERATOR_ROLES) }),
        ),
      },
      responses: {
        201: json(
          tokenView.extend({ secret: z.string().openapi({ description: 'Shown once' }) }),
          'The new token',
        ),
        ...errorResponses(400, 401, 403),
      },
    }),
    async (c) => {
      const { row, secret } = await operators.create(
        c.req.valid('json'),
        tokenActor(c.get('operator').tokenId),
      );
      return c.json({ ...toTokenView(row), secret }, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/tokens',
      tags: ['operators'],
      summary: 'API tokens (never their secrets)',
      security: BEARER,
      middleware: [requireRole('admin')] as const,
      responses: {
        200: json(z.object({ tokens: z.array(tokenView) }), 'All tokens'),
        ...errorResponses(401, 403),
      },
    }),
    async (c) => c.json({ tokens: (await operators.list()).map(toTokenView) }, 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/tokens/{id}/revoke',
      tags: ['operators'],
      summary: 'Revoke an API token',
      security: BEARER,
      middleware: [requireRole('admin')] as const,
      request: { params: z.object({ id: z.string().max(64) }) },
      responses: {
        200: json(tokenView, 'The revoked token'),
        ...errorResponses(401, 403, 404, 409),
      },
    }),
    async (c) => {
      const row = await operators.revoke(
        c.req.valid('param').id,
        tokenActor(c.get('operator').tokenId),
      );
      return c.json(toTokenView(row), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/audit',
      tags: ['audit'],
      summary: 'Audit entries after a sequence number, oldest first',
      security: BEARER,
      middleware: [requireRole('viewer')] as const,
      request: {
        query: z.object({
          after: z.coerce.number().int().min(0).default(0),
          limit: z.coerce.number().int().min(1).max(1000).default(100),
        }),
      },
      responses: {
        200: json(z.object({ entries: z.array(auditEntryView) }), 'A page of the log'),
        ...errorResponses(400, 401, 403),
      },
    }),
    async (c) => {
      const { after, limit } = c.req.valid('query');
      return c.json({ entries: await audit.page(after, limit) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/audit/verify',
      tags: ['audit'],
      summary: 'Replay the hash chain; with a head recorded earlier, also catch a cut-off tail',
      security: BEARER,
      middleware: [requireRole('viewer')] as const,
      request: {
        query: z.object({
          headSeq: z.coerce.number().int().min(1).optional(),
          headHash: z
            .string()
            .regex(/^[0-9a-f]{64}$/)
            .optional(),
        }),
      },
      responses: { 200: json(verdictView, 'The verdict'), ...errorResponses(400, 401, 403) },
    }),
    async (c) => {
      const { headSeq, headHash } = c.req.valid('query');
      const expected =
        headSeq !== undefined && headHash ? { seq: headSeq, hash: headHash } : undefined;
      return c.json(await audit.verify(expected), 200);
    },
  );
}
