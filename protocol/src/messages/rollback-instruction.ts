/**
 * The signed rollback instruction. Agents refuse any release at or below the
 * installed one (THREATS 9); the one way back to an older, known-good bundle is
 * an explicit instruction naming it, signed like a bundle (ARCHITECTURE "Trust").
 * It travels as the DSSE envelope `authorization` of a `rollback` command.
 *
 * This file holds the payload's schema only. Checking the signatures against
 * the trust root, the expiry and the device and hardware scope is the trust
 * module's job; nothing here is trusted before that.
 */
import { z } from 'zod';
import { isoTimestampSchema } from '../encoding/time.ts';
import { deviceIdSchema, hardwareClassSchema, modelNameSchema } from '../bundle/manifest.ts';
import { signedEnvelopeSchema } from '../crypto/envelope.ts';
import { bundleIdSchema, releaseSchema } from './common.ts';

/** The DSSE payload type of rollback instructions (signed, so no other signed document can pose as one). */
export const ROLLBACK_PAYLOAD_TYPE = 'application/vnd.fleet.rollback+json';

/** The most devices one rollback instruction may name (the manifest's cap). */
export const MAX_ROLLBACK_DEVICES = 1000;

/**
 * The signed payload: roll model `modelName` back to release `toRelease`,
 * carried by bundle `toBundleId`.
 *
 * - `fromReleaseAtMost`: when set, only devices whose installed release is at
 *   most this act on it (so an old instruction cannot undo a later fix).
 * - `devices` / `hardware`: when set, only these devices / hardware classes.
 * - `issuedAt` / `expires`: the instruction is void after `expires`.
 */
export const rollbackInstructionSchema = z
  .strictObject({
    type: z.literal('fleet-rollback'),
    schemaVersion: z.literal(1),
    modelName: modelNameSchema,
    toRelease: releaseSchema,
    toBundleId: bundleIdSchema,
    fromReleaseAtMost: releaseSchema.optional(),
    devices: z.array(deviceIdSchema).min(1).max(MAX_ROLLBACK_DEVICES).optional(),
    hardware: z.array(hardwareClassSchema).min(1).max(32).optional(),
    issuedAt: isoTimestampSchema,
    expires: isoTimestampSchema,
  })
  .refine((r) => Date.parse(r.expires) > Date.parse(r.issuedAt), {
    message: 'expires must be after issuedAt',
    path: ['expires'],
  });
export type RollbackInstruction = z.infer<typeof rollbackInstructionSchema>;

/**
 * A signed envelope that claims to carry a rollback instruction (its payload
 * type is checked here; its signatures are not).
 */
export const rollbackAuthorizationSchema = signedEnvelopeSchema.extend({
  payloadType: z.literal(ROLLBACK_PAYLOAD_TYPE),
});
