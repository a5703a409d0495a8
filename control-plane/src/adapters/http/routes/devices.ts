/**
 * Device routes: enrolment tokens (operator), enrolment (the device, with its
 * token), listing and lookup (viewer), tagging and revocation (operator).
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { TypedResponse } from 'hono';
import {
  hardwareClassSchema,
  signedEnvelopeSchema,
  tagKeySchema,
  tagsSchema,
} from '@fleet/protocol';
import {
  DEFAULT_PAGE_SIZE,
  MAX_PAGE_SIZE,
  decodeCursor,
  deviceStatusSchema,
  parseTagFilter,
  type DeviceQuery,
} from '../../../core/devices/device-query.ts';
import { controlPlaneError } from '../../../core/errors.ts';
import { tokenActor } from '../../db/actor.ts';
import type { DeviceRegistry } from '../../../services/device-registry.ts';
import { countOutcome, type Metrics } from '../metrics.ts';
import { BEARER, type AuthEnv, type RequireRole } from '../auth.ts';
import { errorResponses } from '../errors.ts';
import { deviceView, toDeviceView } from '../views.ts';
import { jsonResponse as json } from './common.ts';

const deviceIdParam = z.object({ id: z.string().max(64).openapi({ example: 'pump-17' }) });

export function deviceRoutes(
  app: OpenAPIHono<AuthEnv>,
  deps: {
    devices: DeviceRegistry;
    requireRole: RequireRole;
    metrics: Metrics;
    /** The trust root a new device pins (null before one is installed). */
    currentRoot: () => Promise<{ version: number; envelope: string } | null>;
    /** The broker URL devices are told at enrolment. */
    mqttUrl: string | null;
  },
) {
  const { devices, requireRole } = deps;

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/enrolment-tokens',
      tags: ['devices'],
      summary: 'Create a single-use, expiring enrolment token',
      security: BEARER,
      middleware: [requireRole('operator')] as const,
      request: {
        body: {
          required: true,
          content: {
            'application/json': {
              schema: z.strictObject({
                ttlSeconds: z
                  .number()
                  .int()
                  .min(1)
                  .max(30 * 24 * 3600)
                  .optional(),
                tags: tagsSchema.optional(),
                hardware: hardwareClassSchema.optional(),
              }),
            },
          },
        },
      },
      responses: {
        201: json(
          z.object({
            id: z.string(),
            token: z.string().openapi({ description: 'Shown once' }),
            expiresAt: z.string(),
            tags: z.record(z.string(), z.string()),
            hardware: z.string().nullable(),
          }),
          'The token (shown once)',
        ),
        ...errorResponses(400, 401, 403),
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const created = await devices.createEnrolmentToken(
        {
          ttlMs: body.ttlSeconds === undefined ? undefined : body.ttlSeconds * 1000,
          tags: body.tags,
          hardware: body.hardware ?? null,
        },
        tokenActor(c.get('operator').tokenId),
      );
      return c.json({ ...created, expiresAt: created.expiresAt.toISOString() }, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/enrol',
      tags: ['devices'],
      summary: 'Enrol a device (signed enrolment request with a token; no API token)',
      request: {
        body: {
          required: true,
          content: {
            'application/json': { schema: signedEnvelopeSchema },
          },
        },
      },
      responses: {
        201: json(
          z.object({
            device: deviceView,
            trustRoot: z
              .object({ version: z.number().int(), envelope: z.string() })
              .nullable()
              .openapi({ description: 'The current trust root to pin (signed envelope, base64)' }),
            mqttUrl: z.string().nullable().openapi({ description: 'Where the device connects' }),
          }),
          'The new device, the trust root to pin, and the broker to connect to',
        ),
        ...errorResponses(400, 403, 409, 413, 422),
      },
    }),
    async (c) => {
      const body = new Uint8Array(await c.req.arrayBuffer());
      const row = await countOutcome(deps.metrics.enrolments, {}, () => devices.enrol(body));
      const trustRoot = await deps.currentRoot();
      return c.json({ device: toDeviceView(row), trustRoot, mqttUrl: deps.mqttUrl }, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/devices',
      tags: ['devices'],
      summary: 'List devices (filtered, paginated by cursor)',
      security: BEARER,
      middleware: [requireRole('viewer')] as const,
      request: {
        query: z.object({
          tag: z
            .union([z.string(), z.array(z.string())])
            .optional()
            .openapi({ description: 'k=v; repeat for several (all must match)' }),
          hardware: hardwareClassSchema.optional(),
          status: deviceStatusSchema.optional(),
          lastSeenBefore: z.iso.datetime().optional(),
          lastSeenAfter: z.iso.datetime().optional(),
          limit: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).default(DEFAULT_PAGE_SIZE),
          cursor: z.string().max(200).optional(),
        }),
      },
      responses: {
        200: json(
          z.object({ devices: z.array(deviceView), nextCursor: z.string().nullable() }),
          'One page of devices, in id order',
        ),
        ...errorResponses(400, 401, 403),
      },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const query: DeviceQuery = { tags: {}, limit: q.limit };
      for (const text of [q.tag ?? []].flat()) {
        const pair = parseTagFilter(text);
        if (!pair)
          throw controlPlaneError(
            'INVALID_REQUEST',
            `tag: ${JSON.stringify(text)} is not key=value`,
          );
        query.tags[pair[0]] = pair[1];
      }
      if (q.hardware) query.hardware = q.hardware;
      if (q.status) query.status = q.status;
      if (q.lastSeenBefore) query.lastSeenBefore = new Date(q.lastSeenBefore);
      if (q.lastSeenAfter) query.lastSeenAfter = new Date(q.lastSeenAfter);
      if (q.cursor) {
        const afterId = decodeCursor(q.cursor);
        if (!afterId)
          throw controlPlaneError('INVALID_REQUEST', 'cursor: not a cursor from this API');
        query.afterId = afterId;
      }
      // The database renders the device views (device-view-sql.ts): the page
      // is joined as text, not mapped and serialized again here.
      const page = await devices.listViews(query);
      const body = `{"devices":${page.devicesJson},"nextCursor":${JSON.stringify(page.nextCursor)}}`;
      // Typed as the JSON it is: the route's schema documents it, the
      // view-sql test holds the text to `toDeviceView`.
      return c.body(body, 200, { 'content-type': 'application/json' }) as unknown as TypedResponse<
        { devices: z.infer<typeof deviceView>[]; nextCursor: string | null },
        200,
        'json'
      >;
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/devices/{id}',
      tags: ['devices'],
      summary: 'One device',
      security: BEARER,
      middleware: [requireRole('viewer')] as const,
      request: { params: deviceIdParam },
      responses: { 200: json(deviceView, 'The device'), ...errorResponses(401, 403, 404) },
    }),
    async (c) => c.json(toDeviceView(await devices.get(c.req.valid('param').id)), 200),
  );

  app.openapi(
    createRoute({
      method: 'patch',
      path: '/v1/devices/{id}/tags',
      tags: ['devices'],
      summary: 'Set and remove tags',
      security: BEARER,
      middleware: [requireRole('operator')] as const,
      request: {
        params: deviceIdParam,
        body: {
          required: true,
          content: {
            'application/json': {
              schema: z.strictObject({
                set: tagsSchema.optional(),
                remove: z.array(tagKeySchema).max(16).optional(),
              }),
            },
          },
        },
      },
      responses: {
        200: json(deviceView, 'The device after the edit'),
        ...errorResponses(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const row = await devices.editTags(
        c.req.valid('param').id,
        c.req.valid('json'),
        tokenActor(c.get('operator').tokenId),
      );
      return c.json(toDeviceView(row), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/devices/{id}/revoke',
      tags: ['devices'],
      summary: 'Revoke a device: it is disconnected and refused from now on',
      security: BEARER,
      middleware: [requireRole('operator')] as const,
      request: {
        params: deviceIdParam,
        body: {
          required: true,
          content: {
            'application/json': { schema: z.strictObject({ reason: z.string().min(1).max(500) }) },
          },
        },
      },
      responses: {
        200: json(deviceView, 'The revoked device'),
        ...errorResponses(400, 401, 403, 404, 409),
      },
    }),
    async (c) => {
      const row = await devices.revoke(
        c.req.valid('param').id,
        tokenActor(c.get('operator').tokenId),
        c.req.valid('json').reason,
      );
      return c.json(toDeviceView(row), 200);
    },
  );
}
