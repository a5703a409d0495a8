/**
 * Hooks an external broker calls so its devices get the embedded broker's
 * rules (docs/external-broker.md): device login (EMQX HTTP authentication,
 * mosquitto-go-auth's HTTP backend) and topic access (EMQX HTTP authorization,
 * go-auth ACL). The broker authenticates with an API token of its own (viewer
 * is enough: the hooks only answer allow or deny).
 *
 * EMQX style (default): always 200 with `{ "result": "allow" | "deny" }`.
 * go-auth style (`?style=go-auth`): 200 to allow, 403 to deny.
 * The control plane's own broker account is not a device: configure it in the
 * broker's built-in authenticator, placed before this hook.
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { canPublish, canSubscribe, utf8 } from '@fleet/protocol';
import {
  checkDeviceLogin,
  deviceMayPublish,
  type DeviceDirectory,
} from '../../../core/devices/device-login.ts';
import type { Metrics } from '../metrics.ts';
import { BEARER, type AuthEnv, type RequireRole } from '../auth.ts';
import { errorResponses } from '../errors.ts';
import { jsonBody, jsonResponse as json } from './common.ts';

const styleQuery = z.object({ style: z.enum(['emqx', 'go-auth']).default('emqx') });
const verdictView = z.object({ result: z.enum(['allow', 'deny']) });

/** go-auth `acc`: 1 read (delivery), 2 write (publish), 3 both, 4 subscribe. */
function accessAllowed(body: {
  username: string;
  topic: string;
  acc?: number;
  action?: string;
  retain?: boolean;
}): boolean {
  const { username, topic } = body;
  if (body.action === 'publish') return deviceMayPublish(username, topic, body.retain === true);
  if (body.action === 'subscribe') return canSubscribe(username, topic);
  switch (body.acc) {
    case 1:
    case 4:
      return canSubscribe(username, topic);
    case 2:
      return canPublish(username, topic);
    case 3:
      return canPublish(username, topic) && canSubscribe(username, topic);
    default:
      return false;
  }
}

export function brokerHookRoutes(
  app: OpenAPIHono<AuthEnv>,
  deps: {
    directory: DeviceDirectory;
    nowMs: () => number;
    requireRole: RequireRole;
    metrics: Metrics;
  },
) {
  /** 200 allow; deny as 200 `{result:'deny'}` (EMQX) or 403 (go-auth). */
  const verdict = (allow: boolean, style: 'emqx' | 'go-auth') =>
    allow
      ? { body: { result: 'allow' as const }, status: 200 as const }
      : style === 'go-auth'
        ? { body: { result: 'deny' as const }, status: 403 as const }
        : { body: { result: 'deny' as const }, status: 200 as const };

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/broker/authenticate',
      tags: ['broker'],
      summary: 'External broker hook: may this client connect as a device?',
      security: BEARER,
      middleware: [deps.requireRole('viewer')] as const,
      request: {
        query: styleQuery,
        body: jsonBody(
          z.object({
            username: z.string().max(128).default(''),
            password: z.string().max(8192).default(''),
            clientid: z.string().max(128),
          }),
        ),
      },
      responses: {
        200: json(verdictView, 'The verdict (EMQX style; go-auth: allowed)'),
        403: json(verdictView, 'Denied (go-auth style)'),
        ...errorResponses(400, 401),
      },
    }),
    async (c) => {
      const { username, password, clientid } = c.req.valid('json');
      const login = await checkDeviceLogin(
        deps.directory,
        { username, clientId: clientid, password: utf8(password) },
        deps.nowMs(),
      );
      deps.metrics.deviceMessages.inc({
        topic: 'broker-login',
        result: login.ok ? 'ok' : login.refusal,
      });
      const out = verdict(login.ok, c.req.valid('query').style);
      return out.status === 200 ? c.json(out.body, 200) : c.json(out.body, 403);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/broker/acl',
      tags: ['broker'],
      summary: 'External broker hook: may this device publish or subscribe to this topic?',
      security: BEARER,
      middleware: [deps.requireRole('viewer')] as const,
      request: {
        query: styleQuery,
        body: jsonBody(
          z.object({
            username: z.string().max(128),
            topic: z.string().max(1024),
            clientid: z.string().max(128).optional(),
            acc: z.number().int().optional(),
            action: z.enum(['publish', 'subscribe']).optional(),
            retain: z.boolean().optional(),
          }),
        ),
      },
      responses: {
        200: json(verdictView, 'The verdict (EMQX style; go-auth: allowed)'),
        403: json(verdictView, 'Denied (go-auth style)'),
        ...errorResponses(400, 401),
      },
    }),
    (c) => {
      const body = c.req.valid('json');
      // The client id must be the device id (THREATS 29), when the broker sends it.
      const allow =
        (body.clientid === undefined || body.clientid === body.username) && accessAllowed(body);
      const out = verdict(allow, c.req.valid('query').style);
      return out.status === 200 ? c.json(out.body, 200) : c.json(out.body, 403);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/broker/superuser',
      tags: ['broker'],
      summary: 'External broker hook (go-auth): no device is a superuser',
      security: BEARER,
      middleware: [deps.requireRole('viewer')] as const,
      request: { query: styleQuery },
      responses: {
        200: json(verdictView, 'Denied (EMQX style)'),
        403: json(verdictView, 'Denied (go-auth style)'),
        ...errorResponses(401),
      },
    }),
    (c) => {
      const out = verdict(false, c.req.valid('query').style);
      return out.status === 200 ? c.json(out.body, 200) : c.json(out.body, 403);
    },
  );
}
