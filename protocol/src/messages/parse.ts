/**
 * Control messages in and out of bytes. Parsing caps the size before reading
 * any JSON (THREATS 14, 31), then applies the strict schema of the direction
 * the bytes came from; every refusal is a FleetError naming the failing field:
 *
 *   TOO_LARGE   more than MAX_CONTROL_MESSAGE_BYTES (a drift report:
 *               MAX_DRIFT_MESSAGE_BYTES, an fl-update-part:
 *               MAX_FL_PART_MESSAGE_BYTES; see `maxDeviceMessageBytes`)
 *   MALFORMED   not UTF-8 JSON, or a schema violation ("field "bundle.blockCount": ...")
 */
import type { z } from 'zod';
import { FleetError } from '../errors.ts';
import { canonicalJson, parseJsonBytes } from '../encoding/json.ts';
import { commandMessageSchema, type CommandMessage } from './commands.ts';
import { deviceMessageSchema, type DeviceMessage } from './device-messages.ts';
import { controlMessageSchema, type ControlMessage } from './control-message.ts';
import { MAX_DRIFT_MESSAGE_BYTES } from './drift-report.ts';
import { MAX_FL_PART_MESSAGE_BYTES } from './fl-update.ts';

/**
 * The largest control message on the wire, in bytes: a command, or a device
 * message's signed envelope. MQTT brokers and clients can use it as their
 * packet cap for the control channels.
 */
export const MAX_CONTROL_MESSAGE_BYTES = 64 * 1024;

/** Message types with a cap of their own; every other type has MAX_CONTROL_MESSAGE_BYTES. */
const TYPE_CAPS: Readonly<Record<string, number>> = {
  drift: MAX_DRIFT_MESSAGE_BYTES,
  'fl-update-part': MAX_FL_PART_MESSAGE_BYTES,
};

/**
 * The largest device message of any type (a drift report, drift-report.ts):
 * what a receiver reads at most before it knows the type.
 */
export const MAX_DEVICE_MESSAGE_BYTES = Math.max(
  MAX_CONTROL_MESSAGE_BYTES,
  ...Object.values(TYPE_CAPS),
);

/**
 * The cap of one message type: MAX_DRIFT_MESSAGE_BYTES for `drift`,
 * MAX_FL_PART_MESSAGE_BYTES for `fl-update-part`, MAX_CONTROL_MESSAGE_BYTES for the rest.
 */
export function maxDeviceMessageBytes(type: string): number {
  return Object.hasOwn(TYPE_CAPS, type) ? TYPE_CAPS[type]! : MAX_CONTROL_MESSAGE_BYTES;
}

/** Throws TOO_LARGE when `size` passes the cap of `type`. */
export function assertMessageSize(type: string, size: number, what: string): void {
  const cap = maxDeviceMessageBytes(type);
  if (size > cap) {
    throw new FleetError(
      'TOO_LARGE',
      `${what}: a ${type} message of ${size} bytes, the cap is ${cap}`,
    );
  }
}

type Issue = z.core.$ZodIssue;

// Field names in errors come from the input: cap them so an error stays short.
function fieldPath(path: readonly PropertyKey[], key?: string): string {
  const parts = key === undefined ? path : [...path, key];
  return JSON.stringify(parts.map((p) => String(p).slice(0, 64)).join('.'));
}

function describeIssue(issue: Issue): string {
  if (issue.code === 'unrecognized_keys') {
    const names = issue.keys.slice(0, 5).map((k) => fieldPath(issue.path, k));
    return `unknown field ${names.join(', ')}`;
  }
  if (issue.path.length === 0) return issue.message;
  return `field ${fieldPath(issue.path)}: ${issue.message}`;
}

/**
 * Checks `value` against `schema` and returns the parsed value, or throws
 * MALFORMED naming the first failing field; `what` names the input.
 *
 * @example
 *   validateMessage(healthMessageSchema, json, 'health message from dev-7')
 *   // MALFORMED: health message from dev-7: field "errors": errors must not exceed requests
 */
export function validateMessage<Schema extends z.ZodType>(
  schema: Schema,
  value: unknown,
  what: string,
): z.output<Schema> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const [first, ...rest] = parsed.error.issues;
  const more = rest.length > 0 ? ` (and ${rest.length} more issue(s))` : '';
  throw new FleetError('MALFORMED', `${what}: ${first ? describeIssue(first) : 'invalid'}${more}`, {
    cause: parsed.error,
  });
}

/**
 * Validates a command and encodes it as canonical JSON bytes within
 * MAX_CONTROL_MESSAGE_BYTES: what the control plane publishes on a `cmd` topic
 * (`fl-train` included, which `encodeControlMessage` does not know).
 */
export function encodeCommand(message: CommandMessage): Uint8Array {
  const valid = validateMessage(commandMessageSchema, message, 'command');
  const bytes = canonicalJson(valid);
  if (bytes.length > MAX_CONTROL_MESSAGE_BYTES) {
    throw new FleetError(
      'TOO_LARGE',
      `command: a ${valid.type} command of ${bytes.length} bytes, the cap is ${MAX_CONTROL_MESSAGE_BYTES}`,
    );
  }
  return bytes;
}

/** Parses a command as an agent receives it on its `cmd` topic. */
export function parseCommand(bytes: Uint8Array): CommandMessage {
  const json = parseJsonBytes(bytes, MAX_CONTROL_MESSAGE_BYTES, 'command');
  return validateMessage(commandMessageSchema, json, 'command');
}

/**
 * Parses a device message from JSON bytes. This checks shape only: the control
 * plane accepts device messages through `verifyDeviceMessage`, which checks the
 * device's signature first and then calls this schema.
 */
export function parseDeviceMessage(bytes: Uint8Array): DeviceMessage {
  const json = parseJsonBytes(bytes, MAX_DEVICE_MESSAGE_BYTES, 'device message');
  const message = validateMessage(deviceMessageSchema, json, 'device message');
  assertMessageSize(message.type, bytes.length, 'device message');
  return message;
}

/** Parses a control message of either direction (tools, logs, the simulator). */
export function parseControlMessage(bytes: Uint8Array): ControlMessage {
  const json = parseJsonBytes(bytes, MAX_DEVICE_MESSAGE_BYTES, 'control message');
  const message = validateMessage(controlMessageSchema, json, 'control message');
  assertMessageSize(message.type, bytes.length, 'control message');
  return message;
}

/**
 * Validates a message and encodes it as canonical JSON (RFC 8785) bytes, so a
 * sender never publishes what the receiver would refuse.
 */
export function encodeControlMessage(message: ControlMessage): Uint8Array {
  const valid = validateMessage(controlMessageSchema, message, 'control message');
  const bytes = canonicalJson(valid);
  assertMessageSize(valid.type, bytes.length, 'control message');
  return bytes;
}
