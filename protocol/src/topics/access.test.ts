import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isFleetError } from '../errors.ts';
import {
  assertCanPublish,
  assertCanSubscribe,
  canPublish,
  canSubscribe,
  DEVICE_PUBLISH_CHANNELS,
} from './access.ts';
import { MAX_TOPIC_BYTES, topicMatchesFilter } from './match.ts';
import { DEVICE_CHANNELS, deviceTopic, parseTopic, type DeviceChannel } from './topics.ts';

const SELF = 'dev-a1';
/** Another device, one whose id extends ours, ours in another case, ours cut short. */
const OTHERS = ['dev-b2', 'dev-a10', 'DEV-A1', 'dev-a'];
const BUNDLE = '0f'.repeat(32);
const OWN = (channel: DeviceChannel) => deviceTopic(SELF, channel);
const UPSTREAM: DeviceChannel[] = ['evt', 'state', 'telemetry', 'update', 'blocks/req'];

describe('canPublish', () => {
  for (const channel of UPSTREAM) {
    it(`allows the device's own ${channel} topic`, () => {
      assert.equal(canPublish(SELF, OWN(channel)), true);
    });
  }

  it('DEVICE_PUBLISH_CHANNELS is exactly the upstream channels', () => {
    assert.deepEqual([...DEVICE_PUBLISH_CHANNELS], UPSTREAM);
  });

  const denied: [name: string, deviceId: string, topic: string][] = [
    ['its own cmd topic: only the control plane commands (THREATS 30)', SELF, OWN('cmd')],
    ['a bundle block topic (THREATS 30)', SELF, `fleet/v1/bundle/${BUNDLE}/blocks`],
    ["another device's telemetry (THREATS 28)", SELF, deviceTopic('dev-b2', 'telemetry')],
    ["another device's cmd (THREATS 28)", SELF, deviceTopic('dev-b2', 'cmd')],
    ['the topic of a device whose id extends ours', SELF, deviceTopic('dev-a10', 'evt')],
    ['its own id in another case (another device)', SELF, deviceTopic('DEV-A1', 'evt')],
    ['+ in place of the device id [MQTT-4.7.1-1]', SELF, 'fleet/v1/dev/+/telemetry'],
    ['# under its own topics [MQTT-4.7.1-1]', SELF, 'fleet/v1/dev/dev-a1/#'],
    ['a $SYS topic', SELF, '$SYS/broker/clients/total'],
    ['a $share topic', SELF, `$share/g/${OWN('evt')}`],
    ['an empty level in the root', SELF, 'fleet//v1/dev/dev-a1/evt'],
    ['an empty level before the channel', SELF, 'fleet/v1/dev/dev-a1//evt'],
    ['a trailing empty level', SELF, `${OWN('evt')}/`],
    ['a leading "/"', SELF, `/${OWN('evt')}`],
    ['an extra level under its own channel', SELF, `${OWN('evt')}/x`],
    ['its device level alone', SELF, 'fleet/v1/dev/dev-a1'],
    ['an unknown channel', SELF, 'fleet/v1/dev/dev-a1/logs'],
    [
      'its own repair blocks: only the control plane sends blocks (THREATS 30)',
      SELF,
      OWN('blocks'),
    ],
    ['another protocol version', SELF, 'fleet/v2/dev/dev-a1/evt'],
    ['a topic outside the tree', SELF, 'other/dev-a1/evt'],
    ['U+0000 after its own topic [MQTT-4.7.3-2]', SELF, `${OWN('evt')}\u0000`],
    ['a lone surrogate [MQTT-1.5.3-1]', SELF, `${OWN('evt')}\uD800`],
    ['an overlong topic', SELF, `${OWN('evt')}/${'x'.repeat(MAX_TOPIC_BYTES)}`],
    ['the empty topic [MQTT-4.7.3-1]', SELF, ''],
    ['an empty device id', '', 'fleet/v1/dev//evt'],
    ['a device id "+" on the matching wildcard topic', '+', 'fleet/v1/dev/+/evt'],
    ['a device id "#"', '#', 'fleet/v1/dev/#/evt'],
    ['a device id holding a "/"', 'a/b', 'fleet/v1/dev/a/b/evt'],
    ['a device id "$SYS"', '$SYS', 'fleet/v1/dev/$SYS/evt'],
    ['a 65-character device id', 'x'.repeat(65), `fleet/v1/dev/${'x'.repeat(65)}/evt`],
    ['a non-string topic from untyped callers', SELF, undefined as unknown as string],
  ];
  for (const [name, deviceId, topic] of denied) {
    it(`denies ${name}`, () => {
      assert.equal(canPublish(deviceId, topic), false);
      assert.throws(
        () => assertCanPublish(deviceId, topic),
        (e: unknown) => isFleetError(e, 'TOPIC_DENIED'),
      );
    });
  }

  it('assertCanPublish names the device and the topic', () => {
    assert.throws(() => assertCanPublish(SELF, OWN('cmd')), {
      message: 'TOPIC_DENIED: device "dev-a1" may not publish to "fleet/v1/dev/dev-a1/cmd"',
    });
    assert.doesNotThrow(() => assertCanPublish(SELF, OWN('telemetry')));
  });

  it('assertCanPublish cuts an overlong topic short in its message', () => {
    const topic = 'x'.repeat(60_000);
    assert.throws(
      () => assertCanPublish(SELF, topic),
      (e: unknown) => isFleetError(e) && e.message.length < 2 * MAX_TOPIC_BYTES,
    );
  });
});

describe('canSubscribe', () => {
  const allowed: [string, string][] = [
    ['its own cmd topic', OWN('cmd')],
    ['its own blocks topic (repairs for it alone)', OWN('blocks')],
    ['one bundle block topic', `fleet/v1/bundle/${BUNDLE}/blocks`],
    ['every bundle block topic through +', 'fleet/v1/bundle/+/blocks'],
  ];
  for (const [name, filter] of allowed) {
    it(`allows ${name}`, () => {
      assert.equal(canSubscribe(SELF, filter), true);
      assert.doesNotThrow(() => assertCanSubscribe(SELF, filter));
    });
  }

  const denied: [name: string, deviceId: string, filter: string][] = [
    ['# (everything)', SELF, '#'],
    ['+ as the first level', SELF, '+/v1/dev/dev-a1/cmd'],
    ["every device's cmd through + (THREATS 28)", SELF, 'fleet/v1/dev/+/cmd'],
    ['every device topic through #', SELF, 'fleet/v1/dev/#'],
    ['the whole tree through #', SELF, 'fleet/v1/#'],
    ["another device's cmd (THREATS 28)", SELF, deviceTopic('dev-b2', 'cmd')],
    ["another device's repair blocks (THREATS 28)", SELF, deviceTopic('dev-b2', 'blocks')],
    ['the repair blocks of a device whose id extends ours', SELF, deviceTopic('dev-a10', 'blocks')],
    ['the cmd of a device whose id extends ours', SELF, deviceTopic('dev-a10', 'cmd')],
    ["another device's telemetry (THREATS 28)", SELF, deviceTopic('dev-b2', 'telemetry')],
    ['its own topics through #', SELF, 'fleet/v1/dev/dev-a1/#'],
    ['its own topics through +', SELF, 'fleet/v1/dev/dev-a1/+'],
    ['its own cmd plus anything below it', SELF, `${OWN('cmd')}/#`],
    ['its own cmd with + for the kind level', SELF, 'fleet/v1/+/dev-a1/cmd'],
    ['its own telemetry (devices read only commands)', SELF, OWN('telemetry')],
    ['its own state', SELF, OWN('state')],
    ['bundle topics through #', SELF, 'fleet/v1/bundle/#'],
    ['bundle topics through +/+', SELF, 'fleet/v1/bundle/+/+'],
    ['bundle blocks plus anything below', SELF, 'fleet/v1/bundle/+/blocks/#'],
    ['a bundle id in uppercase', SELF, `fleet/v1/bundle/${BUNDLE.toUpperCase()}/blocks`],
    ['a bundle id one character short', SELF, `fleet/v1/bundle/${BUNDLE.slice(1)}/blocks`],
    ['a bundle id spanning two levels', SELF, 'fleet/v1/bundle/a/b/blocks'],
    ['an empty bundle id level', SELF, 'fleet/v1/bundle//blocks'],
    ['$SYS/# (broker internals)', SELF, '$SYS/#'],
    ['a $share filter on its own cmd', SELF, `$share/g/${OWN('cmd')}`],
    ['a $share filter on bundle blocks', SELF, '$share/g/fleet/v1/bundle/+/blocks'],
    ['an empty level in the root', SELF, 'fleet//v1/dev/dev-a1/cmd'],
    ['a trailing empty level', SELF, `${OWN('cmd')}/`],
    ['a leading "/"', SELF, `/${OWN('cmd')}`],
    ['an invalid filter (# not last) [MQTT-4.7.1-2]', SELF, 'fleet/#/dev-a1/cmd'],
    ['U+0000 [MQTT-4.7.3-2]', SELF, `${OWN('cmd')}\u0000`],
    ['an overlong filter', SELF, `${OWN('cmd')}/${'x'.repeat(MAX_TOPIC_BYTES)}`],
    ['the empty filter [MQTT-4.7.3-1]', SELF, ''],
    ['a device id "+" on the every-device cmd filter', '+', 'fleet/v1/dev/+/cmd'],
    ['a device id "#"', '#', 'fleet/v1/dev/#/cmd'],
    ['an empty device id', '', 'fleet/v1/dev//cmd'],
    ['an invalid device id on bundle blocks', 'a/b', 'fleet/v1/bundle/+/blocks'],
  ];
  for (const [name, deviceId, filter] of denied) {
    it(`denies ${name}`, () => {
      assert.equal(canSubscribe(deviceId, filter), false);
      assert.throws(
        () => assertCanSubscribe(deviceId, filter),
        (e: unknown) => isFleetError(e, 'TOPIC_DENIED'),
      );
    });
  }

  it('assertCanSubscribe names the device and the filter', () => {
    assert.throws(() => assertCanSubscribe(SELF, 'fleet/v1/dev/+/cmd'), {
      message: 'TOPIC_DENIED: device "dev-a1" may not subscribe to "fleet/v1/dev/+/cmd"',
    });
  });
});

// Property tests. Filters and topics are drawn from the levels that matter,
// partly at random and partly as small mutations of the sensitive ones, so that
// allowed and nearly-allowed inputs are common rather than one in a billion.

const deviceIdArb = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/);
const bundleIdArb = fc.stringMatching(/^[0-9a-f]{64}$/);

/** The random ids of one run: a bundle id and another device's id. */
interface Ids {
  bundleId: string;
  otherId: string;
}
type Seeds = (ids: Ids) => string[][];

const idsArb: fc.Arbitrary<Ids> = fc.record({ bundleId: bundleIdArb, otherId: deviceIdArb });

const dev = (id: string, ...rest: string[]) => ['fleet', 'v1', 'dev', id, ...rest];
const bundle = (id: string, ...rest: string[]) => ['fleet', 'v1', 'bundle', id, ...rest];

/** Filters at and around the allowed ones. */
const FILTER_SEEDS: Seeds = ({ bundleId, otherId }) => [
  dev(SELF, 'cmd'),
  dev(SELF, 'blocks'),
  dev(otherId, 'blocks'),
  bundle('+', 'blocks'),
  bundle(bundleId, 'blocks'),
  dev('+', 'cmd'),
  dev(otherId, 'cmd'),
  dev(SELF, 'telemetry'),
  dev(SELF, '#'),
];

/** Topics at and around the ones a device may publish to or receive. */
const TOPIC_SEEDS: Seeds = ({ bundleId, otherId }) => [
  ...UPSTREAM.map((channel) => dev(SELF, ...channel.split('/'))),
  dev(SELF, 'cmd'),
  dev(SELF, 'blocks'),
  dev(otherId, 'blocks'),
  dev(otherId, 'evt'),
  dev(otherId, 'cmd'),
  bundle(bundleId, 'blocks'),
];

const ODD_LEVELS = ['$SYS', '$share', 'g', '', 'blocks', 'req', 'update'];
const levelArb = (ids: Ids, wildcards: boolean) =>
  fc.constantFrom(
    ...['fleet', 'v1', 'dev', 'bundle', SELF, ...OTHERS, ids.otherId, ids.bundleId],
    ...['cmd', 'telemetry', 'evt', 'state', ...ODD_LEVELS],
    ...(wildcards ? ['+', '#'] : []),
  );

type Mutation =
  | { op: 'replace' | 'insert'; at: number; level: string }
  | { op: 'delete' | 'cut-with-hash'; at: number };

function mutate(levels: string[], mutations: Mutation[]): string[] {
  const out = [...levels];
  for (const m of mutations) {
    const at = m.at % (out.length + 1);
    if (m.op === 'replace') out.splice(Math.min(at, out.length - 1), 1, m.level);
    else if (m.op === 'insert') out.splice(at, 0, m.level);
    else if (m.op === 'delete') out.splice(at, 1);
    else out.splice(at, out.length - at, '#');
  }
  return out;
}

/** Up to three random edits; `#` cuts only when wildcards are wanted. */
function mutationsArb(ids: Ids, wildcards: boolean): fc.Arbitrary<Mutation[]> {
  const level = levelArb(ids, wildcards);
  const cuts = wildcards ? (['delete', 'cut-with-hash'] as const) : (['delete'] as const);
  const mutation: fc.Arbitrary<Mutation> = fc.oneof(
    fc.record({ op: fc.constantFrom('replace' as const, 'insert' as const), at: fc.nat(), level }),
    fc.record({ op: fc.constantFrom(...cuts), at: fc.nat() }),
  );
  return fc.array(mutation, { maxLength: 3 });
}

/** Random level lists, and seeds with up to three random edits. */
function levelsArb(ids: Ids, seeds: string[][], wildcards: boolean): fc.Arbitrary<string[]> {
  const random = fc.array(levelArb(ids, wildcards), { minLength: 1, maxLength: 7 });
  const nearMiss = fc
    .tuple(fc.constantFrom(...seeds), mutationsArb(ids, wildcards))
    .map(([seed, mutations]) => mutate(seed, mutations));
  return fc.oneof({ arbitrary: nearMiss, weight: 3 }, { arbitrary: random, weight: 1 });
}

/** A filter (with wildcards) or a topic (without) over one run's ids. */
function pathArb(seeds: Seeds, wildcards: boolean) {
  return idsArb.chain((ids) =>
    levelsArb(ids, seeds(ids), wildcards).map((levels) => ({ ...ids, text: levels.join('/') })),
  );
}

/** The filter's levels with `+` and `#` replaced by concrete levels. */
function fillArb(ids: Ids, filter: string[]): fc.Arbitrary<string[]> {
  const level = levelArb(ids, false);
  return fc
    .tuple(
      fc.array(level, { minLength: filter.length, maxLength: filter.length }),
      fc.array(level, { maxLength: 2 }),
    )
    .map(([fill, tail]) =>
      filter.flatMap((l, i) => (l === '+' ? [fill[i]!] : l === '#' ? tail : [l])),
    );
}

/**
 * A filter and a topic over the same ids. Two topics in three are the filter
 * with its wildcards filled in (one of them then edited), so that matches are common.
 */
const filterAndTopicArb = idsArb.chain((ids) =>
  levelsArb(ids, FILTER_SEEDS(ids), true).chain((filter) => {
    const filled = fillArb(ids, filter);
    const edited = filled.chain((levels) =>
      mutationsArb(ids, false).map((ms) => mutate(levels, ms)),
    );
    const other = levelsArb(ids, TOPIC_SEEDS(ids), false);
    return fc.tuple(
      fc.constant({ ...ids, filter: filter.join('/') }),
      fc.oneof(filled, edited, other).map((levels) => levels.join('/')),
    );
  }),
);

describe('access properties', () => {
  it("an allowed subscription reaches no other device's cmd or blocks and no device's upstream topics", () => {
    let allowed = 0;
    fc.assert(
      fc.property(pathArb(FILTER_SEEDS, true), ({ text: filter, otherId }) => {
        if (!canSubscribe(SELF, filter)) return;
        allowed++;
        for (const id of [SELF, ...OTHERS, otherId]) {
          for (const channel of DEVICE_CHANNELS) {
            if (id === SELF && (channel === 'cmd' || channel === 'blocks')) continue;
            const topic = deviceTopic(id, channel);
            assert.equal(topicMatchesFilter(filter, topic), false, `${filter} reaches ${topic}`);
          }
        }
      }),
      { numRuns: 3000 },
    );
    assert.ok(allowed > 100, `only ${allowed} allowed filters were generated`);
  });

  it('an allowed subscription reaches only its own cmd, its own blocks and bundle block topics, which no device may publish', () => {
    let reached = 0;
    fc.assert(
      fc.property(filterAndTopicArb, ([{ filter, otherId }, topic]) => {
        if (!canSubscribe(SELF, filter) || !topicMatchesFilter(filter, topic)) return;
        reached++;
        // `fleet/v1/bundle/+/blocks` also reaches `fleet/v1/bundle/x/blocks`, outside the
        // tree: harmless, since only the control plane may publish under `bundle/`.
        const levels = topic.split('/');
        const bundleShaped =
          levels.length === 5 &&
          levels.slice(0, 3).join('/') === 'fleet/v1/bundle' &&
          levels[4] === 'blocks';
        assert.ok(
          topic === OWN('cmd') || topic === OWN('blocks') || bundleShaped,
          `${filter} reaches ${topic}`,
        );
        for (const id of [SELF, ...OTHERS, otherId]) {
          assert.equal(
            canPublish(id, topic),
            false,
            `${filter} reaches ${topic}, published by ${id}`,
          );
        }
      }),
      { numRuns: 5000 },
    );
    assert.ok(reached > 60, `only ${reached} allowed matches were generated`);
  });

  it('an allowed publish is to a device topic of its own, never cmd', () => {
    let allowed = 0;
    fc.assert(
      fc.property(pathArb(TOPIC_SEEDS, true), ({ text: topic }) => {
        if (!canPublish(SELF, topic)) return;
        allowed++;
        const parsed = parseTopic(topic);
        assert.ok(parsed?.kind === 'device', topic);
        assert.equal(parsed.deviceId, SELF);
        assert.notEqual(parsed.channel, 'cmd');
      }),
      { numRuns: 3000 },
    );
    assert.ok(allowed > 100, `only ${allowed} allowed topics were generated`);
  });

  it('every device may use its own topics, whatever its valid id', () => {
    fc.assert(
      fc.property(deviceIdArb, bundleIdArb, (id, bundleId) => {
        for (const channel of DEVICE_PUBLISH_CHANNELS) {
          assert.ok(canPublish(id, deviceTopic(id, channel)));
        }
        assert.ok(canSubscribe(id, deviceTopic(id, 'cmd')));
        assert.ok(canSubscribe(id, `fleet/v1/bundle/${bundleId}/blocks`));
        assert.equal(canPublish(id, deviceTopic(id, 'cmd')), false);
      }),
    );
  });
});
