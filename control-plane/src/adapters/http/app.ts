/**
 * The control plane's HTTP API as a Hono app, built from its services so
 * tests drive it through `app.request()` and `main.ts` serves it with
 * @hono/node-server. Versioned routes live under `/v1`; `/healthz`,
 * `/metrics` (Prometheus), `/openapi.json` and `/docs` (a readable reference
 * page rendered from the OpenAPI document) sit beside them.
 */
import { OpenAPIHono } from '@hono/zod-openapi';
import { Scalar } from '@scalar/hono-api-reference';
import { HTTPException } from 'hono/http-exception';
import { routePath } from 'hono/route';
import type { Logger } from 'pino';
import type { BlobStore } from '../../core/models/blob-store.ts';
import type { AuditStore } from '../db/audit-store.ts';
import type { ModelStore } from '../db/model-store.ts';
import type { DeviceRegistry } from '../../services/device-registry.ts';
import type { ModelRegistry } from '../../services/model-registry.ts';
import type { Operators } from '../../services/operators.ts';
import { createAuth, type AuthEnv } from './auth.ts';
import { describeIssues, toApiError } from './errors.ts';
import { limitRequestBodies } from './body-limits.ts';
import type { Metrics } from './metrics.ts';
import { deviceRoutes } from './routes/devices.ts';
import { modelRoutes } from './routes/models.ts';
import { operatorRoutes } from './routes/operators.ts';
import { brokerHookRoutes } from './routes/broker-hooks.ts';
import { rolloutRoutes } from './routes/rollouts.ts';
import type { RolloutService } from '../../services/rollout-service.ts';
import { driftRoutes } from './routes/drift.ts';
import type { DriftReports } from '../../services/drift-reports.ts';
import { flRoutes } from './routes/fl.ts';
import type { FlRounds } from '../../services/fl-rounds.ts';
import { governanceRoutes, type GovernanceDeps } from './routes/governance.ts';

export const API_VERSION = '0.1.0';

export interface AppDeps {
  devices: DeviceRegistry;
  models: ModelRegistry;
  modelStore: ModelStore;
  blobs: BlobStore;
  operators: Operators;
  audit: AuditStore;
  metrics: Metrics;
  logger: Logger;
  /** Named readiness checks (database, broker); `/healthz` is 503 when one fails. */
  health: Record<string, () => Promise<void>>;
  /** Largest bundle upload accepted. */
  maxBundleBytes: number;
  nowMs: () => number;
  /** The broker URL told to enrolling devices (null: no broker). */
  deviceMqttUrl: string | null;
  /** Rollout routes are served when given. */
  rollouts?: RolloutService;
  /** Drift routes are served when given. */
  drift?: DriftReports;
  /** Federated round routes are served when given. */
  fl?: FlRounds;
  /** Eval sets, model policies and approvals are served when given. */
  governance?: GovernanceDeps;
}

export function createApp(deps: AppDeps): OpenAPIHono<AuthEnv> {
  const app = new OpenAPIHono<AuthEnv>({
    // A body, query or path that fails its schema: 400 naming the field.
    defaultHook: (result, c) => {
      if (!result.success) {
        return c.json(
          { error: { code: 'INVALID_REQUEST', message: describeIssues(result.error.issues) } },
          400,
        );
      }
    },
  });
  app.openAPIRegistry.registerComponent('securitySchemes', 'Bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'An operator API token (fleet_...), created by `fleet tokens create`',
  });

  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    const seconds = (performance.now() - started) / 1000;
    const route = routePath(c, -1);
    deps.metrics.httpRequests.inc({ method: c.req.method, route, status: String(c.res.status) });
    deps.metrics.httpDuration.observe({ method: c.req.method, route }, seconds);
    deps.logger.info(
      {
        method: c.req.method,
        path: c.req.path,
        route,
        status: c.res.status,
        durationMs: Math.round(seconds * 10000) / 10,
        actor: c.get('operator')?.tokenId,
      },
      'request',
    );
  });

  app.use('/v1/*', limitRequestBodies());

  app.onError((error, c) => {
    const api = toApiError(error);
    if (api) return c.json(api.body, api.status);
    if (error instanceof HTTPException && error.status < 500) {
      // Hono's own refusals: malformed JSON, wrong content type.
      const code = error.status === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : 'INVALID_REQUEST';
      return c.json({ error: { code, message: error.message || 'invalid request' } }, error.status);
    }
    deps.logger.error({ err: error, path: c.req.path }, 'unhandled error');
    return c.json(
      { error: { code: 'INTERNAL', message: 'internal error (see the control plane log)' } },
      500,
    );
  });
  app.notFound((c) =>
    c.json(
      { error: { code: 'NOT_FOUND', message: `no route ${c.req.method} ${c.req.path}` } },
      404,
    ),
  );

  app.get('/healthz', async (c) => {
    const checks: Record<string, string> = {};
    let ok = true;
    for (const [name, check] of Object.entries(deps.health)) {
      try {
        await check();
        checks[name] = 'ok';
      } catch (error) {
        ok = false;
        checks[name] = error instanceof Error ? error.message : String(error);
      }
    }
    return c.json({ status: ok ? 'ok' : 'unavailable', checks }, ok ? 200 : 503);
  });

  app.get('/metrics', async (c) =>
    c.body(await deps.metrics.registry.metrics(), 200, {
      'content-type': deps.metrics.registry.contentType,
    }),
  );

  const requireRole = createAuth(deps.operators);
  deviceRoutes(app, {
    devices: deps.devices,
    requireRole,
    metrics: deps.metrics,
    currentRoot: async () => {
      const row = await deps.modelStore.currentRoot();
      return row ? { version: row.version, envelope: row.envelope } : null;
    },
    mqttUrl: deps.deviceMqttUrl,
  });
  modelRoutes(app, {
    registry: deps.models,
    store: deps.modelStore,
    blobs: deps.blobs,
    requireRole,
    metrics: deps.metrics,
    maxBundleBytes: deps.maxBundleBytes,
  });
  operatorRoutes(app, { operators: deps.operators, audit: deps.audit, requireRole });
  if (deps.rollouts) rolloutRoutes(app, { rollouts: deps.rollouts, requireRole });
  if (deps.drift) driftRoutes(app, { reports: deps.drift, requireRole, nowMs: deps.nowMs });
  if (deps.fl) flRoutes(app, { rounds: deps.fl, requireRole });
  if (deps.governance) governanceRoutes(app, { ...deps.governance, requireRole });
  brokerHookRoutes(app, {
    directory: deps.devices,
    nowMs: deps.nowMs,
    requireRole,
    metrics: deps.metrics,
  });

  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'Fleet control plane',
      version: API_VERSION,
      description:
        'Devices, enrolment, the model registry, trust roots, API tokens and the audit log. ' +
        'Errors are `{ "error": { "code", "message" } }`.',
    },
  });
  app.get('/docs', Scalar({ url: '/openapi.json', pageTitle: 'Fleet control plane API' }));
  return app;
}
