import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isFleetError } from '@fleet/protocol';
import { decidePromotion, type PromotionDecision, type RiskTier } from './promotion.ts';

describe('decidePromotion', () => {
  const table: [number, number, number, RiskTier, boolean, PromotionDecision][] = [
    // candidate, champion, margin, tier, auto, decision
    [0.91, 0.9, 0.005, 'low', true, 'promote'],
    [0.905, 0.9, 0.005, 'low', true, 'promote'], // exactly the margin (float 0.00500...04)
    [0.904, 0.9, 0.005, 'low', true, 'reject'], // better, but not by the margin
    [0.9, 0.9, 0, 'low', true, 'reject'], // equal is not better
    [0.9000001, 0.9, 0, 'low', true, 'promote'],
    [0.85, 0.9, 0.005, 'low', true, 'reject'],
    [0.95, 0.9, 0.005, 'high', true, 'await-approval'],
    [0.95, 0.9, 0.005, 'low', false, 'await-approval'],
    [0.95, 0.9, 0.005, 'high', false, 'await-approval'],
    [0.85, 0.9, 0.005, 'high', false, 'reject'], // a worse candidate is not even offered
  ];
  for (const [
    candidateAccuracy,
    championAccuracy,
    margin,
    riskTier,
    autoPromote,
    expected,
  ] of table) {
    it(`${candidateAccuracy} vs ${championAccuracy}, margin ${margin}, ${riskTier}, auto ${autoPromote}: ${expected}`, () => {
      const r = decidePromotion({
        candidateAccuracy,
        championAccuracy,
        margin,
        riskTier,
        autoPromote,
      });
      assert.equal(r.decision, expected);
      assert.match(r.reason, /candidate .* vs champion/);
    });
  }

  it('refuses accuracies outside [0, 1] and a bad margin', () => {
    const base = {
      candidateAccuracy: 0.9,
      championAccuracy: 0.8,
      margin: 0,
      riskTier: 'low' as const,
      autoPromote: true,
    };
    for (const bad of [
      { candidateAccuracy: 1.2 },
      { championAccuracy: NaN },
      { margin: -0.1 },
      { margin: 1 },
    ]) {
      assert.throws(
        () => decidePromotion({ ...base, ...bad }),
        (e: unknown) => isFleetError(e, 'INVALID_REQUEST'),
      );
    }
  });
});
