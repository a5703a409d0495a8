/**
 * The `fl-train` command (control plane -> device, on its `cmd` topic): train
 * one federated round from a base bundle and report a clipped weight delta
 * (`fl-update`, fl-update.ts) before the deadline (ARCHITECTURE "Federated
 * learning").
 *
 *   roundId    the round, echoed by every update and part of it
 *   model      the exact base bundle to train from; it must carry a `training`
 *              field (its architecture and start weights part)
 *   config     local training hyperparameters (bounds below), the L2 bound the
 *              delta is clipped to, the sample window, the update encoding and
 *              the seed of the device's shuffling and initialisation
 *   deadline   updates arriving after it are dropped as `late`
 *
 * Like `cancel`, the command is not signed: whoever can publish on `cmd` can
 * at worst make a device spend compute; the update it produces is signed by
 * the device and bound to this round and base model.
 *
 * @example
 *   { ...header('fl-train'), roundId: 'round-0001-abcdef', model,
 *     config: { epochs: 1, batchSize: 10, learningRate: 0.05, proxMu: 0, clipNorm: 5,
 *               minSamples: 20, maxSamples: 600, encoding: 'int8', seed: 42 },
 *     deadline: '2026-11-26T12:05:00Z' }
 */
import { z } from 'zod';
import { isoTimestampSchema } from '../encoding/time.ts';
import { bundleModelRefSchema, messageHeader, messageIdSchema } from './common.ts';

/** Round ids are minted by the control plane in the alphabet of message ids. */
export const flRoundIdSchema = messageIdSchema;

/** How an update's tensor set is stored (tensor-set.ts). */
export const flEncodingSchema = z.enum(['int8', 'float32']);
export type FlEncoding = z.infer<typeof flEncodingSchema>;

/** Most labelled samples a device trains on in one round. */
export const MAX_FL_SAMPLES = 1_000_000;

export const flTrainConfigSchema = z
  .strictObject({
    epochs: z.number().int().min(1).max(100),
    batchSize: z.number().int().min(1).max(100_000),
    learningRate: z.number().gt(0).max(10),
    /** FedProx proximal term mu; 0 is plain FedAvg local training. */
    proxMu: z.number().min(0).max(100),
    /** The delta's global L2 norm (all tensors together) is clipped to this. */
    clipNorm: z.number().gt(0).max(1e6),
    /** A device with fewer labelled samples reports `failed`. */
    minSamples: z.number().int().min(1).max(MAX_FL_SAMPLES),
    /** A device trains on at most this many (its newest) samples. */
    maxSamples: z.number().int().min(1).max(MAX_FL_SAMPLES),
    encoding: flEncodingSchema,
    /** Seeds the device's shuffling, so a round is reproducible in simulation. */
    seed: z.number().int().min(0).max(0xffffffff),
  })
  .refine((c) => c.maxSamples >= c.minSamples, {
    message: 'maxSamples must not be below minSamples',
    path: ['maxSamples'],
  });
export type FlTrainConfig = z.infer<typeof flTrainConfigSchema>;

export const flTrainMessageSchema = z.strictObject({
  ...messageHeader('fl-train'),
  roundId: flRoundIdSchema,
  model: bundleModelRefSchema,
  config: flTrainConfigSchema,
  deadline: isoTimestampSchema,
});
export type FlTrainMessage = z.infer<typeof flTrainMessageSchema>;
