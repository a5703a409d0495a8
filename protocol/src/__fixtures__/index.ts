/**
 * Test fixtures other packages' tests may use (`@fleet/protocol/testing`):
 * deterministic keys and roots, sample bundles, refusal assertions. Never
 * imported by product code.
 */
export * from './trust.ts';
export * from './bundles.ts';
export * from './refusals.ts';
