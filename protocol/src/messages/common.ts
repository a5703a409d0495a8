/**
 * Field schemas shared by every control message: the envelope-less header
 * (`type`, `id`, `schemaVersion`, `ts`), ids, versions, model references and
 * the agent's update states. Every string has a length cap, so no schema here
 * accepts unbounded input.
 */
import semver from 'semver';
import { z } from 'zod';
import { isoTimestampSchema } from '../encoding/time.ts';
import { modelNameSchema } from '../bundle/manifest.ts';

/** The `schemaVersion` every control message of this protocol carries. */
export const MESSAGE_SCHEMA_VERSION = 1;

/**
 * Message ids, for de-duplication (MQTT QoS 1 delivers at least once, THREATS 23):
 * 8 to 64 characters of `[A-Za-z0-9_-]`, e.g. a UUID or a ULID.
 */
export const messageIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{8,64}$/, 'an id is 8-64 characters of [A-Za-z0-9_-]');

/** Rollout ids are minted by the control plane in the same alphabet as message ids. */
export const rolloutIdSchema = messageIdSchema;

/** A bundle id: the SHA-256 of the whole bundle file, 64 lowercase hex. */
export const bundleIdSchema = z
  .string()
  .regex(/^[0-9a-f]{64}$/, 'a bundle id is the SHA-256 of the bundle, 64 lowercase hex');

/** A semantic version in its canonical spelling (`1.4.0`, not `v1.4.0` or ` 1.4.0`). */
export const semverSchema = z
  .string()
  .max(64)
  .refine((v) => semver.valid(v) === v, 'not a semantic version (e.g. 1.4.0)');

/** Largest block of a bundle transfer (ARCHITECTURE: blocks of at most 64 KiB). */
export const MAX_BLOCK_BYTES = 64 * 1024;

/**
 * Most blocks one bundle may be cut into. A bitmap of missing blocks is then at
 * most 32 KiB (about 43 KiB in base64), so a repair request fits in one control
 * message; at 64 KiB blocks this allows 16 GiB bundles.
 */
export const MAX_BLOCK_COUNT = 256 * 1024;

/** A model's monotonic release counter (anti-rollback compares these). */
export const releaseSchema = z.number().int().min(1);

/** A fraction in [0, 1]: rates, confidences. */
export const fractionSchema = z.number().min(0).max(1);

// Lone UTF-16 surrogates survive JSON.parse (`"\ud800"`) but have no canonical
// JSON form, so a message holding one could never be re-encoded or signed.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** Free text (reasons, error messages) of at most `maxLength` UTF-16 units. */
export function textSchema(maxLength: number) {
  return z
    .string()
    .max(maxLength)
    .refine((s) => !LONE_SURROGATE.test(s), 'contains a lone UTF-16 surrogate');
}

/** A model as the wire names it: name, semantic version and release counter. */
export const modelRefSchema = z.strictObject({
  name: modelNameSchema,
  version: semverSchema,
  release: releaseSchema,
});
export type ModelRef = z.infer<typeof modelRefSchema>;

/** A model pinned to the exact bundle that carries it. */
export const bundleModelRefSchema = modelRefSchema.extend({ bundleId: bundleIdSchema });
export type BundleModelRef = z.infer<typeof bundleModelRefSchema>;

/**
 * The agent's update states (ARCHITECTURE "Over-the-air delivery"), in order:
 * `idle -> downloading -> verifying -> staged -> activating -> probation ->
 * committed | rolled_back`.
 */
export const UPDATE_STATES = [
  'idle',
  'downloading',
  'verifying',
  'staged',
  'activating',
  'probation',
  'committed',
  'rolled_back',
] as const;
export type UpdateState = (typeof UPDATE_STATES)[number];
export const updateStateSchema = z.enum(UPDATE_STATES);

/**
 * An error a device reports: a stable code a program can switch on (a
 * `FleetError` code such as `PART_HASH`, or an agent's own) and a message a
 * person reads. Codes are one token, so they are safe as log fields and metric labels.
 */
export const errorReportSchema = z.strictObject({
  code: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'an error code is 1-64 of [A-Za-z0-9_.:-]'),
  message: textSchema(1000),
});
export type ErrorReport = z.infer<typeof errorReportSchema>;

/**
 * The four fields every control message starts with, for spreading into a
 * `z.strictObject`: the literal `type`, the dedup `id`, the `schemaVersion` and
 * the send time `ts` (ISO 8601 UTC).
 */
export function messageHeader<Type extends string>(type: Type) {
  return {
    type: z.literal(type),
    id: messageIdSchema,
    schemaVersion: z.literal(MESSAGE_SCHEMA_VERSION),
    ts: isoTimestampSchema,
  };
}
