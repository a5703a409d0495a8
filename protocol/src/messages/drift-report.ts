/**
 * The drift report (`type: 'drift'`): one flush of an agent's drift sketches
 * (ARCHITECTURE "Drift"), published on the device's existing `telemetry`
 * channel inside the usual device-signed envelope, so broker ACLs need no
 * change and the control plane trusts it behind a foreign broker.
 *
 *   id           the flush id (a UUID): the control plane stores each id once
 *                and refuses a replay of it
 *   deviceId     must equal the device the envelope is signed for
 *   model        the exact bundle whose drift profile the sketches follow
 *   rolloutId    the rollout that installed it, when there was one
 *   seq          the device's flush counter, monotonic across restarts
 *                (the control plane keeps (deviceId, seq) unique)
 *   window       [start, end] of the inferences summarised; start <= end
 *   inferences   inferences the model ran in the window
 *   sampled      how many of them fed the sketches; sampled <= inferences
 *   signals      one entry per signal of the bundle's drift profile: its
 *                name and `serializeSignal` bytes in canonical base64. Each
 *                sampled inference adds at most one value (or a missing
 *                value) to each signal.
 *
 * Size caps (THREATS 14, 31), all enforced by the schema, so a device never
 * signs what the control plane would refuse:
 *
 *   per signal      MAX_DRIFT_SIGNAL_BYTES (16 KiB) of sketch bytes; the target
 *                   is at most 3 KB per signal per flush
 *   signals         1 to MAX_DRIFT_SIGNALS (64), names unique
 *   all sketches    MAX_DRIFT_SKETCH_TOTAL_BYTES (96 KiB) together
 *   whole message   its signed envelope is under MAX_DRIFT_MESSAGE_BYTES
 *                   (192 KiB; tested), below the brokers' 256 KiB packet guard
 *
 * A flush is larger than other device messages (base64 sketches inside a
 * base64 payload cost 16/9 of the sketch bytes), so it has its own cap;
 * every other device message keeps MAX_CONTROL_MESSAGE_BYTES.
 *
 * @example
 *   const message: DriftReportMessage = {
 *     ...header, type: 'drift', deviceId: 'dev-7', model, seq: 42,
 *     window: { start: '2026-11-26T12:00:00Z', end: '2026-11-26T12:01:00Z' },
 *     inferences: 5000, sampled: 250,
 *     signals: [{ name: 'confidence', sketch: toBase64(serializeSignal(confidence)) }],
 *   };
 *   publish(deviceTopic('dev-7', 'telemetry'), wire(signDeviceMessage({ deviceId: 'dev-7', message, signer })));
 */
import { z } from 'zod';
import { isoTimestampSchema } from '../encoding/time.ts';
import { deviceIdSchema } from '../bundle/manifest.ts';
import { bundleModelRefSchema, messageHeader, rolloutIdSchema } from './common.ts';

/** Most signals one flush carries. */
export const MAX_DRIFT_SIGNALS = 64;
/** Largest serialized sketch of one signal in a flush, in bytes. */
export const MAX_DRIFT_SIGNAL_BYTES = 16 * 1024;
/** Largest sum of a flush's serialized sketches, in bytes. */
export const MAX_DRIFT_SKETCH_TOTAL_BYTES = 96 * 1024;
/** Largest signed envelope of a drift report, in bytes (and base64 characters of its payload). */
export const MAX_DRIFT_MESSAGE_BYTES = 192 * 1024;

const base64Chars = (bytes: number) => 4 * Math.ceil(bytes / 3);
const MAX_SIGNAL_CHARS = base64Chars(MAX_DRIFT_SIGNAL_BYTES);
/** Bytes that the (well-formed) base64 `text` decodes to. */
const base64Bytes = (text: string) =>
  (text.length / 4) * 3 - (text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0);
/** Canonical base64 is checked again when the sketch is decoded; this keeps junk out early. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * A drift signal's name, as the bundle's drift profile names it: 1-64 of
 * `[A-Za-z0-9_.:[\]-]`, starting with a letter or digit (`confidence`,
 * `class`, `pca.0`, `pixel[407]`). One token, so it is safe as a log field
 * and a metric label.
 */
export const driftSignalNameSchema = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_.:[\]-]{0,63}$/,
    'a signal name is 1-64 of [A-Za-z0-9_.:[]-], starting with a letter or digit',
  );

/** A timestamp of bounded length (ISO 8601 UTC; at most nanosecond digits). */
const windowTimeSchema = isoTimestampSchema.max(40);
const countSchema = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

export const driftSignalEntrySchema = z.strictObject({
  name: driftSignalNameSchema,
  sketch: z
    .string()
    .min(1)
    .max(MAX_SIGNAL_CHARS, `a signal sketch is at most ${MAX_DRIFT_SIGNAL_BYTES} bytes`)
    .regex(BASE64, 'a signal sketch is canonical base64')
    .refine(
      (text) => base64Bytes(text) <= MAX_DRIFT_SIGNAL_BYTES,
      `a signal sketch is at most ${MAX_DRIFT_SIGNAL_BYTES} bytes`,
    ),
});
export type DriftSignalEntry = z.infer<typeof driftSignalEntrySchema>;

export const driftReportMessageSchema = z
  .strictObject({
    ...messageHeader('drift'),
    deviceId: deviceIdSchema,
    model: bundleModelRefSchema,
    rolloutId: rolloutIdSchema.optional(),
    seq: countSchema,
    window: z.strictObject({ start: windowTimeSchema, end: windowTimeSchema }),
    inferences: countSchema,
    sampled: countSchema,
    signals: z.array(driftSignalEntrySchema).min(1).max(MAX_DRIFT_SIGNALS),
  })
  .refine((m) => m.sampled <= m.inferences, {
    message: 'sampled must not exceed inferences',
    path: ['sampled'],
  })
  .refine((m) => Date.parse(m.window.start) <= Date.parse(m.window.end), {
    message: 'window.end must not be before window.start',
    path: ['window', 'end'],
  })
  .refine((m) => new Set(m.signals.map((s) => s.name)).size === m.signals.length, {
    message: 'signal names must be unique',
    path: ['signals'],
  })
  .refine(
    (m) =>
      m.signals.reduce((sum, s) => sum + base64Bytes(s.sketch), 0) <= MAX_DRIFT_SKETCH_TOTAL_BYTES,
    {
      message: `the sketches of a flush are at most ${MAX_DRIFT_SKETCH_TOTAL_BYTES} bytes together`,
      path: ['signals'],
    },
  );
export type DriftReportMessage = z.infer<typeof driftReportMessageSchema>;
