/**
 * Operator API tokens: creating (the secret is shown once), listing, revoking,
 * and authenticating a presented bearer token to its id and role. The first
 * admin token is created at first start (`bootstrap`), printed once by the
 * caller, and never retrievable again.
 */
import {
  hashOperatorToken,
  issueOperatorToken,
  OPERATOR_ROLES,
  type OperatorRole,
} from '../core/auth/operator-tokens.ts';
import type { Actor } from '../adapters/db/actor.ts';
import type { OperatorTokenRow, OperatorTokenStore } from '../adapters/db/operator-token-store.ts';

export interface Operator {
  tokenId: string;
  role: OperatorRole;
}

export interface Operators {
  /** The operator a presented secret belongs to, or null (unknown, revoked, malformed). */
  authenticate(secret: string): Promise<Operator | null>;
  create(
    options: { name: string; role: OperatorRole },
    actor: Actor,
  ): Promise<{ row: OperatorTokenRow; secret: string }>;
  list(): Promise<OperatorTokenRow[]>;
  revoke(id: string, actor: Actor): Promise<OperatorTokenRow>;
  /** Creates the first admin token when there is none; returns its secret, or null. */
  bootstrap(): Promise<string | null>;
}

/**
 * How long a token lookup is remembered. Every request authenticates, and the
 * lookup would otherwise be a database round trip per request. A revocation
 * clears this process's cache at once; other replicas notice within this time.
 */
export const TOKEN_CACHE_TTL_MS = 5_000;
const TOKEN_CACHE_MAX = 1_000;

export function createOperators(deps: {
  store: OperatorTokenStore;
  nowMs: () => number;
  randomBytes?: (n: number) => Uint8Array;
}): Operators {
  const { store } = deps;
  /** Presented secret -> operator (null: refused), for TOKEN_CACHE_TTL_MS. */
  const cache = new Map<string, { operator: Operator | null; untilMs: number }>();
  async function lookup(tokenHash: string): Promise<Operator | null> {
    const row = await store.findActive(tokenHash);
    const operator =
      row && (OPERATOR_ROLES as readonly string[]).includes(row.role)
        ? { tokenId: row.id, role: row.role as OperatorRole }
        : null;
    return operator;
  }
  function remember(secret: string, operator: Operator | null) {
    if (cache.size >= TOKEN_CACHE_MAX) cache.clear();
    cache.set(secret, { operator, untilMs: deps.nowMs() + TOKEN_CACHE_TTL_MS });
  }
  const now = () => new Date(deps.nowMs());
  const issue = async (name: string, role: OperatorRole) => {
    const issued = await issueOperatorToken(deps.randomBytes);
    return {
      secret: issued.secret,
      token: { id: issued.tokenHash.slice(0, 16), tokenHash: issued.tokenHash, name, role },
    };
  };

  return {
    async authenticate(secret) {
      // Keyed by the presented secret: a hit skips hashing as well as the database.
      const hit = cache.get(secret);
      if (hit && hit.untilMs > deps.nowMs()) return hit.operator;
      const tokenHash = await hashOperatorToken(secret);
      const operator = tokenHash ? await lookup(tokenHash) : null;
      remember(secret, operator);
      return operator;
    },

    async create({ name, role }, actor) {
      const { secret, token } = await issue(name, role);
      return { row: await store.create(token, actor, now()), secret };
    },

    list: () => store.list(),

    async revoke(id, actor) {
      const row = await store.revoke(id, actor, now());
      cache.clear();
      return row;
    },

    async bootstrap() {
      const { secret, token } = await issue('first admin', 'admin');
      return (await store.bootstrapAdmin(token, now())) ? secret : null;
    },
  };
}
