import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isFleetError } from '@fleet/protocol';
import {
  buildPolicy,
  checkPolicy,
  checkWaves,
  defaultPolicy,
  parseDuration,
  parseRatio,
  parseWaves,
} from './rollout-spec.ts';
import type { WaveSize } from './rollout-types.ts';

function refused(run: () => unknown, pattern: RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(isFleetError(error, 'INVALID_REQUEST'), String(error));
    assert.match(error.message, pattern);
    return true;
  });
}

describe('parseWaves', () => {
  it('reads percentages, counts and all (as 100%)', () => {
    assert.deepEqual(parseWaves('1%,10%,50%,100%'), [
      { percent: 1 },
      { percent: 10 },
      { percent: 50 },
      { percent: 100 },
    ]);
    assert.deepEqual(parseWaves('5, 20 ,all'), [{ count: 5 }, { count: 20 }, { percent: 100 }]);
    assert.deepEqual(parseWaves('0.5%,all'), [{ percent: 0.5 }, { percent: 100 }]);
    assert.deepEqual(parseWaves('all'), [{ percent: 100 }]);
  });

  it('lets counts lead percentages, never follow them', () => {
    assert.deepEqual(parseWaves('5,10%,all'), [{ count: 5 }, { percent: 10 }, { percent: 100 }]);
    refused(
      () => parseWaves('10%,50,all'),
      /waves: wave 2: a device count may not follow a percentage/,
    );
  });

  it('refuses waves that do not grow', () => {
    refused(() => parseWaves('10%,10%,100%'), /wave 2: 10% does not grow past 10%/);
    refused(() => parseWaves('20,5,all'), /wave 2: 5 does not grow past 20/);
    refused(() => parseWaves('50%,all,all'), /wave 3: 100% does not grow past 100%/);
  });

  it('refuses sizes out of range and bad terms', () => {
    refused(() => parseWaves('0%,100%'), /wave 1: 0% is not in \(0, 100\]/);
    refused(() => parseWaves('150%'), /wave 1: 150% is not in \(0, 100\]/);
    refused(() => parseWaves('0,all'), /wave 1: 0 is not a whole number >= 1/);
    refused(
      () => parseWaves('1.5,all'),
      /'1.5' is not a percentage \(10%\), a device count \(5\) or all/,
    );
    refused(() => parseWaves(''), /'' is not a percentage/);
    refused(() => parseWaves('10%,,all'), /'' is not a percentage/);
  });

  it('requires the last wave to cover the whole target', () => {
    refused(() => parseWaves('5,20'), /the last wave must be 100% or all/);
    refused(() => parseWaves('1%,50%'), /the last wave must be 100% or all/);
  });

  it('caps the number of waves at 20', () => {
    const twenty = Array.from({ length: 19 }, (_, i) => `${i + 1}%`).concat('all');
    assert.equal(parseWaves(twenty.join(',')).length, 20);
    refused(() => parseWaves(['1', ...twenty].join(',')), /at most 20 waves/);
  });

  it('checks structured waves by the same rules, naming the field it is given', () => {
    assert.deepEqual(checkWaves([{ count: 3 }, { percent: 100 }]), [
      { count: 3 },
      { percent: 100 },
    ]);
    refused(() => checkWaves([]), /^INVALID_REQUEST: waves: at least one wave/);
    refused(
      () => checkWaves([{ size: 3 } as unknown as WaveSize]),
      /wave 1: expected \{ percent \}/,
    );
    refused(() => checkWaves([{ percent: Number.NaN }], 'plan'), /^INVALID_REQUEST: plan: wave 1/);
  });
});

describe('parseDuration', () => {
  it('reads each unit and combinations, largest first', () => {
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('90s'), 90_000);
    assert.equal(parseDuration('10m'), 600_000);
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('2d'), 172_800_000);
    assert.equal(parseDuration('1m30s250ms'), 90_250);
    assert.equal(parseDuration(' 0s '), 0);
  });

  it('refuses bare numbers, unknown units, repeated or misordered units', () => {
    refused(() => parseDuration('600', 'bake'), /^INVALID_REQUEST: bake: '600' is not a duration/);
    refused(() => parseDuration('10x'), /'10x' is not a duration/);
    refused(() => parseDuration('1h 30m'), /is not a duration/);
    refused(() => parseDuration('-5s'), /is not a duration/);
    refused(() => parseDuration('30m1h'), /units must go largest first, each once/);
    refused(() => parseDuration('1m1m'), /units must go largest first, each once/);
    refused(() => parseDuration('1.5h'), /is not a duration/);
  });

  it('refuses durations longer than 30 days', () => {
    assert.equal(parseDuration('30d'), 2_592_000_000);
    refused(() => parseDuration('30d1ms'), /longer than 30 days/);
    refused(() => parseDuration('99999999999999999999d'), /is not a whole number of ms/);
  });
});

describe('parseRatio', () => {
  it('reads percentages and fractions', () => {
    assert.equal(parseRatio('2%'), 0.02);
    assert.equal(parseRatio('0.02'), 0.02);
    assert.equal(parseRatio('100%'), 1);
    assert.equal(parseRatio('1'), 1);
    assert.equal(parseRatio('0'), 0);
  });

  it('refuses a bare number above 1, shares above 100% and junk', () => {
    refused(
      () => parseRatio('2', 'maxFailure'),
      /^INVALID_REQUEST: maxFailure: 2 is not between 0 and 1/,
    );
    refused(() => parseRatio('150%'), /150% is not between 0 and 1/);
    refused(() => parseRatio('-1%'), /'-1%' is not a ratio/);
    refused(() => parseRatio('two'), /'two' is not a ratio/);
  });
});

describe('buildPolicy', () => {
  it('is the default policy when nothing is given, and a copy of it', () => {
    const policy = buildPolicy({});
    assert.deepEqual(policy, defaultPolicy);
    policy.waves.push({ count: 1 });
    assert.equal(defaultPolicy.waves.length, 4);
  });

  it('reads the issue example from CLI text', () => {
    const policy = buildPolicy({
      waves: '1%,10%,50%,100%',
      bake: '10m',
      maxFailure: '2%',
      deviceTimeout: '15m',
      retries: '2',
    });
    assert.deepEqual(policy, {
      ...defaultPolicy,
      waves: [{ percent: 1 }, { percent: 10 }, { percent: 50 }, { percent: 100 }],
      bakeMs: 600_000,
      maxFailureRatio: 0.02,
      deviceTimeoutMs: 900_000,
      retries: 2,
    });
  });

  it('reads JSON numbers as ms and ratios, and every field', () => {
    const policy = buildPolicy({
      waves: [{ count: 2 }, { percent: 100 }],
      bake: 0,
      successRatio: 0.9,
      maxFailure: 0.1,
      deviceTimeout: 60_000,
      retries: 0,
      retryBackoff: '5s',
      probation: '30s',
      maxErrorRate: '1%',
      maxLatencyP95: '250ms',
      minConfidence: 0.6,
      driftSampleRate: '25%',
    });
    assert.deepEqual(policy, {
      waves: [{ count: 2 }, { percent: 100 }],
      bakeMs: 0,
      successRatio: 0.9,
      maxFailureRatio: 0.1,
      deviceTimeoutMs: 60_000,
      retries: 0,
      retryBackoffMs: 5_000,
      probationMs: 30_000,
      gates: { maxErrorRate: 0.01, maxLatencyP95Ms: 250, minMeanConfidence: 0.6 },
      driftSampleRate: 0.25,
    });
    assert.equal('driftSampleRate' in buildPolicy({}), false, "absent: the bundle's own rate");
  });

  it('names the field of every bad value', () => {
    refused(() => buildPolicy({ bake: '10' }), /^INVALID_REQUEST: bake: /);
    refused(() => buildPolicy({ deviceTimeout: -1 }), /^INVALID_REQUEST: deviceTimeout: -1 is not/);
    refused(
      () => buildPolicy({ retries: '2.5' }),
      /^INVALID_REQUEST: retries: 2.5 is not a whole number from 0 to 10/,
    );
    refused(() => buildPolicy({ retries: 11 }), /^INVALID_REQUEST: retries: 11/);
    refused(() => buildPolicy({ maxErrorRate: '5' }), /^INVALID_REQUEST: maxErrorRate: /);
    refused(() => buildPolicy({ minConfidence: 1.5 }), /^INVALID_REQUEST: minConfidence: /);
    refused(() => buildPolicy({ driftSampleRate: '150%' }), /^INVALID_REQUEST: driftSampleRate: /);
    refused(
      () => buildPolicy({ driftSampleRate: 0 }),
      /^INVALID_REQUEST: driftSampleRate: must be above 0/,
    );
    refused(
      () => buildPolicy({ maxLatencyP95: '0ms' }),
      /^INVALID_REQUEST: maxLatencyP95: must be above 0/,
    );
    refused(() => buildPolicy({ waves: '5,20' }), /^INVALID_REQUEST: waves: /);
    refused(() => buildPolicy({ bake: true as unknown as number }), /^INVALID_REQUEST: bake: true/);
  });

  it('refuses unknown fields (a typo must not fall back to a default)', () => {
    refused(
      () => buildPolicy({ bakeTime: '1m' } as never),
      /^INVALID_REQUEST: bakeTime: unknown policy field/,
    );
  });

  it('refuses a success share that no wave needs, or failures that never abort', () => {
    refused(() => buildPolicy({ successRatio: 0 }), /successRatio: must be above 0/);
    refused(
      () => buildPolicy({ successRatio: '0%', maxFailure: '100%' }),
      /successRatio: must be above 0/,
    );
    refused(
      () => buildPolicy({ successRatio: 0.01, maxFailure: 1 }),
      /maxFailure: must be below 100%/,
    );
  });

  it('refuses success + max failure above 100% (a wave could end stuck), allows exactly 100%', () => {
    refused(
      () => buildPolicy({ successRatio: '99%', maxFailure: '2%' }),
      /successRatio: success 99.0% \+ max failure 2.0% is above 100%/,
    );
    assert.equal(buildPolicy({ successRatio: '98%', maxFailure: '2%' }).successRatio, 0.98);
    assert.equal(buildPolicy({ successRatio: 0.7, maxFailure: 0.3 }).maxFailureRatio, 0.3);
  });

  it('refuses a device timeout no longer than probation', () => {
    refused(
      () => buildPolicy({ deviceTimeout: '5m', probation: '5m' }),
      /deviceTimeout: 300000 ms must be longer than probation \(300000 ms\)/,
    );
  });
});

describe('checkPolicy', () => {
  it('refuses a stored policy with a value no input could have produced', () => {
    assert.deepEqual(checkPolicy(structuredClone(defaultPolicy)), defaultPolicy);
    refused(
      () => checkPolicy({ ...defaultPolicy, bakeMs: Number.NaN }),
      /^INVALID_REQUEST: bake: NaN/,
    );
    refused(() => checkPolicy({ ...defaultPolicy, retries: -1 }), /^INVALID_REQUEST: retries: -1/);
    refused(
      () => checkPolicy({ ...defaultPolicy, gates: { ...defaultPolicy.gates, maxErrorRate: 2 } }),
      /^INVALID_REQUEST: maxErrorRate: 2/,
    );
  });
});
