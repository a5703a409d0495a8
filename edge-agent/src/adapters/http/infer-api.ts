/**
 * The agent's local inference API over HTTP (Hono), a thin edge on the
 * inference service:
 *
 *   POST /v1/infer   application/json { inputs: number[][] } or { input: number[] },
 *                    or application/octet-stream: little-endian float32 rows
 *                    (batch = floats / row width, or the `x-batch` header)
 *   GET  /healthz    200 { status: 'ok', model } while a model is active, else 503
 *   POST /v1/feedback, GET /v1/feedback/stats   with `feedback` (feedback-api.ts)
 *
 * Answers `{ id, ids, outputs, predictions, confidences, model, latencyMs }`;
 * errors `{ error: { code, message } }`, their status mapped from the code
 * here and nowhere else. Bodies are capped (4 MiB by default) while they
 * stream in, not after (THREATS 14, 31), and a refused request changes
 * nothing: the model keeps serving.
 *
 * @example
 *   const server = await serveInferApi(createInferApi(service), { host: '127.0.0.1', port: 8080 });
 *   // curl -d '{"inputs":[[0,0.1,...]]}' -H 'content-type: application/json' localhost:8080/v1/infer
 *   await server.close();
 */
import { serve } from '@hono/node-server';
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { z } from 'zod';
import { isFleetError } from '@fleet/protocol';
import { agentError, type AgentErrorCode } from '../../core/errors.ts';
import type { Feedback } from '../../core/feedback.ts';
import type { InferenceService } from '../../core/inference-service.ts';
import { mountFeedbackRoutes } from './feedback-api.ts';

export const DEFAULT_MAX_INFER_BODY_BYTES = 4 * 1024 * 1024;

export interface InferApiOptions {
  /** Largest request body, counted as it streams in (default 4 MiB). */
  maxBodyBytes?: number;
  /** The agent's feedback: mounts `POST /v1/feedback` and `GET /v1/feedback/stats`. */
  feedback?: Feedback;
  /** Largest feedback body (default 256 KiB). */
  maxFeedbackBodyBytes?: number;
}

const JSON_TYPE = 'application/json';
const FLOATS_TYPE = 'application/octet-stream';

const STATUS_BY_CODE: Partial<Record<AgentErrorCode, ContentfulStatusCode>> = {
  INFER_INPUT: 400,
  FEEDBACK_INPUT: 400,
  UNKNOWN_INFERENCE: 404,
  ALREADY_LABELLED: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  NO_MODEL: 503,
};

const batchBodySchema = z.strictObject({ inputs: z.array(z.array(z.number())) });
const singleBodySchema = z.strictObject({ input: z.array(z.number()) });

export function createInferApi(service: InferenceService, options: InferApiOptions = {}): Hono {
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_INFER_BODY_BYTES;
  const app = new Hono();
  app.onError(errorResponse);
  app.notFound((c) => c.json({ error: { code: 'NOT_FOUND', message: 'no such route' } }, 404));

  app.post('/v1/infer', acceptMediaTypes(), limitBody(maxBodyBytes), async (c) => {
    const body = new Uint8Array(await c.req.arrayBuffer());
    if (body.length === 0) throw agentError('INFER_INPUT', 'the request body is empty');
    const result =
      mediaTypeOf(c) === JSON_TYPE
        ? await service.infer(rowsFromJson(body))
        : await service.infer(floatsFromBytes(body), { batch: batchHeader(c) });
    return c.json(result);
  });

  app.get('/healthz', (c) => {
    const model = service.active();
    if (model === null) throw agentError('NO_MODEL', 'no model is active on this device yet');
    return c.json({ status: 'ok', model });
  });

  if (options.feedback) {
    mountFeedbackRoutes(
      app,
      options.feedback,
      { jsonOnly: acceptMediaTypes([JSON_TYPE]), limitBody },
      options.maxFeedbackBodyBytes,
    );
  }
  return app;
}

/** Checked before the body is read: a body of the wrong type is refused unread. */
function acceptMediaTypes(types: readonly string[] = [JSON_TYPE, FLOATS_TYPE]): MiddlewareHandler {
  return async (c, next) => {
    const type = mediaTypeOf(c);
    if (!types.includes(type)) {
      throw agentError(
        'UNSUPPORTED_MEDIA_TYPE',
        `content-type ${type || '(none)'} is not ${types.join(' or ')}`,
      );
    }
    await next();
  };
}

/** Hono's bodyLimit counts bytes as they arrive (and trusts no Content-Length above the cap). */
function limitBody(maxBytes: number): MiddlewareHandler {
  return bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw agentError('PAYLOAD_TOO_LARGE', `the request body is larger than ${maxBytes} bytes`);
    },
  });
}

function mediaTypeOf(c: Context): string {
  return (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
}

function rowsFromJson(body: Uint8Array): number[][] {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    throw agentError('INFER_INPUT', 'the request body is not valid JSON');
  }
  const isSingle = typeof json === 'object' && json !== null && 'input' in json;
  const parsed = isSingle ? singleBodySchema.safeParse(json) : batchBodySchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.join('.') || 'body';
    throw agentError(
      'INFER_INPUT',
      `${where}: ${issue?.message ?? 'invalid'} (expected { inputs: number[][] } or { input: number[] })`,
    );
  }
  return 'inputs' in parsed.data ? parsed.data.inputs : [parsed.data.input];
}

function floatsFromBytes(body: Uint8Array): Float32Array {
  if (body.length % 4 !== 0) {
    throw agentError('INFER_INPUT', `${body.length} bytes is not a whole number of float32s`);
  }
  // DataView reads little-endian whatever the host's byte order.
  const view = new DataView(body.buffer, body.byteOffset, body.length);
  const floats = new Float32Array(body.length / 4);
  for (let i = 0; i < floats.length; i++) floats[i] = view.getFloat32(i * 4, true);
  return floats;
}

function batchHeader(c: Context): number | undefined {
  const header = c.req.header('x-batch');
  if (header === undefined) return undefined;
  if (!/^[1-9][0-9]{0,8}$/.test(header.trim())) {
    throw agentError(
      'INFER_INPUT',
      `x-batch must be a positive integer, got ${JSON.stringify(header.slice(0, 20))}`,
    );
  }
  return Number(header.trim());
}

/** Refusals answered before the body was read in full. */
const UNREAD_BODY_STATUSES: ReadonlySet<number> = new Set([413, 415]);

/** Fleet errors answer with their code; anything else is a 500 that says no more. */
function errorResponse(error: unknown, c: Context): Response {
  if (isFleetError(error)) {
    const status = STATUS_BY_CODE[error.code as AgentErrorCode] ?? 500;
    // The rest of an unread body is still on the connection: close it rather
    // than let the client send its next request behind that body.
    if (UNREAD_BODY_STATUSES.has(status)) c.header('connection', 'close');
    return c.json({ error: { code: error.code, message: error.message } }, status);
  }
  return c.json({ error: { code: 'INTERNAL', message: 'internal error' } }, 500);
}

export interface ServedInferApi {
  /** The port listened on (the one chosen when asked for port 0). */
  port: number;
  /** Stops accepting, lets requests in flight finish (at most `graceMs`), then closes. */
  close(): Promise<void>;
}

/** Serves `app` with @hono/node-server; resolves once listening. */
export function serveInferApi(
  app: { fetch: (request: Request) => Response | Promise<Response> },
  options: { host: string; port: number; graceMs?: number },
): Promise<ServedInferApi> {
  const graceMs = options.graceMs ?? 2000;
  return new Promise((resolve, reject) => {
    const fetch = (request: Request) => app.fetch(request);
    const server = serve({ fetch, hostname: options.host, port: options.port }, (info) =>
      resolve({
        port: info.port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            const force = setTimeout(() => {
              if ('closeAllConnections' in server) server.closeAllConnections();
            }, graceMs);
            force.unref();
          }),
      }),
    );
    server.once('error', reject);
  });
}
