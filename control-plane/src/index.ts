/**
 * @fleet/control-plane: the Hono control plane. So far only its audit-log
 * hash chain (a pure core); the server, database and broker are to come.
 */
export * from './core/audit/audit-chain.ts';
export * from './core/auth/operator-tokens.ts';
