import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isFleetError } from '../errors.ts';
import { topicMatchesFilter } from './match.ts';
import {
  allDevicesFilter,
  bundleBlocksTopic,
  controlPlaneSubscriptions,
  DEVICE_CHANNELS,
  deviceTopic,
  isValidBundleId,
  isValidDeviceId,
  parseTopic,
  sharedSubscription,
  TOPIC_ROOT,
  type DeviceChannel,
} from './topics.ts';

const BUNDLE_ID = 'ab'.repeat(32);
const isMalformed = (e: unknown) => isFleetError(e, 'MALFORMED');

describe('topic builders', () => {
  it('roots the tree at fleet/v1', () => assert.equal(TOPIC_ROOT, 'fleet/v1'));

  it('builds each device channel', () => {
    assert.deepEqual(
      DEVICE_CHANNELS.map((channel) => deviceTopic('pump-17', channel)),
      [
        'fleet/v1/dev/pump-17/cmd',
        'fleet/v1/dev/pump-17/evt',
        'fleet/v1/dev/pump-17/state',
        'fleet/v1/dev/pump-17/telemetry',
        'fleet/v1/dev/pump-17/update',
        'fleet/v1/dev/pump-17/blocks/req',
        'fleet/v1/dev/pump-17/blocks',
      ],
    );
  });

  it('builds a bundle block topic', () => {
    assert.equal(bundleBlocksTopic(BUNDLE_ID), `fleet/v1/bundle/${BUNDLE_ID}/blocks`);
  });

  for (const id of ['', '+', '#', 'a/b', '$SYS', '-a', 'a'.repeat(65)]) {
    it(`deviceTopic refuses the device id ${JSON.stringify(id)}`, () => {
      assert.throws(() => deviceTopic(id, 'evt'), isMalformed);
    });
  }

  it('deviceTopic refuses an unknown channel from untyped callers', () => {
    assert.throws(() => deviceTopic('a', 'logs' as DeviceChannel), isMalformed);
    assert.throws(() => deviceTopic('a', '#' as DeviceChannel), isMalformed);
  });

  for (const id of ['', '+', BUNDLE_ID.toUpperCase(), BUNDLE_ID.slice(1), `${BUNDLE_ID}0`]) {
    it(`bundleBlocksTopic refuses the bundle id ${JSON.stringify(id)}`, () => {
      assert.throws(() => bundleBlocksTopic(id), isMalformed);
    });
  }
});

describe('isValidDeviceId', () => {
  for (const id of ['a', '7', 'A-1_b', 'x'.repeat(64)]) {
    it(`accepts ${JSON.stringify(id)}`, () => assert.equal(isValidDeviceId(id), true));
  }
  const invalid: [string, string][] = [
    ['the empty id', ''],
    ['65 characters', 'x'.repeat(65)],
    ['a leading "-"', '-a'],
    ['a leading "_"', '_a'],
    ['a level separator', 'a/b'],
    ['the + wildcard', '+'],
    ['the # wildcard', '#'],
    ['a + inside', 'a+b'],
    ['a leading $', '$SYS'],
    ['a space', 'a b'],
    ['a non-ASCII letter', 'é'],
    ['U+0000', 'a\u0000'],
  ];
  for (const [name, id] of invalid) {
    it(`refuses ${name}`, () => assert.equal(isValidDeviceId(id), false));
  }
});

describe('isValidBundleId', () => {
  it('accepts 64 lowercase hex characters', () => assert.equal(isValidBundleId(BUNDLE_ID), true));
  for (const [name, id] of [
    ['uppercase hex', BUNDLE_ID.toUpperCase()],
    ['63 characters', BUNDLE_ID.slice(1)],
    ['65 characters', `${BUNDLE_ID}0`],
    ['a non-hex letter', `g${BUNDLE_ID.slice(1)}`],
    ['the + wildcard', '+'],
  ] as const) {
    it(`refuses ${name}`, () => assert.equal(isValidBundleId(id), false));
  }
});

describe('parseTopic', () => {
  it('reads every device channel', () => {
    for (const channel of DEVICE_CHANNELS) {
      assert.deepEqual(parseTopic(`fleet/v1/dev/d1/${channel}`), {
        kind: 'device',
        deviceId: 'd1',
        channel,
      });
    }
  });

  it('reads a bundle block topic', () => {
    assert.deepEqual(parseTopic(`fleet/v1/bundle/${BUNDLE_ID}/blocks`), {
      kind: 'bundle-blocks',
      bundleId: BUNDLE_ID,
    });
  });

  const outside: [string, string][] = [
    ['the empty string', ''],
    ['the root alone', 'fleet/v1'],
    ['the root with a trailing "/"', 'fleet/v1/'],
    ['a device without a channel', 'fleet/v1/dev/d1'],
    ['an unknown channel', 'fleet/v1/dev/d1/logs'],
    ['blocks with an extra level', 'fleet/v1/dev/d1/blocks/x'],
    ['an extra level', 'fleet/v1/dev/d1/evt/x'],
    ['a trailing empty level', 'fleet/v1/dev/d1/evt/'],
    ['an empty device id', 'fleet/v1/dev//evt'],
    ['a + device id (a filter)', 'fleet/v1/dev/+/evt'],
    ['a # channel (a filter)', 'fleet/v1/dev/d1/#'],
    ['a leading "/"', '/fleet/v1/dev/d1/evt'],
    ['an empty level in the root', 'fleet//v1/dev/d1/evt'],
    ['another version', 'fleet/v2/dev/d1/evt'],
    ['another case', 'Fleet/v1/dev/d1/evt'],
    ['a shared-subscription form', '$share/g/fleet/v1/dev/d1/evt'],
    ['a bundle with a + id (a filter)', 'fleet/v1/bundle/+/blocks'],
    ['a bundle with an uppercase id', `fleet/v1/bundle/${BUNDLE_ID.toUpperCase()}/blocks`],
    ['a bundle with an extra level', `fleet/v1/bundle/${BUNDLE_ID}/blocks/x`],
    ['a bundle without blocks', `fleet/v1/bundle/${BUNDLE_ID}`],
  ];
  for (const [name, topic] of outside) {
    it(`returns null for ${name}: ${JSON.stringify(topic)}`, () => {
      assert.equal(parseTopic(topic), null);
    });
  }
});

describe('sharedSubscription', () => {
  it('builds $share/{group}/{filter}', () => {
    assert.equal(
      sharedSubscription('control-plane', 'fleet/v1/dev/+/evt'),
      '$share/control-plane/fleet/v1/dev/+/evt',
    );
  });

  const badGroups: [string, string][] = [
    ['an empty group [MQTT-4.8.2-1]', ''],
    ['a group with "/" [MQTT-4.8.2-2]', 'a/b'],
    ['a group with "+" [MQTT-4.8.2-2]', 'a+'],
    ['a group with "#" [MQTT-4.8.2-2]', '#'],
    ['a group with U+0000', 'a\u0000'],
  ];
  for (const [name, group] of badGroups) {
    it(`refuses ${name}`, () => {
      assert.throws(() => sharedSubscription(group, 'fleet/v1/dev/+/evt'), isMalformed);
    });
  }

  it('refuses an invalid filter', () => {
    assert.throws(() => sharedSubscription('g', 'a/#/b'), isMalformed);
    assert.throws(() => sharedSubscription('g', ''), isMalformed);
  });

  it('refuses a filter that is already shared', () => {
    assert.throws(() => sharedSubscription('g', '$share/h/a'), isMalformed);
  });

  it('refuses a result over the topic byte cap', () => {
    assert.throws(() => sharedSubscription('g'.repeat(250), 'fleet/v1/dev/+/evt'), isMalformed);
  });
});

describe('control-plane subscriptions', () => {
  it('builds fleet/v1/dev/+/{channel}', () => {
    assert.equal(allDevicesFilter('telemetry'), 'fleet/v1/dev/+/telemetry');
    assert.throws(() => allDevicesFilter('x' as DeviceChannel), isMalformed);
  });

  it('lists every device-to-control-plane channel, all devices', () => {
    assert.deepEqual(controlPlaneSubscriptions(), [
      'fleet/v1/dev/+/evt',
      'fleet/v1/dev/+/state',
      'fleet/v1/dev/+/telemetry',
      'fleet/v1/dev/+/update',
      'fleet/v1/dev/+/blocks/req',
    ]);
  });

  it("reaches every device's upstream topics and no command or block topic", () => {
    const filters = controlPlaneSubscriptions();
    const reached = (topic: string) => filters.some((f) => topicMatchesFilter(f, topic));
    for (const id of ['d1', 'pump-17']) {
      for (const channel of DEVICE_CHANNELS) {
        const downstream = channel === 'cmd' || channel === 'blocks';
        assert.equal(reached(deviceTopic(id, channel)), !downstream, `${id} ${channel}`);
      }
    }
    assert.equal(reached(bundleBlocksTopic(BUNDLE_ID)), false);
  });

  it('wraps every filter in $share when given a group', () => {
    assert.deepEqual(
      controlPlaneSubscriptions({ shareGroup: 'cp' }),
      controlPlaneSubscriptions().map((f) => `$share/cp/${f}`),
    );
    assert.throws(() => controlPlaneSubscriptions({ shareGroup: 'a/b' }), isMalformed);
  });
});

const deviceIdArb = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/);
const bundleIdArb = fc.stringMatching(/^[0-9a-f]{64}$/);

describe('topic properties', () => {
  it('device topics round-trip through parseTopic', () => {
    fc.assert(
      fc.property(deviceIdArb, fc.constantFrom(...DEVICE_CHANNELS), (deviceId, channel) => {
        assert.deepEqual(parseTopic(deviceTopic(deviceId, channel)), {
          kind: 'device',
          deviceId,
          channel,
        });
      }),
    );
  });

  it('bundle block topics round-trip through parseTopic', () => {
    fc.assert(
      fc.property(bundleIdArb, (bundleId) => {
        assert.deepEqual(parseTopic(bundleBlocksTopic(bundleId)), {
          kind: 'bundle-blocks',
          bundleId,
        });
      }),
    );
  });

  it('builders refuse every id their validators refuse, and only those', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 70 }), (id) => {
        const deviceOk = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(id);
        assert.equal(isValidDeviceId(id), deviceOk);
        if (deviceOk) assert.equal(typeof deviceTopic(id, 'evt'), 'string');
        else assert.throws(() => deviceTopic(id, 'evt'), isMalformed);
        if (!/^[0-9a-f]{64}$/.test(id)) assert.throws(() => bundleBlocksTopic(id), isMalformed);
      }),
    );
  });
});
