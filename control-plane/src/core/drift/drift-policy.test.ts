import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_DRIFT_POLICY, checkDriftPolicy } from './drift-policy.ts';

describe('drift policy', () => {
  it('accepts the defaults and refuses a setting out of range, naming it', () => {
    assert.equal(checkDriftPolicy(DEFAULT_DRIFT_POLICY), DEFAULT_DRIFT_POLICY);
    for (const [field, value] of [
      ['windowMs', 999],
      ['driftedShare', 0],
      ['driftedShare', 1.5],
      ['minSamples', 0],
      ['cohortTags', ['a=b']],
    ] as const) {
      assert.throws(
        () => checkDriftPolicy({ ...DEFAULT_DRIFT_POLICY, [field]: value }),
        new RegExp(`INVALID_REQUEST: drift\\.${field} is `),
      );
    }
  });
});
