/**
 * Drift routes (viewer): `GET /v1/drift` shows a model version's drift per
 * cohort over time (scored windows with every signal's distances and the
 * drifted flags, the cumulative view, the open alert); `GET /v1/drift/alerts`
 * lists alerts. `fleet drift status` reads the first.
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { isCohortName } from '../../../core/drift/cohorts.ts';
import type { DriftReports } from '../../../services/drift-reports.ts';
import { BEARER, type AuthEnv, type RequireRole } from '../auth.ts';
import { errorResponses } from '../errors.ts';
import { jsonResponse as json } from './common.ts';

const MODEL_REF = /^([a-z0-9][a-z0-9._-]{0,63})(?:@([^@\s]{1,64}))?$/;

const modelParam = z
  .string()
  .regex(MODEL_REF, 'expected NAME or NAME@VERSION, e.g. mnist-2nn@1.2.0')
  .openapi({ example: 'mnist-2nn@1.2.0', description: 'NAME, or NAME@VERSION' });

function splitModel(text: string): { name: string; version?: string } {
  const [, name, version] = MODEL_REF.exec(text)!;
  return version === undefined ? { name: name! } : { name: name!, version };
}

const signalScore = z
  .object({
    name: z.string(),
    kind: z.enum(['numeric', 'categorical']),
    n: z.number().int(),
    insufficient: z.boolean(),
    drifted: z.boolean(),
    tripped: z.array(z.string()),
    distances: z.record(z.string(), z.number()).openapi({
      description:
        'psi, jensenShannon, hellinger, and for numbers ks and wasserstein (over the IQR)',
    }),
    error: z.string().optional(),
  })
  .openapi('DriftSignalScore');

const score = {
  verdict: z.enum(['drifted', 'clean', 'insufficient']),
  flushes: z.number().int(),
  sampled: z.number().int(),
  inferences: z.number().int(),
  driftedShare: z.number(),
  driftedSignals: z.array(z.string()),
  signals: z.array(signalScore),
};

const modelView = z.object({
  name: z.string(),
  version: z.string(),
  release: z.number().int(),
  bundleId: z.string(),
});

export const driftAlertView = z
  .object({
    id: z.string(),
    model: modelView,
    cohort: z.string(),
    window: z.object({ start: z.string(), end: z.string() }),
    driftedShare: z.number(),
    signals: z.array(
      z.object({
        name: z.string(),
        tripped: z.array(z.string()),
        distances: z.record(z.string(), z.number()),
      }),
    ),
    openedAt: z.string(),
    cleared: z.object({ at: z.string(), windowEnd: z.string() }).nullable(),
  })
  .openapi('DriftAlert');

export const driftStatusView = z
  .object({
    model: modelView,
    windowMs: z.number().int(),
    cohorts: z.array(
      z.object({
        cohort: z.string().openapi({ description: '`*` (the whole fleet) or KEY=VALUE' }),
        windows: z.array(
          z
            .object({ start: z.string(), end: z.string(), devices: z.number().int(), ...score })
            .openapi('DriftWindow'),
        ),
        cumulative: z.object({ ...score, updatedAt: z.string() }).nullable(),
        alert: driftAlertView.nullable(),
      }),
    ),
  })
  .openapi('DriftStatus');

export function driftRoutes(
  app: OpenAPIHono<AuthEnv>,
  deps: { reports: DriftReports; requireRole: RequireRole; nowMs: () => number },
) {
  const { reports, requireRole } = deps;

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/drift',
      tags: ['drift'],
      summary:
        'Drift of a model version per cohort: scored windows, the cumulative view, open alerts',
      security: BEARER,
      middleware: [requireRole('viewer')] as const,
      request: {
        query: z.object({
          model: modelParam,
          cohort: z
            .string()
            .max(300)
            .refine(isCohortName, 'expected KEY=VALUE, or * for the whole fleet')
            .optional(),
          since: z.iso
            .datetime({ offset: false })
            .optional()
            .openapi({ description: 'Windows ending after this time; default one hour ago' }),
          limit: z.coerce.number().int().min(1).max(1440).default(60).openapi({
            description: 'Newest windows per cohort',
          }),
        }),
      },
      responses: {
        200: json(driftStatusView, 'Drift per cohort'),
        ...errorResponses(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const query = c.req.valid('query');
      const since = query.since ? new Date(query.since) : new Date(deps.nowMs() - 3_600_000);
      const { name, version } = splitModel(query.model);
      const status = await reports.status({
        model: name,
        ...(version !== undefined ? { version } : {}),
        ...(query.cohort !== undefined ? { cohort: query.cohort } : {}),
        since,
        limit: query.limit,
      });
      return c.json(status, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/drift/alerts',
      tags: ['drift'],
      summary: 'Drift alerts, newest first',
      security: BEARER,
      middleware: [requireRole('viewer')] as const,
      request: {
        query: z.object({
          model: modelParam.optional(),
          open: z
            .enum(['true', 'false'])
            .optional()
            .openapi({ description: 'true: open alerts only; false: cleared ones only' }),
          limit: z.coerce.number().int().min(1).max(1000).default(100),
        }),
      },
      responses: {
        200: json(z.object({ alerts: z.array(driftAlertView) }), 'Alerts'),
        ...errorResponses(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const query = c.req.valid('query');
      const model: { name?: string; version?: string } =
        query.model === undefined ? {} : splitModel(query.model);
      const alerts = await reports.alerts({
        ...(model.name !== undefined ? { model: model.name } : {}),
        ...(model.version !== undefined ? { version: model.version } : {}),
        ...(query.open !== undefined ? { open: query.open === 'true' } : {}),
        limit: query.limit,
      });
      return c.json({ alerts }, 200);
    },
  );
}
