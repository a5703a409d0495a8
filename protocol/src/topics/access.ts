/**
 * What a device may publish and subscribe to (ARCHITECTURE "The wire",
 * THREATS 28 and 30). Deny by default: a request is allowed only when it is
 * exactly one of the few topics or filters listed here for that device, so
 * wildcards, `$` topics, empty levels, other roots and other devices' ids all
 * fall through to "no" without a rule of their own.
 *
 * The broker's authorizePublish / authorizeSubscribe call these for live
 * packets, last-will topics and restored sessions alike.
 */
import { FleetError } from '../errors.ts';
import { isValidTopicFilter, isValidTopicName, MAX_TOPIC_BYTES } from './match.ts';
import {
  deviceTopic,
  isValidBundleId,
  isValidDeviceId,
  TOPIC_ROOT,
  type DeviceChannel,
} from './topics.ts';

/** The channels of its own a device may publish to; never `cmd` (THREATS 30). */
export const DEVICE_PUBLISH_CHANNELS = [
  'evt',
  'state',
  'telemetry',
  'update',
  'blocks/req',
] as const satisfies readonly DeviceChannel[];

/**
 * True when device `deviceId` may publish to `topic`: only its own
 * `fleet/v1/dev/{deviceId}/{evt|state|telemetry|update|blocks/req}`.
 */
export function canPublish(deviceId: string, topic: string): boolean {
  if (!isValidDeviceId(deviceId) || !isValidTopicName(topic)) return false;
  // Exact string equality with a topic we build: nothing else gets through.
  return DEVICE_PUBLISH_CHANNELS.some((channel) => topic === deviceTopic(deviceId, channel));
}

/**
 * True when device `deviceId` may subscribe to `filter`: only exactly its own
 * `fleet/v1/dev/{deviceId}/cmd` and `.../blocks` (repairs sent to it alone),
 * and `fleet/v1/bundle/{bundleId}/blocks` with a valid bundle id or `+` in
 * place of the id.
 */
export function canSubscribe(deviceId: string, filter: string): boolean {
  if (!isValidDeviceId(deviceId) || !isValidTopicFilter(filter)) return false;
  if (filter === deviceTopic(deviceId, 'cmd') || filter === deviceTopic(deviceId, 'blocks')) {
    return true;
  }
  return isBundleBlocksFilter(filter);
}

/** `fleet/v1/bundle/{bundleId|+}/blocks`, exactly five levels. */
function isBundleBlocksFilter(filter: string): boolean {
  const prefix = `${TOPIC_ROOT}/bundle/`;
  const suffix = '/blocks';
  if (!filter.startsWith(prefix) || !filter.endsWith(suffix)) return false;
  const id = filter.slice(prefix.length, filter.length - suffix.length);
  // `+` reaches only bundle block topics: one level, fixed levels either side.
  return id === '+' || isValidBundleId(id);
}

/** Like `canPublish`, but throws FleetError('TOPIC_DENIED') naming the device and topic. */
export function assertCanPublish(deviceId: string, topic: string): void {
  if (!canPublish(deviceId, topic)) {
    throw new FleetError(
      'TOPIC_DENIED',
      `device ${quote(deviceId)} may not publish to ${quote(topic)}`,
    );
  }
}

/** Like `canSubscribe`, but throws FleetError('TOPIC_DENIED') naming the device and filter. */
export function assertCanSubscribe(deviceId: string, filter: string): void {
  if (!canSubscribe(deviceId, filter)) {
    throw new FleetError(
      'TOPIC_DENIED',
      `device ${quote(deviceId)} may not subscribe to ${quote(filter)}`,
    );
  }
}

/** Quotes a client-supplied string for a message, cut short: it may be up to 64 KiB. */
function quote(value: string): string {
  const text = String(value);
  return text.length > MAX_TOPIC_BYTES
    ? `${JSON.stringify(text.slice(0, MAX_TOPIC_BYTES))}...`
    : JSON.stringify(text);
}
