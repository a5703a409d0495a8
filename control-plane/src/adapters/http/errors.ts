/**
 * The HTTP edge's error mapping: every error a route throws becomes
 * `{ error: { code, message } }` with the status its code means. Codes come
 * from the control plane (core/errors.ts) or the protocol (a bundle or device
 * message that failed verification); anything else is a 500 whose details go
 * to the log, not to the client.
 */
import { isFleetError } from '@fleet/protocol';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { z } from '@hono/zod-openapi';

const STATUS_BY_CODE: Record<string, ContentfulStatusCode> = {
  INVALID_REQUEST: 400,
  MALFORMED: 400,
  TRUNCATED: 400,
  TRAILING_DATA: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  ENROLMENT_REFUSED: 403,
  REVOKED: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  ROLLBACK: 409,
  NO_TRUST_ROOT: 409,
  PAYLOAD_TOO_LARGE: 413,
  TOO_LARGE: 413,
};

/** Verification failures of what was sent (signatures, hashes, expiry): 422. */
const UNPROCESSABLE = 422;

export interface ApiError {
  status: ContentfulStatusCode;
  body: { error: { code: string; message: string } };
}

export function toApiError(error: unknown): ApiError | null {
  if (!isFleetError(error)) return null;
  const status = STATUS_BY_CODE[error.code] ?? UNPROCESSABLE;
  return { status, body: { error: { code: error.code, message: error.message } } };
}

export const errorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: 'INVALID_REQUEST' }),
      message: z.string().openapi({ example: 'tags.site: bad tag value' }),
    }),
  })
  .openapi('Error');

/** The error responses a route documents, by status. */
export function errorResponses(...statuses: number[]) {
  const descriptions: Record<number, string> = {
    400: 'Invalid request (the message names the field)',
    401: 'No or unknown API token',
    403: 'The token’s role is too low, or the enrolment is refused',
    404: 'Not found',
    409: 'Conflicts with the current state',
    413: 'Body above its size cap',
    422: 'Failed verification (signature, hash, expiry)',
  };
  return Object.fromEntries(
    statuses.map((s) => [
      s,
      {
        description: descriptions[s] ?? 'Error',
        content: { 'application/json': { schema: errorSchema } },
      },
    ]),
  );
}

/** Formats the first zod issue as `path: message`, which names the field. */
export function describeIssues(
  issues: readonly { path: PropertyKey[]; message: string }[],
): string {
  const issue = issues[0];
  if (!issue) return 'invalid request';
  const path = issue.path.map(String).join('.');
  return path ? `${path}: ${issue.message}` : issue.message;
}
