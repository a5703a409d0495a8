/**
 * A device's federated-learning update, on its `telemetry` channel inside the
 * device-signed envelope (like drift reports), in two message types:
 *
 *   fl-update        the header: `id` is the update id; the device, round and
 *                    base model it answers; `status` ok (with `update`: the
 *                    tensor set's encoding, size, SHA-256, part count, and the
 *                    delta's norm before clipping) or failed (with `reason`);
 *                    the sample count and training metrics
 *   fl-update-part   one part of the tensor-set bytes: `updateId`, `index` of
 *                    `count`, `data` (canonical base64 of 1 to 64 KiB)
 *
 * The agent publishes the header first, then the parts in order (QoS 1 on one
 * topic, so they arrive in order, MQTT 3.1.1 4.6). The control plane joins
 * the parts and checks their size and SHA-256 against the signed header before
 * it decodes them. Both types name `deviceId`, which must be the device the
 * envelope is signed for; each part is signed on its own, so a part cannot be
 * injected into another device's update.
 *
 * Sizes: an update is at most MAX_FL_UPDATE_BYTES (64 MiB) in parts of
 * MAX_FL_PART_BYTES (64 KiB), every part full but the last, so partCount =
 * ceil(sizeBytes / 64 KiB) <= MAX_FL_PART_COUNT (1024). A full part's signed
 * envelope is about 117 KB (base64 inside base64), under its own cap
 * MAX_FL_PART_MESSAGE_BYTES (128 KiB; tested) and the brokers' 256 KiB
 * packet guard; the header keeps MAX_CONTROL_MESSAGE_BYTES.
 */
import { z } from 'zod';
import { deviceIdSchema } from '../bundle/manifest.ts';
import {
  bundleModelRefSchema,
  fractionSchema,
  messageHeader,
  messageIdSchema,
  textSchema,
} from './common.ts';
import { flEncodingSchema, flRoundIdSchema, MAX_FL_SAMPLES } from './fl-train.ts';

/** Largest part of an update, in bytes (before base64). */
export const MAX_FL_PART_BYTES = 64 * 1024;
/** Most parts of one update. */
export const MAX_FL_PART_COUNT = 1024;
/** Largest update (its tensor-set bytes), in bytes. */
export const MAX_FL_UPDATE_BYTES = MAX_FL_PART_BYTES * MAX_FL_PART_COUNT;
/** Largest signed envelope of an fl-update-part message, in bytes (and base64 characters of its payload). */
export const MAX_FL_PART_MESSAGE_BYTES = 128 * 1024;
/** Longest failure reason. */
export const MAX_FL_REASON_LENGTH = 500;

/** Parts an update of `sizeBytes` is cut into. */
export function flPartCount(sizeBytes: number): number {
  return Math.ceil(sizeBytes / MAX_FL_PART_BYTES);
}

const sha256HexSchema = z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 is 64 lowercase hex');
const nonNegativeFinite = z.number().nonnegative().finite();

/** Training metrics, each null when not measured (e.g. a failed round). */
export const flMetricsSchema = z.strictObject({
  lossBefore: nonNegativeFinite.nullable(),
  lossAfter: nonNegativeFinite.nullable(),
  accuracyBefore: fractionSchema.nullable(),
  accuracyAfter: fractionSchema.nullable(),
  trainMs: nonNegativeFinite.nullable(),
});
export type FlMetrics = z.infer<typeof flMetricsSchema>;

/** What an ok update's parts add up to. */
export const flUpdatePayloadSchema = z
  .strictObject({
    encoding: flEncodingSchema,
    sizeBytes: z.number().int().min(1).max(MAX_FL_UPDATE_BYTES),
    sha256: sha256HexSchema,
    partCount: z.number().int().min(1).max(MAX_FL_PART_COUNT),
    /** The delta's global L2 norm before clipping. */
    normBeforeClip: nonNegativeFinite,
    /** Whether clipping scaled the delta down. */
    clipped: z.boolean(),
  })
  .refine((u) => u.partCount === flPartCount(u.sizeBytes), {
    message: `partCount must equal ceil(sizeBytes / ${MAX_FL_PART_BYTES})`,
    path: ['partCount'],
  });
export type FlUpdatePayload = z.infer<typeof flUpdatePayloadSchema>;

export const flUpdateMessageSchema = z
  .strictObject({
    ...messageHeader('fl-update'),
    deviceId: deviceIdSchema,
    roundId: flRoundIdSchema,
    /** The base bundle the delta is relative to. */
    model: bundleModelRefSchema,
    status: z.enum(['ok', 'failed']),
    reason: textSchema(MAX_FL_REASON_LENGTH).optional(),
    sampleCount: z.number().int().min(0).max(MAX_FL_SAMPLES),
    metrics: flMetricsSchema,
    update: flUpdatePayloadSchema.optional(),
  })
  .refine((m) => m.status !== 'failed' || m.reason !== undefined, {
    message: 'a failed update carries a reason',
    path: ['reason'],
  })
  .refine((m) => m.status !== 'failed' || m.update === undefined, {
    message: 'a failed update carries no update',
    path: ['update'],
  })
  .refine((m) => m.status !== 'ok' || m.update !== undefined, {
    message: 'an ok update carries its update',
    path: ['update'],
  });
export type FlUpdateMessage = z.infer<typeof flUpdateMessageSchema>;

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const BASE64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const base64Bytes = (text: string) =>
  (text.length / 4) * 3 - (text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0);

/** Regex-valid base64 whose padding bits are zero: the one encoding of its bytes. */
function isCanonicalBase64(text: string): boolean {
  if (!BASE64.test(text)) return false;
  const pad = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  if (pad === 0) return true;
  const last = BASE64_ALPHABET.indexOf(text[text.length - pad - 1]!);
  return (last & (pad === 2 ? 0x0f : 0x03)) === 0;
}

export const flUpdatePartMessageSchema = z
  .strictObject({
    ...messageHeader('fl-update-part'),
    deviceId: deviceIdSchema,
    roundId: flRoundIdSchema,
    updateId: messageIdSchema,
    index: z
      .number()
      .int()
      .min(0)
      .max(MAX_FL_PART_COUNT - 1),
    count: z.number().int().min(1).max(MAX_FL_PART_COUNT),
    data: z
      .string()
      .min(4)
      .max(4 * Math.ceil(MAX_FL_PART_BYTES / 3), `a part is at most ${MAX_FL_PART_BYTES} bytes`)
      .refine(isCanonicalBase64, 'a part is canonical base64')
      .refine(
        (t) => base64Bytes(t) <= MAX_FL_PART_BYTES,
        `a part is at most ${MAX_FL_PART_BYTES} bytes`,
      ),
  })
  .refine((m) => m.index < m.count, {
    message: 'index must be below count',
    path: ['index'],
  });
export type FlUpdatePartMessage = z.infer<typeof flUpdatePartMessageSchema>;
