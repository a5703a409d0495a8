/**
 * The Fleet topic tree, the one place topic strings are built and read:
 *
 *   fleet/v1/dev/{deviceId}/cmd          control plane -> agent
 *   fleet/v1/dev/{deviceId}/evt          agent -> control plane
 *   fleet/v1/dev/{deviceId}/state        agent -> control plane (retained, last will)
 *   fleet/v1/dev/{deviceId}/telemetry    agent -> control plane
 *   fleet/v1/dev/{deviceId}/update       agent -> control plane (FL updates)
 *   fleet/v1/dev/{deviceId}/blocks/req   agent -> control plane (missing blocks)
 *   fleet/v1/dev/{deviceId}/blocks       control plane -> agent (repair blocks for it alone)
 *   fleet/v1/bundle/{bundleId}/blocks    control plane -> agents (block broadcast)
 *
 * Ids are restricted so that an id can never carry a level separator, a
 * wildcard or a leading `$`: a built topic always has exactly the levels above.
 */
import { FleetError } from '../errors.ts';
import { isValidTopicFilter } from './match.ts';

export const TOPIC_ROOT = 'fleet/v1';

/** The channels under `fleet/v1/dev/{deviceId}/`. */
export const DEVICE_CHANNELS = [
  'cmd',
  'evt',
  'state',
  'telemetry',
  'update',
  'blocks/req',
  'blocks',
] as const;

export type DeviceChannel = (typeof DEVICE_CHANNELS)[number];

/** A topic of the tree, as `parseTopic` reads it. */
export type ParsedTopic =
  | { kind: 'device'; deviceId: string; channel: DeviceChannel }
  | { kind: 'bundle-blocks'; bundleId: string };

const DEVICE_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const BUNDLE_ID = /^[0-9a-f]{64}$/;

/** 1 to 64 characters of `[A-Za-z0-9_-]`, starting with a letter or digit. */
export function isValidDeviceId(deviceId: string): boolean {
  return typeof deviceId === 'string' && DEVICE_ID.test(deviceId);
}

/** A bundle id is the SHA-256 of its bundle: 64 lowercase hex characters. */
export function isValidBundleId(bundleId: string): boolean {
  return typeof bundleId === 'string' && BUNDLE_ID.test(bundleId);
}

function isDeviceChannel(value: string): value is DeviceChannel {
  return (DEVICE_CHANNELS as readonly string[]).includes(value);
}

/**
 * The topic of one device's channel. Throws FleetError('MALFORMED') for an
 * invalid device id or an unknown channel.
 *
 * @example deviceTopic('pump-17', 'telemetry') // 'fleet/v1/dev/pump-17/telemetry'
 */
export function deviceTopic(deviceId: string, channel: DeviceChannel): string {
  if (!isValidDeviceId(deviceId)) {
    throw new FleetError('MALFORMED', `invalid device id ${JSON.stringify(deviceId)}`);
  }
  if (!isDeviceChannel(channel)) {
    throw new FleetError('MALFORMED', `unknown device channel ${JSON.stringify(channel)}`);
  }
  return `${TOPIC_ROOT}/dev/${deviceId}/${channel}`;
}

/** The broadcast topic of one bundle's blocks. Throws FleetError('MALFORMED') for an invalid id. */
export function bundleBlocksTopic(bundleId: string): string {
  if (!isValidBundleId(bundleId)) {
    throw new FleetError('MALFORMED', `invalid bundle id ${JSON.stringify(bundleId)}`);
  }
  return `${TOPIC_ROOT}/bundle/${bundleId}/blocks`;
}

/**
 * Reads a topic of the tree; null for anything else, including filters,
 * invalid ids, extra or missing levels and other roots.
 */
export function parseTopic(topic: string): ParsedTopic | null {
  if (typeof topic !== 'string' || !topic.startsWith(`${TOPIC_ROOT}/`)) return null;
  const [kind, id, ...rest] = topic.slice(TOPIC_ROOT.length + 1).split('/');
  if (id === undefined) return null;
  const tail = rest.join('/');
  if (kind === 'dev' && isValidDeviceId(id) && isDeviceChannel(tail)) {
    return { kind: 'device', deviceId: id, channel: tail };
  }
  if (kind === 'bundle' && isValidBundleId(id) && tail === 'blocks') {
    return { kind: 'bundle-blocks', bundleId: id };
  }
  return null;
}

/**
 * The shared-subscription form of `filter` (`$share/{group}/{filter}`), so that
 * control-plane replicas in one group split the messages between them.
 * Throws FleetError('MALFORMED') when `group` is empty or holds `/`, `+` or `#`
 * (MQTT 5 [MQTT-4.8.2-1], [MQTT-4.8.2-2]), or the result is not a valid filter.
 *
 * @example sharedSubscription('control-plane', 'fleet/v1/dev/+/evt')
 *   // '$share/control-plane/fleet/v1/dev/+/evt'
 */
export function sharedSubscription(group: string, filter: string): string {
  if (typeof group !== 'string' || group.length === 0 || /[/+#]/.test(group)) {
    throw new FleetError('MALFORMED', `invalid shared subscription group ${JSON.stringify(group)}`);
  }
  if (!isValidTopicFilter(filter) || filter.startsWith('$share/')) {
    throw new FleetError('MALFORMED', `invalid topic filter ${JSON.stringify(filter)}`);
  }
  const shared = `$share/${group}/${filter}`;
  if (!isValidTopicFilter(shared)) {
    throw new FleetError('MALFORMED', `invalid shared subscription ${JSON.stringify(shared)}`);
  }
  return shared;
}

/** The channels the control plane reads from every device. */
const CONTROL_PLANE_INBOUND: readonly DeviceChannel[] = [
  'evt',
  'state',
  'telemetry',
  'update',
  'blocks/req',
];

/**
 * The filter reaching one channel of every device: `fleet/v1/dev/+/{channel}`.
 * For the control plane only; devices may never subscribe to it.
 */
export function allDevicesFilter(channel: DeviceChannel): string {
  if (!isDeviceChannel(channel)) {
    throw new FleetError('MALFORMED', `unknown device channel ${JSON.stringify(channel)}`);
  }
  return `${TOPIC_ROOT}/dev/+/${channel}`;
}

/**
 * The filters the control plane subscribes to: every device channel that
 * flows towards it. With `shareGroup`, each is a `$share/{group}/...` filter
 * so that replicas split the work.
 *
 * @example controlPlaneSubscriptions() // ['fleet/v1/dev/+/evt', 'fleet/v1/dev/+/state', ...]
 */
export function controlPlaneSubscriptions(options: { shareGroup?: string } = {}): string[] {
  const filters = CONTROL_PLANE_INBOUND.map(allDevicesFilter);
  const { shareGroup } = options;
  return shareGroup === undefined
    ? filters
    : filters.map((filter) => sharedSubscription(shareGroup, filter));
}
