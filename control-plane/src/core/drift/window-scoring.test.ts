import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createSeededRandom } from '@fleet/protocol';
import { DEFAULT_DRIFT_POLICY } from './drift-policy.ts';
import {
  decodeFlush,
  mergeCumulative,
  scoreWindowFlushes,
  type CumulativeRecord,
  type FlushRecord,
  type ScoringOptions,
} from './window-scoring.ts';
import { CLEAN, SHIFTED, flushRecord, testProfile } from './__fixtures__/drift-fixtures.ts';

const profile = testProfile();
const options: ScoringOptions = {
  ...DEFAULT_DRIFT_POLICY,
  random: createSeededRandom(3),
};
let ids = 0;
const newId = () => `alert-${++ids}`;

/** One window: cohort a's three devices see `a`, cohort b's three see clean traffic. */
function window(seed: number, a = SHIFTED): FlushRecord[] {
  return [0, 1, 2].flatMap((d) => [
    flushRecord(`a-${d}`, { cohort: 'a' }, 400, seed + d, a),
    flushRecord(`b-${d}`, { cohort: 'b' }, 400, seed + 10 + d, CLEAN),
  ]);
}

describe('window scoring', () => {
  it('flags the shifted cohort, not the clean one, and names the moved signals', () => {
    const decision = scoreWindowFlushes(window(100), new Set(), profile, options, newId);
    const byCohort = new Map(decision.windows.map((w) => [w.cohort, w]));
    assert.deepEqual([...byCohort.keys()].sort(), ['*', 'cohort=a', 'cohort=b']);
    assert.equal(byCohort.get('cohort=a')!.verdict, 'drifted');
    assert.equal(byCohort.get('cohort=b')!.verdict, 'clean');
    assert.equal(byCohort.get('cohort=a')!.devices, 3);
    assert.equal(byCohort.get('*')!.sampled, 2400);
    const opened = decision.open.find((a) => a.cohort === 'cohort=a')!;
    assert.ok(opened.signals.some((s) => s.name === 'input.0' && s.tripped.includes('ks')));
    assert.ok(opened.signals.every((s) => Object.keys(s.distances).length > 0));
    assert.ok(!decision.open.some((a) => a.cohort === 'cohort=b'));
  });

  it('raises an alert once while the cohort stays drifted, and clears it when it is clean', () => {
    const open = new Set<string>();
    const history: string[] = [];
    const windows = [window(200), window(300), window(400), window(500, CLEAN)];
    for (const flushes of windows) {
      const decision = scoreWindowFlushes(flushes, open, profile, options, newId);
      for (const a of decision.open.filter((x) => x.cohort === 'cohort=a')) {
        open.add(a.cohort);
        history.push('open');
      }
      for (const c of decision.clear.filter((x) => x.cohort === 'cohort=a')) {
        open.delete(c.cohort);
        history.push('clear');
      }
    }
    assert.deepEqual(history, ['open', 'clear']);
  });

  it('gives no verdict to a window with too few samples (alerts unchanged)', () => {
    const few = [flushRecord('a-0', { cohort: 'a' }, 100, 9, SHIFTED)];
    const decision = scoreWindowFlushes(few, new Set(['cohort=a']), profile, options, newId);
    assert.ok(decision.windows.every((w) => w.verdict === 'insufficient'));
    assert.deepEqual(decision.open, []);
    assert.deepEqual(decision.clear, []);
  });
});

describe('cumulative view', () => {
  it('merged flush by flush (late ones included) equals merged at once', () => {
    const all = [...window(600), ...window(700, CLEAN)];
    let current: CumulativeRecord[] = [];
    for (const flush of all) {
      const updated = mergeCumulative(current, [flush], profile, options);
      current = [...current.filter((c) => !updated.some((u) => u.cohort === c.cohort)), ...updated];
    }
    const atOnce = mergeCumulative([], all, profile, options);
    const key = (rows: CumulativeRecord[]) =>
      rows
        .map((r) => `${r.cohort}:${r.flushes}:${r.sampled}:${r.inferences}`)
        .sort()
        .join(' ');
    assert.equal(key(current), key(atOnce));
    const fleet = current.find((c) => c.cohort === '*')!;
    assert.equal(fleet.flushes, 12);
    const merged = decodeFlush({ ...all[0]!, signals: fleet.sketches });
    const input = merged.sketches.get('input.0')!;
    assert.equal(input.kind === 'numeric' && input.kll.n, 12 * 400);
    // half of cohort a's traffic was shifted: still drifted over everything it sent
    assert.equal(current.find((c) => c.cohort === 'cohort=a')!.verdict, 'drifted');
  });

  it('returns only the cohorts the new flushes touched', () => {
    const first = mergeCumulative([], window(800), profile, options);
    const onlyB = mergeCumulative(
      first,
      [flushRecord('b-9', { cohort: 'b' }, 50, 1, CLEAN)],
      profile,
      options,
    );
    assert.deepEqual(onlyB.map((r) => r.cohort).sort(), ['*', 'cohort=b']);
    assert.equal(onlyB.find((r) => r.cohort === 'cohort=b')!.flushes, 4);
  });
});
