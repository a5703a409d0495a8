/**
 * Commands: the control messages the control plane publishes to one agent on
 * `fleet/v1/dev/{id}/cmd`. Only the control plane may publish there (THREATS 30);
 * the commands themselves are not signed, so each one either carries its own
 * signed proof (`deploy`: the bundle's manifest envelope; `rollback`: a signed
 * instruction) or can at worst delay an update (`cancel`) or spend a device's
 * compute (`fl-train`, fl-train.ts: what it produces is device-signed).
 */
import { z } from 'zod';
import { isoTimestampSchema } from '../encoding/time.ts';
import { signedEnvelopeSchema } from '../crypto/envelope.ts';
import { MANIFEST_PAYLOAD_TYPE } from '../bundle/manifest.ts';
import {
  bundleIdSchema,
  bundleModelRefSchema,
  fractionSchema,
  MAX_BLOCK_BYTES,
  MAX_BLOCK_COUNT,
  messageHeader,
  modelRefSchema,
  rolloutIdSchema,
  textSchema,
} from './common.ts';
import { rollbackAuthorizationSchema } from './rollback-instruction.ts';
import { flTrainMessageSchema } from './fl-train.ts';

/** Longest free-text reason a command may carry. */
export const MAX_REASON_LENGTH = 500;

/**
 * The Merkle root of a bundle's blocks (`createBlockTree` in transfer/blocks.ts),
 * 64 lowercase hex.
 */
export const blockRootSchema = z
  .string()
  .regex(/^[0-9a-f]{64}$/, 'a block root is a SHA-256 Merkle root, 64 lowercase hex');

/**
 * The bundle to fetch: its id (SHA-256 of the file), size, how it is cut into
 * blocks, and its signed manifest envelope, so the agent verifies the manifest
 * (signatures, expiry, release, hardware) before it downloads a byte.
 */
export const deployBundleSchema = z
  .strictObject({
    bundleId: bundleIdSchema,
    sizeBytes: z.number().int().min(1),
    blockSizeBytes: z.number().int().min(1).max(MAX_BLOCK_BYTES),
    blockCount: z.number().int().min(1).max(MAX_BLOCK_COUNT),
    /**
     * The Merkle root of the blocks: the agent checks each block against it as
     * it arrives, so a corrupted block is dropped and asked for again, and a
     * block checked and written to disk need not be fetched again after a restart.
     *
     * This command is not signed, so the root guards against transport
     * corruption only; whoever can publish a command could name any root.
     * Authenticity comes from the signed manifest and from the SHA-256 of the
     * whole file equalling `bundleId`, both checked before the bundle is used.
     */
    blockRoot: blockRootSchema,
    manifestEnvelope: signedEnvelopeSchema.extend({
      payloadType: z.literal(MANIFEST_PAYLOAD_TYPE),
    }),
  })
  // blockCount = ceil(sizeBytes / blockSizeBytes), in integers: every product
  // here is below 2^35, so exact, where a float division could round.
  .refine(
    (b) =>
      b.blockCount * b.blockSizeBytes >= b.sizeBytes &&
      (b.blockCount - 1) * b.blockSizeBytes < b.sizeBytes,
    { message: 'blockCount must equal ceil(sizeBytes / blockSizeBytes)', path: ['blockCount'] },
  );
export type DeployBundle = z.infer<typeof deployBundleSchema>;

/** Health gates the agent applies while the new model serves on probation. */
export const probationPolicySchema = z.strictObject({
  durationMs: z.number().int().min(1),
  maxErrorRate: fractionSchema,
  maxLatencyP95Ms: z.number().positive().finite(),
  minMeanConfidence: fractionSchema,
});
export type ProbationPolicy = z.infer<typeof probationPolicySchema>;

/**
 * Install a bundle. The agent checks `model` against the signed manifest: the
 * command's copy is a hint for logs and early refusal, the manifest is the truth.
 *
 * @example
 *   { type: 'deploy', id: '01JD...', schemaVersion: 1, ts: '2026-11-26T12:00:00Z',
 *     rolloutId: 'r-canary-01', bundle: { bundleId, sizeBytes: 150000,
 *     blockSizeBytes: 65536, blockCount: 3, blockRoot, manifestEnvelope },
 *     model: { name: 'mnist-2nn', version: '1.2.0', release: 5 },
 *     deadline: '2026-11-26T13:00:00Z' }
 */
export const deployMessageSchema = z.strictObject({
  ...messageHeader('deploy'),
  rolloutId: rolloutIdSchema,
  bundle: deployBundleSchema,
  model: modelRefSchema,
  /** Past this time the agent gives up and reports the deploy as failed (THREATS 26). */
  deadline: isoTimestampSchema,
  /**
   * Unused: superseded by `drift.sampleRate`, which agents read. Still
   * accepted, so a deploy that carries it stays valid.
   */
  samplingRate: fractionSchema.optional(),
  /**
   * This rollout's drift monitoring: `sampleRate` overrides the manifest's
   * `drift.sampleRate` (the share of inferences the device feeds its drift
   * sketches, in (0, 1]) for the model this deploy installs, for as long as
   * it stays installed. Absent: the manifest's default. A bundle without a
   * `drift` field is not monitored whatever this says.
   */
  drift: z.strictObject({ sampleRate: z.number().gt(0).max(1) }).optional(),
  probation: probationPolicySchema.optional(),
});
export type DeployMessage = z.infer<typeof deployMessageSchema>;

/**
 * Go back to an older, known-good bundle. `target` names it for the agent's
 * bookkeeping; `authorization` is the signed rollback instruction, which the
 * agent verifies against its trust root and which must agree with `target`.
 */
export const rollbackMessageSchema = z.strictObject({
  ...messageHeader('rollback'),
  rolloutId: rolloutIdSchema.optional(),
  target: bundleModelRefSchema,
  reason: textSchema(MAX_REASON_LENGTH),
  authorization: rollbackAuthorizationSchema,
});
export type RollbackMessage = z.infer<typeof rollbackMessageSchema>;

/**
 * Abandon a rollout's update on this device (an aborted or paused wave). What
 * that means in each update state is the agent's update state machine's call.
 */
export const cancelMessageSchema = z.strictObject({
  ...messageHeader('cancel'),
  rolloutId: rolloutIdSchema,
  reason: textSchema(MAX_REASON_LENGTH).optional(),
});
export type CancelMessage = z.infer<typeof cancelMessageSchema>;

/** Any command the control plane sends an agent, discriminated on `type`. */
export const commandMessageSchema = z.discriminatedUnion('type', [
  deployMessageSchema,
  rollbackMessageSchema,
  cancelMessageSchema,
  flTrainMessageSchema,
]);
export type CommandMessage = z.infer<typeof commandMessageSchema>;
export type CommandType = CommandMessage['type'];
