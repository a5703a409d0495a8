/**
 * The feedback routes of the local API (mounted by `createInferApi` when it
 * is given the agent's feedback, core/feedback.ts):
 *
 *   POST /v1/feedback        application/json { id, label } -> 200 { accepted: 1 }
 *                            or { items: [{ id, label }, ...] } (at most 1,000)
 *                            -> 200 { accepted, unknown, invalid, duplicate, results }
 *   GET  /v1/feedback/stats  200 { model, labelled, correct, accuracy, storedSamples, recentRows }
 *
 * A single label is refused whole: 404 UNKNOWN_INFERENCE (never given, or
 * expired), 400 FEEDBACK_INPUT (not an integer class of the model that
 * served it), 409 ALREADY_LABELLED (the first label stands). A body that is
 * not one of the two shapes is 400 FEEDBACK_INPUT naming the field; above the
 * size cap 413 (counted as it streams in). A refused request changes nothing.
 */
import type { Hono, MiddlewareHandler } from 'hono';
import { z } from 'zod';
import { agentError } from '../../core/errors.ts';
import { MAX_FEEDBACK_ITEMS, type Feedback } from '../../core/feedback.ts';

/** 1,000 items of a 40-character id and a label fit in well under this. */
export const DEFAULT_MAX_FEEDBACK_BODY_BYTES = 256 * 1024;

const itemSchema = z.strictObject({ id: z.string().min(1).max(128), label: z.number() });
const batchSchema = z.strictObject({ items: z.array(itemSchema).min(1).max(MAX_FEEDBACK_ITEMS) });

export interface FeedbackRouteParts {
  /** Refuses a body that is not application/json, before reading it. */
  jsonOnly: MiddlewareHandler;
  /** Caps the body as it streams in. */
  limitBody: (maxBytes: number) => MiddlewareHandler;
}

export function mountFeedbackRoutes(
  app: Hono,
  feedback: Feedback,
  parts: FeedbackRouteParts,
  maxBodyBytes = DEFAULT_MAX_FEEDBACK_BODY_BYTES,
): void {
  app.post('/v1/feedback', parts.jsonOnly, parts.limitBody(maxBodyBytes), async (c) => {
    const body = parseBody(new Uint8Array(await c.req.arrayBuffer()));
    if ('items' in body) return c.json(await feedback.labelMany(body.items));
    await feedback.label(body.id, body.label);
    return c.json({ accepted: 1 });
  });

  app.get('/v1/feedback/stats', (c) => c.json(feedback.stats()));
}

function parseBody(bytes: Uint8Array): z.infer<typeof itemSchema> | z.infer<typeof batchSchema> {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw agentError('FEEDBACK_INPUT', 'the request body is not valid JSON');
  }
  const isBatch = typeof json === 'object' && json !== null && 'items' in json;
  const parsed = (isBatch ? batchSchema : itemSchema).safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.join('.') || 'body';
    throw agentError(
      'FEEDBACK_INPUT',
      `${where}: ${issue?.message ?? 'invalid'} (expected { id, label } or { items: [{ id, label }] })`,
    );
  }
  return parsed.data;
}
