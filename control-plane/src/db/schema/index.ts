/** Every table of the control plane's database. */
export * from './audit-log.ts';
