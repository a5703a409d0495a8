/**
 * Request body caps, enforced while the body streams in (Hono's bodyLimit
 * counts bytes as they arrive, not only the Content-Length): every /v1 body
 * is JSON or a signed root of at most 64 KiB, except bundle uploads, which
 * have their own, larger cap (THREATS 14, 31).
 */
import { bodyLimit } from 'hono/body-limit';
import type { MiddlewareHandler } from 'hono';
import { controlPlaneError } from '../../core/errors.ts';

export const MAX_BODY_BYTES = 64 * 1024;

/** Refuses a body above `maxBytes` with PAYLOAD_TOO_LARGE (413) naming `what`. */
export function limitBody(what: string, maxBytes: number): MiddlewareHandler {
  return bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw controlPlaneError('PAYLOAD_TOO_LARGE', `${what} is larger than ${maxBytes} bytes`);
    },
  });
}

/**
 * MAX_BODY_BYTES on every request but the bundle upload (POST /v1/models) and
 * the eval-set upload (PUT /v1/eval-sets/:name), whose routes cap their own.
 */
export function limitRequestBodies(): MiddlewareHandler {
  const limit = limitBody('the request body', MAX_BODY_BYTES);
  return (c, next) =>
    (c.req.method === 'POST' && c.req.path === '/v1/models') ||
    (c.req.method === 'PUT' && c.req.path.startsWith('/v1/eval-sets/'))
      ? next()
      : limit(c, next);
}
