/**
 * Model registry and trust-root routes: bundle upload (operator; verified
 * before anything is stored), versions, lineage and bundle download (viewer),
 * the trust root (read by anyone, including devices; installed and rotated by
 * an admin).
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { limitBody, MAX_BODY_BYTES } from '../body-limits.ts';
import { modelNameSchema } from '@fleet/protocol';
import { controlPlaneError } from '../../../core/errors.ts';
import type { BlobStore } from '../../../core/models/blob-store.ts';
import { tokenActor } from '../../db/actor.ts';
import type { ModelStore } from '../../db/model-store.ts';
import type { ModelRegistry } from '../../../services/model-registry.ts';
import { countOutcome, type Metrics } from '../metrics.ts';
import { BEARER, type AuthEnv, type RequireRole } from '../auth.ts';
import { errorResponses } from '../errors.ts';
import {
  lineageStepView,
  modelVersionView,
  toLineageStep,
  toModelVersionView,
  toTrustRootView,
  trustRootView,
} from '../views.ts';
import { jsonResponse as json } from './common.ts';

const versionParams = z.object({
  name: modelNameSchema,
  release: z.coerce.number().int().min(1).openapi({ example: 3 }),
});
const binary = z.string().openapi({ format: 'binary' });

export function modelRoutes(
  app: OpenAPIHono<AuthEnv>,
  deps: {
    registry: ModelRegistry;
    store: ModelStore;
    blobs: BlobStore;
    requireRole: RequireRole;
    metrics: Metrics;
    maxBundleBytes: number;
  },
) {
  const { registry, store, requireRole } = deps;

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/models',
      tags: ['models'],
      summary: 'Upload a signed bundle (verified against the trust root first)',
      security: BEARER,
      middleware: [requireRole('operator'), limitBody('the bundle', deps.maxBundleBytes)] as const,
      request: {
        body: { required: true, content: { 'application/octet-stream': { schema: binary } } },
      },
      responses: {
        201: json(modelVersionView, 'The registered version'),
        ...errorResponses(400, 401, 403, 409, 413, 422),
      },
    }),
    async (c) => {
      const bytes = new Uint8Array(await c.req.arrayBuffer());
      const actor = tokenActor(c.get('operator').tokenId);
      const row = await countOutcome(deps.metrics.bundleUploads, {}, () =>
        registry.upload(bytes, actor),
      );
      return c.json(toModelVersionView(row), 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/models',
      tags: ['models'],
      summary: 'Models and their latest versions',
      security: BEARER,
      middleware: [requireRole('viewer')] as const,
      responses: {
        200: json(
          z.object({
            models: z.array(
              z.object({
                name: z.string(),
                versions: z.number().int(),
                latestVersion: z.string(),
                latestRelease: z.number().int(),
              }),
            ),
          }),
          'Every model name',
        ),
        ...errorResponses(401, 403),
      },
    }),
    async (c) => c.json({ models: await store.listModels() }, 200),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/models/{name}/versions',
      tags: ['models'],
      summary: 'Versions of one model, newest first',
      security: BEARER,
      middleware: [requireRole('viewer')] as const,
      request: { params: z.object({ name: modelNameSchema }) },
      responses: {
        200: json(z.object({ versions: z.array(modelVersionView) }), 'Its versions'),
        ...errorResponses(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const { name } = c.req.valid('param');
      const rows = await store.listVersions(name);
      if (rows.length === 0) throw controlPlaneError('NOT_FOUND', `model ${name} has no versions`);
      return c.json({ versions: rows.map(toModelVersionView) }, 200);
    },
  );

  const mustGet = async (name: string, release: number) => {
    const row = await store.getVersion(name, release);
    if (!row) throw controlPlaneError('NOT_FOUND', `${name} release ${release} is not registered`);
    return row;
  };

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/models/{name}/versions/{release}',
      tags: ['models'],
      summary: 'One version: manifest, quantization report, lineage',
      security: BEARER,
      middleware: [requireRole('viewer')] as const,
      request: { params: versionParams },
      responses: {
        200: json(modelVersionView, 'The version'),
        ...errorResponses(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const { name, release } = c.req.valid('param');
      return c.json(toModelVersionView(await mustGet(name, release)), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/models/{name}/versions/{release}/lineage',
      tags: ['models'],
      summary: 'The version and its ancestors, walking lineage parents',
      security: BEARER,
      middleware: [requireRole('viewer')] as const,
      request: { params: versionParams },
      responses: {
        200: json(
          z.object({ lineage: z.array(lineageStepView) }),
          'This version first, then its parents',
        ),
        ...errorResponses(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const { name, release } = c.req.valid('param');
      return c.json({ lineage: (await registry.lineage(name, release)).map(toLineageStep) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/models/{name}/versions/{release}/bundle',
      tags: ['models'],
      summary: 'Download the bundle file',
      security: BEARER,
      middleware: [requireRole('viewer')] as const,
      request: { params: versionParams },
      responses: {
        200: {
          description: 'The bundle',
          content: { 'application/octet-stream': { schema: binary } },
        },
        ...errorResponses(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const { name, release } = c.req.valid('param');
      const row = await mustGet(name, release);
      const bytes = await deps.blobs.get(row.bundleId);
      if (!bytes)
        throw new Error(`bundle ${row.bundleId} is registered but missing from the blob store`);
      return c.body(bytes.slice().buffer, 200, {
        'content-type': 'application/octet-stream',
        'content-disposition': `attachment; filename="${name}-${row.version}.fleet"`,
      });
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/trust/roots',
      tags: ['trust'],
      summary: 'Installed trust roots after a version: the rotation chain a device follows',
      request: { query: z.object({ after: z.coerce.number().int().min(0).default(0) }) },
      responses: {
        200: json(z.object({ roots: z.array(trustRootView) }), 'Oldest first'),
        ...errorResponses(400),
      },
    }),
    async (c) =>
      c.json(
        { roots: (await store.rootsAfter(c.req.valid('query').after)).map(toTrustRootView) },
        200,
      ),
  );

  app.openapi(
    createRoute({
      method: 'put',
      path: '/v1/trust/root',
      tags: ['trust'],
      summary:
        'Install the first trust root, or rotate to the next (signed by old and new root keys)',
      security: BEARER,
      middleware: [requireRole('admin'), limitBody('the root', MAX_BODY_BYTES)] as const,
      request: {
        body: { required: true, content: { 'application/octet-stream': { schema: binary } } },
      },
      responses: {
        201: json(trustRootView, 'The installed root'),
        ...errorResponses(400, 401, 403, 409, 413, 422),
      },
    }),
    async (c) => {
      const envelope = new Uint8Array(await c.req.arrayBuffer());
      const row = await registry.installRoot(envelope, tokenActor(c.get('operator').tokenId));
      return c.json(toTrustRootView(row), 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/trust/root',
      tags: ['trust'],
      summary: 'The current trust root (signed; anyone may read it)',
      responses: { 200: json(trustRootView, 'The current root'), ...errorResponses(409) },
    }),
    async (c) => {
      // Only roots that passed verification are ever installed: serve the row as it is.
      const row = await store.currentRoot();
      if (!row) throw controlPlaneError('NO_TRUST_ROOT', 'no trust root is installed yet');
      return c.json(toTrustRootView(row), 200);
    },
  );
}
