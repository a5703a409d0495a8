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

const TOKEN_BYTES = 32;

/** The two kinds of bearer secret: operator API tokens and device enrolment tokens. */
export const TOKEN_KINDS = {
  operator: { prefix: 'fleet_', pattern: /^fleet_[A-Za-z0-9_-]{43}$/ },
  enrolment: { prefix: 'enr_', pattern: /^enr_[A-Za-z0-9_-]{43}$/ },
} as const;
export type TokenKind = keyof typeof TOKEN_KINDS;

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

type RandomBytes = (length: number) => Uint8Array;
const systemRandom: RandomBytes = (n) => crypto.getRandomValues(new Uint8Array(n));

/** A new secret of `kind` from `randomBytes` (injected: crypto.getRandomValues in production). */
export async function issueToken(
  kind: TokenKind,
  randomBytes: RandomBytes = systemRandom,
): Promise<IssuedToken> {
  const bytes = randomBytes(TOKEN_BYTES);
  if (bytes.length !== TOKEN_BYTES) throw new Error('token randomness must be 32 bytes');
  const secret =
    TOKEN_KINDS[kind].prefix +
    toBase64(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  return { secret, tokenHash: await digest(secret) };
}

/**
 * The stored form of a presented secret, or null when it is not even shaped
 * like one of `kind` (so garbage never reaches the database).
 */
export async function hashToken(kind: TokenKind, secret: string): Promise<string | null> {
  return TOKEN_KINDS[kind].pattern.test(secret) ? digest(secret) : null;
}

export const issueOperatorToken = (randomBytes?: RandomBytes) =>
  issueToken('operator', randomBytes);
export const hashOperatorToken = (secret: string) => hashToken('operator', secret);

function digest(secret: string): Promise<string> {
  return sha256Hex(new TextEncoder().encode(secret));
}
