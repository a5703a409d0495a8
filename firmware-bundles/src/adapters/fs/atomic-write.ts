/** Crash-safe file writes live in `@fleet/protocol/node`, shared with the agent; re-exported for this package's callers. */
export { writeFileAtomic, type AtomicWriteOptions } from '@fleet/protocol/node';
