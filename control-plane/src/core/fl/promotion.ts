/**
 * Whether a round's evaluated candidate replaces the champion (ARCHITECTURE
 * "Federated learning": promoted automatically for low-risk models when it
 * beats the champion by the margin, otherwise waiting for an approver).
 */
import { controlPlaneError } from '../errors.ts';

export type PromotionDecision = 'promote' | 'await-approval' | 'reject';
export type RiskTier = 'low' | 'high';

export interface PromotionInput {
  /** Held-out accuracy of the candidate, in [0, 1]. */
  candidateAccuracy: number;
  /** Held-out accuracy of the current champion on the same set, in [0, 1]. */
  championAccuracy: number;
  /** Accuracy the candidate must gain, in [0, 1). */
  margin: number;
  riskTier: RiskTier;
  /** The model's policy allows promotion without an approver. */
  autoPromote: boolean;
}

// Float differences such as 0.905 - 0.9 = 0.005000000000000004 (or just under) must meet a 0.005 margin.
const EPSILON = 1e-9;

/**
 * `reject` unless the candidate is strictly better than the champion and by
 * at least `margin`; then `promote` when the risk tier is low and
 * auto-promotion is on, else `await-approval`. Throws INVALID_REQUEST for
 * accuracies outside [0, 1] or a margin outside [0, 1).
 *
 * @example
 *   decidePromotion({ candidateAccuracy: 0.91, championAccuracy: 0.9, margin: 0.005,
 *                     riskTier: 'low', autoPromote: true }).decision // 'promote'
 */
export function decidePromotion(input: PromotionInput): {
  decision: PromotionDecision;
  reason: string;
} {
  const { candidateAccuracy: candidate, championAccuracy: champion, margin } = input;
  for (const [field, v] of [
    ['candidateAccuracy', candidate],
    ['championAccuracy', champion],
  ] as const) {
    if (!Number.isFinite(v) || v < 0 || v > 1) {
      throw controlPlaneError('INVALID_REQUEST', `${field}: ${v} is not an accuracy in [0, 1]`);
    }
  }
  if (!Number.isFinite(margin) || margin < 0 || margin >= 1) {
    throw controlPlaneError('INVALID_REQUEST', `margin: ${margin} is not in [0, 1)`);
  }
  const gain = candidate - champion;
  const facts = `candidate ${pct(candidate)} vs champion ${pct(champion)} (gain ${pct(gain)}, margin ${pct(margin)})`;
  if (!(gain > EPSILON && gain >= margin - EPSILON)) {
    return { decision: 'reject', reason: `${facts}: not better by the margin` };
  }
  if (input.riskTier === 'high') {
    return { decision: 'await-approval', reason: `${facts}: high-risk model needs an approver` };
  }
  if (!input.autoPromote) {
    return { decision: 'await-approval', reason: `${facts}: auto-promotion is off` };
  }
  return { decision: 'promote', reason: `${facts}: low-risk, auto-promoted` };
}

function pct(x: number): string {
  return `${(x * 100).toFixed(2)} %`;
}
