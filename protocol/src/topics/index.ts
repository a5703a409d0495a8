/**
 * The MQTT topic tree of Fleet: building and reading topics, MQTT 3.1.1
 * wildcard matching, and what each device may publish and subscribe to.
 */
export {
  TOPIC_ROOT,
  DEVICE_CHANNELS,
  type DeviceChannel,
  type ParsedTopic,
  isValidDeviceId,
  isValidBundleId,
  deviceTopic,
  bundleBlocksTopic,
  parseTopic,
  sharedSubscription,
  allDevicesFilter,
  controlPlaneSubscriptions,
} from './topics.ts';
export {
  MAX_TOPIC_BYTES,
  isValidTopicName,
  isValidTopicFilter,
  topicMatchesFilter,
} from './match.ts';
export {
  DEVICE_PUBLISH_CHANNELS,
  canPublish,
  canSubscribe,
  assertCanPublish,
  assertCanSubscribe,
} from './access.ts';
