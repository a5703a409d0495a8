/**
 * One drift flush as the agent keeps it: the closed window of one model's
 * sampled drift sketches, with the id and per-device `seq` the control plane
 * de-duplicates on. It is the `drift` device message (protocol
 * messages/drift-report.ts) without the header's `ts` and the `deviceId`,
 * which are added when it is signed and published; the outbox (drift-outbox.ts)
 * persists it in this shape, and `driftFlushSchema` checks a stored one
 * before it is trusted.
 */
import { z } from 'zod';
import {
  bundleModelRefSchema,
  driftSignalEntrySchema,
  isoTimestampSchema,
  MAX_DRIFT_SIGNALS,
  messageIdSchema,
  rolloutIdSchema,
  type BundleModelRef,
  type DriftSignalEntry,
} from '@fleet/protocol';

export interface DriftFlush {
  /** The flush id, also the message id: the same flush is always sent with the same id. */
  id: string;
  /** The device's flush counter: assigned by the outbox, never reused, also across restarts. */
  seq: number;
  /** The bundle whose drift profile the sketches follow. */
  model: BundleModelRef;
  /** The rollout that installed the model; null when none did (or it is unknown). */
  rolloutId: string | null;
  /** The window's bounds, ISO 8601 UTC. */
  window: { start: string; end: string };
  /** Inferences (rows) the model answered in the window. */
  inferences: number;
  /** How many of them fed the sketches. */
  sampled: number;
  /** Per monitored signal, in manifest order: its name and `serializeSignal` bytes in base64. */
  signals: DriftSignalEntry[];
}

/** A flush before the outbox gives it its `seq`. */
export type DriftFlushDraft = Omit<DriftFlush, 'seq'>;

const countSchema = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

export const driftFlushSchema = z
  .strictObject({
    id: messageIdSchema,
    seq: countSchema,
    model: bundleModelRefSchema,
    rolloutId: rolloutIdSchema.nullable(),
    window: z.strictObject({ start: isoTimestampSchema, end: isoTimestampSchema }),
    inferences: countSchema,
    sampled: countSchema,
    signals: z.array(driftSignalEntrySchema).min(1).max(MAX_DRIFT_SIGNALS),
  })
  .refine((f) => f.sampled <= f.inferences, { message: 'sampled exceeds inferences' });

/** The bytes a flush takes in the outbox (its JSON), which the outbox's byte bound counts. */
export function driftFlushBytes(flush: DriftFlush): number {
  return JSON.stringify(flush).length;
}
