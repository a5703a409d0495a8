/**
 * Bearer-token authentication and role checks for routes. `requireRole(r)`
 * lets through a live operator token whose role includes `r`
 * (viewer < operator < approver < admin) and puts the operator on the
 * context; everything else gets 401 (no or unknown token) or 403 (role too low).
 */
import { createMiddleware } from 'hono/factory';
import { roleAllows, type OperatorRole } from '../../core/auth/operator-tokens.ts';
import { controlPlaneError } from '../../core/errors.ts';
import type { Operator, Operators } from '../../services/operators.ts';

export interface AuthEnv {
  Variables: { operator: Operator };
}

export function createAuth(operators: Operators) {
  return function requireRole(required: OperatorRole) {
    return createMiddleware<AuthEnv>(async (c, next) => {
      const header = c.req.header('authorization') ?? '';
      const match = /^Bearer (\S+)$/.exec(header);
      if (!match)
        throw controlPlaneError(
          'UNAUTHENTICATED',
          'an API token is required (Authorization: Bearer fleet_...)',
        );
      const operator = await operators.authenticate(match[1]!);
      if (!operator)
        throw controlPlaneError('UNAUTHENTICATED', 'the API token is unknown or revoked');
      if (!roleAllows(operator.role, required)) {
        throw controlPlaneError(
          'FORBIDDEN',
          `this needs the ${required} role; the token has ${operator.role}`,
        );
      }
      c.set('operator', operator);
      await next();
    });
  };
}

export type RequireRole = ReturnType<typeof createAuth>;

/** OpenAPI security requirement for routes behind `requireRole`. */
export const BEARER = [{ Bearer: [] }];
