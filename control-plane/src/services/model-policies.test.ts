/** Model policies: high risk by default; changes keep the fields not given; audited. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestControlPlane, type TestControlPlane } from '../__fixtures__/control-plane.ts';

let t: TestControlPlane;
before(async () => (t = await startTestControlPlane()));
after(() => t.close());

describe('model policies', () => {
  it('defaults to high risk without auto-promotion', async () => {
    const policy = await t.cp.modelPolicies.policyFor('mnist-2nn');
    assert.deepEqual(
      [policy.riskTier, policy.autoPromote, policy.promotionMargin, policy.explicit],
      ['high', false, 0.005, false],
    );
  });

  it('sets fields, keeps the others, and feeds the round its promotion policy', async () => {
    await t.cp.modelPolicies.set('mnist-2nn', { riskTier: 'low', autoPromote: true }, 'token:a');
    const policy = await t.cp.modelPolicies.set('mnist-2nn', { promotionMargin: 0.01 }, 'token:a');
    assert.deepEqual(
      [policy.riskTier, policy.autoPromote, policy.promotionMargin, policy.updatedBy],
      ['low', true, 0.01, 'token:a'],
    );
    assert.deepEqual(
      await t.cp.flCandidates.promotionPolicy({ model: 'mnist-2nn', baseBundleId: 'x' }),
      { riskTier: 'low', autoPromote: true },
    );
    const audit = (await t.cp.audit.list()).filter((e) => e.action === 'model.policy-set');
    assert.equal(audit.length, 2);
    assert.deepEqual(audit[1]!.before, {
      riskTier: 'low',
      autoPromote: true,
      promotionMargin: 0.005,
    });
  });

  it('refuses a bad tier or margin and changes nothing', async () => {
    await assert.rejects(
      t.cp.modelPolicies.set('mnist-2nn', { riskTier: 'medium' as 'low' }, 'x'),
      /riskTier/,
    );
    await assert.rejects(
      t.cp.modelPolicies.set('mnist-2nn', { promotionMargin: 1 }, 'x'),
      /promotionMargin/,
    );
    assert.equal((await t.cp.modelPolicies.policyFor('mnist-2nn')).promotionMargin, 0.01);
  });
});
