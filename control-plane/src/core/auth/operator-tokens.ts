/**
 * Operator API tokens and roles. A token is 32 random bytes shown once
 * (`fleet_` + base64url); the database keeps only its SHA-256, which is enough
 * for a secret of that entropy (no password stretching needed) and lets a
 * lookup be one indexed equality. Roles are ordered: each includes the ones
 * below it.
 */
import { sha256Hex, toBase64 } from '@fleet/protocol';

export const OPERATOR_ROLES = ['viewer', 'operator', 'approver', 'admin'] as const;
export type OperatorRole = (typeof OPERATOR_ROLES)[number];

const TOKEN_PREFIX = 'fleet_';
const TOKEN_BYTES = 32;
const TOKEN_PATTERN = /^fleet_[A-Za-z0-9_-]{43}$/;

/** True when `role` may do what `required` may. */
export function roleAllows(role: OperatorRole, required: OperatorRole): boolean {
  return OPERATOR_ROLES.indexOf(role) >= OPERATOR_ROLES.indexOf(required);
}

export interface IssuedToken {
  /** Shown to the operator once; never stored. */
  secret: string;
  /** What is stored and looked up. */
  tokenHash: string;
}

/** A new token from `randomBytes` (injected: crypto.getRandomValues in production). */
export async function issueOperatorToken(
  randomBytes: (length: number) => Uint8Array = (n) => crypto.getRandomValues(new Uint8Array(n)),
): Promise<IssuedToken> {
  const bytes = randomBytes(TOKEN_BYTES);
  if (bytes.length !== TOKEN_BYTES) throw new Error('token randomness must be 32 bytes');
  const secret =
    TOKEN_PREFIX + toBase64(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  return { secret, tokenHash: await digest(secret) };
}

/**
 * The stored form of a presented token, or null when it is not even shaped like
 * one (so garbage never reaches the database).
 */
export async function hashOperatorToken(secret: string): Promise<string | null> {
  return TOKEN_PATTERN.test(secret) ? digest(secret) : null;
}

function digest(secret: string): Promise<string> {
  return sha256Hex(new TextEncoder().encode(secret));
}
