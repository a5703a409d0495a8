import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createCategoricalSignal, updateSignal } from '@fleet/protocol';
import { emptyAggregate, type CohortAggregate } from './cohort-aggregate.ts';
import {
  categoryCounts,
  decideAlerts,
  scoreCohort,
  type CohortScore,
  type ScorePolicy,
} from './cohort-score.ts';
import { DEFAULT_DRIFT_POLICY } from './drift-policy.ts';
import { CLEAN, SHIFTED, sketchTraffic, testProfile } from './__fixtures__/drift-fixtures.ts';

const profile = testProfile();
const policy: ScorePolicy = DEFAULT_DRIFT_POLICY;

/** A cohort's view of `count` inferences: clean, except the signals in `shifted`. */
function view(count: number, shifted: readonly string[] | 'all' = []): CohortAggregate {
  const clean = sketchTraffic(count, 11, CLEAN);
  const moved = sketchTraffic(count, 12, SHIFTED);
  const out = emptyAggregate('cohort=x', profile);
  out.sampled = count;
  out.flushes = 1;
  for (const name of out.signals.keys()) {
    const isShifted = shifted === 'all' || shifted.includes(name);
    out.signals.set(name, (isShifted ? moved : clean).get(name)!);
  }
  return out;
}

describe('cohort scoring', () => {
  it('calls clean traffic clean, with every signal scored below its thresholds', () => {
    const score = scoreCohort(view(2000), profile, policy);
    assert.equal(score.verdict, 'clean');
    assert.deepEqual(score.driftedSignals, []);
    assert.equal(score.signals.length, 8);
    for (const s of score.signals) {
      assert.equal(s.insufficient, false, s.name);
      assert.ok(s.distances.psi! < 0.2 && s.distances.hellinger! < 0.16, s.name);
    }
    assert.ok(score.signals[0]!.distances.ks! < 0.1);
  });

  it('calls shifted traffic drifted and names the signals that moved', () => {
    const score = scoreCohort(view(2000, 'all'), profile, policy);
    assert.equal(score.verdict, 'drifted');
    for (const name of ['input.0', 'input.5', 'confidence', 'predicted_class']) {
      assert.ok(score.driftedSignals.includes(name), name);
    }
    const input = score.signals.find((s) => s.name === 'input.0')!;
    assert.ok(input.distances.ks! > 0.3, `a 1σ shift: KS ${input.distances.ks}`);
    assert.ok(input.tripped.includes('ks'));
    assert.equal(score.driftedShare, score.driftedSignals.length / 8);
  });

  it('needs the drifted share: one moved signal of eight is not a drifted cohort, two are', () => {
    const one = scoreCohort(view(2000, ['input.3']), profile, policy);
    assert.deepEqual(one.driftedSignals, ['input.3']);
    assert.equal(one.verdict, 'clean');
    const two = scoreCohort(view(2000, ['input.3', 'confidence']), profile, policy);
    assert.equal(two.driftedShare, 0.25);
    assert.equal(two.verdict, 'drifted');
    const strict = scoreCohort(view(2000, ['input.3', 'confidence']), profile, {
      ...policy,
      driftedShare: 0.5,
    });
    assert.equal(strict.verdict, 'clean');
  });

  it('gives no verdict below the minimum samples, however far the traffic moved', () => {
    const score = scoreCohort(view(499, 'all'), profile, policy);
    assert.equal(score.verdict, 'insufficient');
    assert.equal(score.driftedShare, 0);
    assert.ok(score.signals.every((s) => s.insufficient && !s.drifted));
  });

  it('counts categories at their lower bounds, so a frequent-items estimate never inflates a class', () => {
    const sketch = createCategoricalSignal({ maxMapSize: 8 });
    for (let i = 0; i < 1000; i++) updateSignal(sketch, i % 3 === 0 ? 'a' : String(i));
    updateSignal(sketch, null);
    const counts = categoryCounts(sketch);
    assert.equal(counts.n, 1000);
    assert.ok(counts.counts.get('a')! <= 334);
    assert.ok([...counts.counts.values()].reduce((a, b) => a + b, 0) <= 1000);
  });
});

describe('alert decisions', () => {
  const score = (cohort: string, verdict: CohortScore['verdict']) =>
    ({ cohort, verdict }) as CohortScore;

  it('opens an alert for a cohort that became drifted, once', () => {
    const first = decideAlerts([score('a', 'drifted'), score('b', 'clean')], new Set());
    assert.deepEqual(
      first.open.map((s) => s.cohort),
      ['a'],
    );
    assert.deepEqual(first.clear, []);
    const again = decideAlerts([score('a', 'drifted')], new Set(['a']));
    assert.deepEqual(again, { open: [], clear: [] });
  });

  it('clears it on a clean window, not on an insufficient one', () => {
    assert.deepEqual(decideAlerts([score('a', 'insufficient')], new Set(['a'])), {
      open: [],
      clear: [],
    });
    const cleared = decideAlerts([score('a', 'clean')], new Set(['a']));
    assert.deepEqual(
      cleared.clear.map((s) => s.cohort),
      ['a'],
    );
  });
});
