import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  isValidTopicFilter,
  isValidTopicName,
  MAX_TOPIC_BYTES,
  topicMatchesFilter,
} from './match.ts';

/** [filter, topic, expected] with the reason a reader should see. */
type MatchCase = [name: string, filter: string, topic: string, expected: boolean];

// The examples of MQTT 3.1.1 §4.7, then the edges they imply.
const MATCH_CASES: MatchCase[] = [
  ['exact topic', 'sport/tennis', 'sport/tennis', true],
  ['levels are case-sensitive [MQTT-4.7.3-4]', 'ACCOUNTS', 'Accounts', false],
  ['a leading "/" makes a distinct topic', '/finance', 'finance', false],
  ['# under a level matches that level itself (§4.7.1.2)', 'sport/#', 'sport', true],
  ['# matches one level below', 'sport/tennis/player1/#', 'sport/tennis/player1/ranking', true],
  [
    '# matches many levels below',
    'sport/tennis/player1/#',
    'sport/tennis/player1/score/wimbledon',
    true,
  ],
  ['# alone matches every non-$ topic', '#', 'a/b/c', true],
  ['# matches a trailing empty level', 'sport/#', 'sport/', true],
  ['# does not match a sibling', 'sport/tennis/#', 'sport/football', false],
  ['# does not match a prefix string that is not a level', 'sport/#', 'sports', false],
  ['+ matches one level (§4.7.1.3)', 'sport/tennis/+', 'sport/tennis/player1', true],
  ['+ does not match two levels', 'sport/tennis/+', 'sport/tennis/player1/ranking', false],
  ['+ does not match zero levels', 'sport/+', 'sport', false],
  ['+ matches an empty level', 'sport/+', 'sport/', true],
  ['+ in the middle', 'sport/+/player1', 'sport/tennis/player1', true],
  ['"/finance" matches "+/+"', '+/+', '/finance', true],
  ['"/finance" matches "/+"', '/+', '/finance', true],
  ['"/finance" does not match "+"', '+', '/finance', false],
  ['empty levels are levels', 'a//b', 'a//b', true],
  ['an empty level is not skipped', 'a/b', 'a//b', false],
  ['+ then #', '+/tennis/#', 'sport/tennis', true],
  ['# does not match $ topics [MQTT-4.7.2-1]', '#', '$SYS/broker/uptime', false],
  [
    '+ first does not match $ topics [MQTT-4.7.2-1]',
    '+/monitor/Clients',
    '$SYS/monitor/Clients',
    false,
  ],
  ['$SYS/# matches $SYS topics', '$SYS/#', '$SYS/broker/uptime', true],
  ['$SYS/monitor/+ matches', '$SYS/monitor/+', '$SYS/monitor/Clients', true],
  ['a $ inside a later level is an ordinary character', '+/x', 'a$/x', true],
  ['an invalid filter (# not last) matches nothing', 'a/#/b', 'a/x/b', false],
  ['an invalid filter (+ inside a level) matches nothing', 'a+', 'a+', false],
  ['a topic name with a wildcard matches nothing', '#', 'a/+', false],
  ['an empty topic matches nothing', '#', '', false],
  ['a topic with U+0000 matches nothing', '#', 'a\u0000', false],
];

describe('topicMatchesFilter', () => {
  for (const [name, filter, topic, expected] of MATCH_CASES) {
    it(`${name}: ${JSON.stringify(filter)} vs ${JSON.stringify(topic)}`, () => {
      assert.equal(topicMatchesFilter(filter, topic), expected);
    });
  }
});

describe('isValidTopicName', () => {
  const valid: [string, string][] = [
    ['one character', 'a'],
    ['a lone "/" (two empty levels)', '/'],
    ['empty levels', 'a//b'],
    ['a space', 'Accounts payable'],
    ['a $ topic', '$SYS/broker'],
    ['multi-byte characters', 'capteur/température'],
    ['exactly MAX_TOPIC_BYTES bytes', 'a'.repeat(MAX_TOPIC_BYTES)],
    ['exactly MAX_TOPIC_BYTES bytes of 2-byte characters', 'é'.repeat(MAX_TOPIC_BYTES / 2)],
  ];
  for (const [name, topic] of valid) {
    it(`accepts ${name}`, () => assert.equal(isValidTopicName(topic), true));
  }
  const invalid: [string, string][] = [
    ['the empty string [MQTT-4.7.3-1]', ''],
    ['+ [MQTT-4.7.1-1]', 'a/+'],
    ['# [MQTT-4.7.1-1]', 'a/#'],
    ['+ inside a level [MQTT-4.7.1-1]', 'a+b'],
    ['U+0000 [MQTT-4.7.3-2]', 'a\u0000b'],
    ['a lone high surrogate [MQTT-1.5.3-1]', 'a\uD800'],
    ['a lone low surrogate [MQTT-1.5.3-1]', '\uDC00a'],
    ['MAX_TOPIC_BYTES + 1 bytes', 'a'.repeat(MAX_TOPIC_BYTES + 1)],
    [
      'MAX_TOPIC_BYTES + 1 bytes counted in UTF-8, not UTF-16',
      `a${'é'.repeat(MAX_TOPIC_BYTES / 2)}`,
    ],
  ];
  for (const [name, topic] of invalid) {
    it(`refuses ${name}`, () => assert.equal(isValidTopicName(topic), false));
  }
  it('accepts a surrogate pair (one 4-byte character)', () => {
    assert.equal(isValidTopicName('a/\uD83D\uDE00'), true);
  });
  it('refuses a non-string from untyped callers', () => {
    assert.equal(isValidTopicName(undefined as unknown as string), false);
  });
});

describe('isValidTopicFilter', () => {
  const valid = [
    '#',
    '+',
    'sport/#',
    '+/tennis/#',
    'sport/+/player1',
    '/+',
    '+/+',
    'a//b',
    '$SYS/#',
  ];
  for (const filter of valid) {
    it(`accepts ${JSON.stringify(filter)}`, () => assert.equal(isValidTopicFilter(filter), true));
  }
  const invalid: [string, string][] = [
    ['the empty string [MQTT-4.7.3-1]', ''],
    ['# not in the last level [MQTT-4.7.1-2]', 'sport/tennis/#/ranking'],
    ['# sharing its level [MQTT-4.7.1-2]', 'sport/tennis#'],
    ['two #', '#/#'],
    ['+ sharing its level [MQTT-4.7.1-3]', 'sport+'],
    ['+ sharing a middle level [MQTT-4.7.1-3]', 'a/b+/c'],
    ['U+0000 [MQTT-4.7.3-2]', 'a/\u0000/#'],
    ['a lone surrogate [MQTT-1.5.3-1]', '\uD800/#'],
    ['MAX_TOPIC_BYTES + 1 bytes', `${'a/'.repeat(MAX_TOPIC_BYTES / 2)}#`],
  ];
  for (const [name, filter] of invalid) {
    it(`refuses ${name}`, () => assert.equal(isValidTopicFilter(filter), false));
  }
});

/**
 * An independent reading of §4.7 as a regular expression, to check the
 * level-walking matcher against: `+` is `[^/]*`, a trailing `/#` is an
 * optional `/` plus anything, a lone `#` is anything, and a filter starting
 * with a wildcard may not match a topic starting with `$`.
 */
function referenceMatch(filter: string, topic: string): boolean {
  const levels = filter.split('/');
  const multi = levels[levels.length - 1] === '#';
  const fixed = multi ? levels.slice(0, -1) : levels;
  const body = fixed
    .map((level) => (level === '+' ? '[^/]*' : level.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  const pattern = !multi ? body : fixed.length === 0 ? '.*' : `${body}(?:/.*)?`;
  const guard = /^[+#]/.test(filter) ? '(?!\\$)' : '';
  return new RegExp(`^${guard}${pattern}$`, 's').test(topic);
}

const FILTER_LEVELS = ['a', 'b', '', '$SYS', '$x', 'é', '+'];
const TOPIC_LEVELS = ['a', 'b', '', '$SYS', '$x', 'é', 'c'];

/** Valid filters over a small alphabet, so that matches are frequent. */
const validFilter = fc
  .tuple(fc.array(fc.constantFrom(...FILTER_LEVELS), { maxLength: 5 }), fc.boolean())
  .map(([levels, hash]) => (hash ? [...levels, '#'] : levels).join('/'))
  .filter((filter) => filter.length > 0);

const validTopic = fc
  .array(fc.constantFrom(...TOPIC_LEVELS), { minLength: 1, maxLength: 6 })
  .map((levels) => levels.join('/'))
  .filter((topic) => topic.length > 0);

/** Raw strings over the characters that matter, most of them invalid. */
const rawString = fc
  .array(fc.constantFrom('a', '/', '+', '#', '$', '\u0000', 'é', '\uD800'), { maxLength: 8 })
  .map((chars) => chars.join(''));

describe('topicMatchesFilter properties', () => {
  it('agrees with an independent regex reading of §4.7 on valid filters and topics', () => {
    const seen = { match: 0, noMatch: 0 };
    fc.assert(
      fc.property(validFilter, validTopic, (filter, topic) => {
        const expected = referenceMatch(filter, topic);
        seen[expected ? 'match' : 'noMatch']++;
        assert.equal(topicMatchesFilter(filter, topic), expected, `${filter} vs ${topic}`);
      }),
      { numRuns: 5000 },
    );
    // Both outcomes must have been exercised for the comparison to mean anything.
    assert.ok(seen.match > 200 && seen.noMatch > 200, JSON.stringify(seen));
  });

  it('matches nothing when the filter or the topic is invalid', () => {
    fc.assert(
      fc.property(fc.oneof(rawString, validFilter), fc.oneof(rawString, validTopic), (f, t) => {
        if (isValidTopicFilter(f) && isValidTopicName(t)) return;
        assert.equal(topicMatchesFilter(f, t), false);
      }),
      { numRuns: 3000 },
    );
  });

  it('validates filters and names like an independent structural regex', () => {
    // Whole levels only: each level is `+`, or free of wildcards; `#` only as the last level.
    const FILTER_SHAPE = /^(?:(?:\+|[^+#/]*)\/)*(?:\+|#|[^+#/]*)$/;
    const NAME_SHAPE = /^[^+#]*$/;
    const wellFormed = (s: string) =>
      s.length > 0 && !s.includes('\u0000') && !/[\uD800-\uDFFF]/.test(s);
    fc.assert(
      fc.property(rawString, (s) => {
        // rawString is short and holds no surrogate pairs, so the byte cap and
        // pairing never come into play here; they have example tests above.
        assert.equal(isValidTopicFilter(s), wellFormed(s) && FILTER_SHAPE.test(s), s);
        assert.equal(isValidTopicName(s), wellFormed(s) && NAME_SHAPE.test(s), s);
      }),
      { numRuns: 3000 },
    );
  });
});
