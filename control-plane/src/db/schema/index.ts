/** The control plane's tables, for drizzle and drizzle-kit. */
export * from './audit-log.ts';
export * from './devices.ts';
export * from './tokens.ts';
export * from './models.ts';
export * from './rollouts.ts';
export * from './drift.ts';
export * from './fl.ts';
export * from './governance.ts';
