/**
 * MQTT 3.1.1 topic names, topic filters and wildcard matching (§4.7), written
 * out here so the control plane, the agent and the broker's authorization hooks
 * all agree on what a filter reaches, whichever broker carries the traffic.
 *
 * Anything that is not a valid name or filter matches nothing: callers that
 * authorize on a match never get a "yes" from malformed input.
 */
import { utf8 } from '../encoding/bytes.ts';

/**
 * Our cap on a topic name or filter, in UTF-8 bytes. Stricter than the
 * spec's 65,535 ([MQTT-4.7.3-3]): the longest topic of our tree is under 100
 * bytes, and a short cap bounds what a client can make the broker hold.
 */
export const MAX_TOPIC_BYTES = 256;

const LEVEL_SEPARATOR = '/';
const SINGLE_LEVEL_WILDCARD = '+';
const MULTI_LEVEL_WILDCARD = '#';

/** A UTF-16 surrogate without its pair: no well-formed UTF-8 encodes it. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The checks names and filters share: length, encoding, U+0000. */
function isWellFormedTopicString(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  // [MQTT-4.7.3-1] at least one character.
  if (value.length === 0) return false;
  // [MQTT-4.7.3-2], [MQTT-1.5.3-2] no U+0000.
  if (value.includes('\u0000')) return false;
  // [MQTT-1.5.3-1] well-formed UTF-8: no surrogate code points.
  if (LONE_SURROGATE.test(value)) return false;
  // Our cap, stricter than [MQTT-4.7.3-3]'s 65,535 bytes.
  return utf8(value).length <= MAX_TOPIC_BYTES;
}

/**
 * True when `topic` is a topic name a client may publish to: 1 to
 * MAX_TOPIC_BYTES UTF-8 bytes, no U+0000, no wildcard characters.
 * Empty levels (`a//b`, `/a`) are allowed, as in the spec.
 */
export function isValidTopicName(topic: string): boolean {
  if (!isWellFormedTopicString(topic)) return false;
  // [MQTT-4.7.1-1] wildcards are for filters only, never in a topic name.
  return !topic.includes(SINGLE_LEVEL_WILDCARD) && !topic.includes(MULTI_LEVEL_WILDCARD);
}

/**
 * True when `filter` is a topic filter a client may subscribe to: the rules
 * of a topic name, except that `+` may fill a whole level and `#` may fill a
 * whole last level.
 */
export function isValidTopicFilter(filter: string): boolean {
  if (!isWellFormedTopicString(filter)) return false;
  const levels = filter.split(LEVEL_SEPARATOR);
  return levels.every((level, index) => {
    // [MQTT-4.7.1-2] `#` alone in its level, and that level is the last.
    if (level.includes(MULTI_LEVEL_WILDCARD)) {
      return level === MULTI_LEVEL_WILDCARD && index === levels.length - 1;
    }
    // [MQTT-4.7.1-3] `+` alone in its level.
    if (level.includes(SINGLE_LEVEL_WILDCARD)) return level === SINGLE_LEVEL_WILDCARD;
    return true;
  });
}

/**
 * True when a message published to `topic` is delivered to a subscription
 * on `filter` (MQTT 3.1.1 §4.7). False when either is not valid.
 *
 * @example
 *   topicMatchesFilter('fleet/v1/dev/+/evt', 'fleet/v1/dev/d1/evt') // true
 *   topicMatchesFilter('fleet/v1/dev/#', 'fleet/v1/dev')            // true: `#` includes the parent
 *   topicMatchesFilter('#', '$SYS/broker/uptime')                    // false: [MQTT-4.7.2-1]
 */
export function topicMatchesFilter(filter: string, topic: string): boolean {
  if (!isValidTopicFilter(filter) || !isValidTopicName(topic)) return false;
  // [MQTT-4.7.2-1] a filter starting with a wildcard does not match `$` topics.
  if (topic.startsWith('$') && (filter[0] === '+' || filter[0] === '#')) return false;

  const filterLevels = filter.split(LEVEL_SEPARATOR);
  const topicLevels = topic.split(LEVEL_SEPARATOR);
  for (let i = 0; i < filterLevels.length; i++) {
    const level = filterLevels[i];
    // §4.7.1.2 `#` matches the rest, including no levels at all: `a/#` matches `a`.
    if (level === MULTI_LEVEL_WILDCARD) return true;
    if (i >= topicLevels.length) return false;
    // §4.7.1.3 `+` matches exactly one level, which may be empty.
    if (level === SINGLE_LEVEL_WILDCARD) continue;
    // [MQTT-4.7.3-4] levels compare as exact strings: case-sensitive, no normalization.
    if (level !== topicLevels[i]) return false;
  }
  return filterLevels.length === topicLevels.length;
}
