/**
 * Device messages: what an agent reports to the control plane, each on its own
 * channel under `fleet/v1/dev/{id}/`:
 *
 *   state           `state` (retained; also the MQTT last will, with `online: false`)
 *   progress        `evt`
 *   health          `telemetry`
 *   drift           `telemetry` (drift-report.ts)
 *   blocks-request  `blocks/req`
 *
 * They travel inside a device-signed envelope (`device-envelope.ts`), so the
 * control plane can trust them even behind a foreign broker.
 */
import { z } from 'zod';
import { isoTimestampSchema } from '../encoding/time.ts';
import { deviceIdSchema, hardwareClassSchema } from '../bundle/manifest.ts';
import { bitmapFromBase64 } from '../transfer/bitmap.ts';
import {
  bundleIdSchema,
  bundleModelRefSchema,
  errorReportSchema,
  fractionSchema,
  MAX_BLOCK_COUNT,
  messageHeader,
  modelRefSchema,
  rolloutIdSchema,
  semverSchema,
  updateStateSchema,
} from './common.ts';
import { driftReportMessageSchema } from './drift-report.ts';
import { flUpdateMessageSchema, flUpdatePartMessageSchema } from './fl-update.ts';

/** Where the agent's update state machine stands, and the rollout it works on. */
export const updateStatusSchema = z.strictObject({
  state: updateStateSchema,
  rolloutId: rolloutIdSchema.optional(),
  bundleId: bundleIdSchema.optional(),
  error: errorReportSchema.optional(),
});
export type UpdateStatus = z.infer<typeof updateStatusSchema>;

/**
 * The device's standing state: who it is, whether it is online, the model it
 * serves (`null` before the first install) and its update status. Published
 * retained, so the latest one is what a new subscriber sees. `deviceId` must
 * equal the id the envelope is signed for (`verifyDeviceMessage` checks it).
 */
export const stateMessageSchema = z.strictObject({
  ...messageHeader('state'),
  deviceId: deviceIdSchema,
  online: z.boolean(),
  agentVersion: semverSchema,
  hardware: hardwareClassSchema,
  model: bundleModelRefSchema.nullable(),
  update: updateStatusSchema,
});
export type StateMessage = z.infer<typeof stateMessageSchema>;

/** Download and install progress of one bundle in one rollout. */
export const progressMessageSchema = z
  .strictObject({
    ...messageHeader('progress'),
    rolloutId: rolloutIdSchema,
    bundleId: bundleIdSchema,
    state: updateStateSchema,
    blocksReceived: z.number().int().nonnegative().max(MAX_BLOCK_COUNT),
    blockCount: z.number().int().min(1).max(MAX_BLOCK_COUNT),
    error: errorReportSchema.optional(),
  })
  .refine((m) => m.blocksReceived <= m.blockCount, {
    message: 'blocksReceived must not exceed blockCount',
    path: ['blocksReceived'],
  });
export type ProgressMessage = z.infer<typeof progressMessageSchema>;

const latencyMsSchema = z.number().nonnegative().finite();

/** Latency quantiles over the window, in milliseconds; p50 <= p95 <= p99. */
export const latencyQuantilesSchema = z
  .strictObject({ p50: latencyMsSchema, p95: latencyMsSchema, p99: latencyMsSchema })
  .refine((l) => l.p50 <= l.p95 && l.p95 <= l.p99, {
    message: 'latency quantiles must satisfy p50 <= p95 <= p99',
  });

/**
 * Model health over one window `[windowStart, windowEnd]`: what the health
 * gates of a rollout and of probation judge.
 *
 * `meanConfidence` is the mean over successful inferences, so it is `null`
 * exactly when there was none (no requests, or every one failed).
 */
export const healthMessageSchema = z
  .strictObject({
    ...messageHeader('health'),
    model: modelRefSchema,
    windowStart: isoTimestampSchema,
    windowEnd: isoTimestampSchema,
    requests: z.number().int().nonnegative(),
    errors: z.number().int().nonnegative(),
    latencyMs: latencyQuantilesSchema,
    meanConfidence: fractionSchema.nullable(),
    /** Whether the model is still on probation (not yet committed). */
    probation: z.boolean(),
    /**
     * Online accuracy over the window: delayed labels (device feedback) for
     * this model's inferences, and how many matched the prediction it made.
     * `stored` (optional) is how many labelled samples the device holds now
     * (its training store), which a federated round's `minSamples` judges.
     */
    feedback: z
      .strictObject({
        labelled: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
        correct: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
        stored: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
      })
      .refine((f) => f.correct <= f.labelled, {
        message: 'correct must not exceed labelled',
        path: ['correct'],
      })
      .optional(),
  })
  .refine((m) => m.errors <= m.requests, {
    message: 'errors must not exceed requests',
    path: ['errors'],
  })
  .refine((m) => Date.parse(m.windowStart) <= Date.parse(m.windowEnd), {
    message: 'windowEnd must not be before windowStart',
    path: ['windowEnd'],
  })
  .refine((m) => (m.meanConfidence === null) === (m.requests - m.errors === 0), {
    message: 'meanConfidence is null exactly when no inference succeeded',
    path: ['meanConfidence'],
  });
export type HealthMessage = z.infer<typeof healthMessageSchema>;

/** Base64 characters of the largest bitmap (MAX_BLOCK_COUNT blocks, 32 KiB): 43,692. */
export const MAX_BITMAP_BASE64_CHARS = 4 * Math.ceil(MAX_BLOCK_COUNT / 8 / 3);

/**
 * A repair request: the blocks of a bundle transfer the device still lacks,
 * as a bitmap (transfer/bitmap.ts: bit i set = block i missing, LSB first) in
 * canonical base64 of exactly `ceil(blockCount / 8)` bytes, with no bit set
 * past `blockCount`. The control plane re-broadcasts those blocks on the
 * bundle's block topic. Signed like every device message, so one device
 * cannot make the control plane resend blocks in another's name; at
 * MAX_BLOCK_COUNT blocks it still signs to under MAX_CONTROL_MESSAGE_BYTES (tested).
 */
export const blocksRequestMessageSchema = z
  .strictObject({
    ...messageHeader('blocks-request'),
    rolloutId: rolloutIdSchema.optional(),
    bundleId: bundleIdSchema,
    blockCount: z.number().int().min(1).max(MAX_BLOCK_COUNT),
    missing: z.string().max(MAX_BITMAP_BASE64_CHARS),
  })
  .refine((m) => isBitmapOf(m.missing, m.blockCount), {
    message:
      'missing must be the canonical base64 of ceil(blockCount / 8) bytes, with no bit set past blockCount',
    path: ['missing'],
  });
export type BlocksRequestMessage = z.infer<typeof blocksRequestMessageSchema>;

function isBitmapOf(text: string, count: number): boolean {
  try {
    bitmapFromBase64(text, count);
    return true;
  } catch {
    return false;
  }
}

/** Any message an agent sends, discriminated on `type`. */
export const deviceMessageSchema = z.discriminatedUnion('type', [
  stateMessageSchema,
  progressMessageSchema,
  healthMessageSchema,
  blocksRequestMessageSchema,
  driftReportMessageSchema,
  flUpdateMessageSchema,
  flUpdatePartMessageSchema,
]);
export type DeviceMessage = z.infer<typeof deviceMessageSchema>;
export type DeviceMessageType = DeviceMessage['type'];
