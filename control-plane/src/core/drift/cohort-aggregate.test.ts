import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createSeededRandom, kllNormalizedRankError } from '@fleet/protocol';
import { aggregateFlushes, type FlushSketches } from './cohort-aggregate.ts';
import { cohortsOf } from './cohorts.ts';
import { DEVICE_K, SIGNALS, inference, testProfile, CLEAN } from './__fixtures__/drift-fixtures.ts';
import { sketchTraffic } from './__fixtures__/drift-fixtures.ts';

const profile = testProfile();

/** `devices` flushes of 1,000 clean inferences each, and every value they saw, per signal. */
function fleet(devices: number, tags: (i: number) => Record<string, string>) {
  const flushes: FlushSketches[] = [];
  const values = new Map<string, Array<number | string>>(SIGNALS.map((s) => [s.name, []]));
  for (let d = 0; d < devices; d++) {
    const seed = 100 + d;
    const random = createSeededRandom(seed);
    for (let n = 0; n < 1000; n++) {
      inference(random, CLEAN).forEach((v, i) => values.get(SIGNALS[i]!.name)!.push(v));
    }
    flushes.push({
      deviceId: `dev-${d}`,
      tags: tags(d),
      sampled: 1000,
      inferences: 5000,
      sketches: sketchTraffic(1000, seed, CLEAN), // the same values, sketched
    });
  }
  return { flushes, values };
}

describe('cohort aggregation', () => {
  it('merging the devices equals a sketch of the union, within the KLL bound', () => {
    const { flushes, values } = fleet(12, () => ({}));
    const views = aggregateFlushes(flushes, profile, {
      cohortTags: ['cohort'],
      random: createSeededRandom(5),
    });
    assert.deepEqual([...views.keys()], ['*']);
    const fleetView = views.get('*')!;
    assert.equal(fleetView.flushes, 12);
    assert.equal(fleetView.devices!.size, 12);
    assert.equal(fleetView.sampled, 12_000);
    assert.equal(fleetView.inferences, 60_000);
    const epsilon = kllNormalizedRankError(DEVICE_K, false);
    for (const { name, kind } of SIGNALS) {
      const merged = fleetView.signals.get(name)!;
      const all = values.get(name)!;
      if (kind === 'categorical') {
        assert.ok(merged.kind === 'categorical');
        assert.equal(merged.items.n, all.length);
        for (const item of new Set(all)) {
          const exact = all.filter((v) => v === item).length;
          assert.equal(merged.items.estimate(String(item)), exact, `class ${String(item)}`);
        }
        continue;
      }
      assert.ok(merged.kind === 'numeric');
      const sorted = Float64Array.from(all as number[]).sort();
      assert.equal(merged.kll.n, sorted.length);
      assert.equal(merged.counters.count, sorted.length);
      assert.equal(merged.kll.min, sorted[0]);
      assert.equal(merged.kll.max, sorted[sorted.length - 1]);
      const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length;
      assert.ok(Math.abs(merged.counters.mean - mean) < 1e-9, `${name} mean`);
      for (let r = 0.01; r < 1; r += 0.01) {
        const q = merged.kll.quantile(r);
        const exactRank = sorted.filter((v) => v <= q).length / sorted.length;
        assert.ok(Math.abs(exactRank - r) <= epsilon + 1 / sorted.length, `${name} rank ${r}`);
      }
    }
  });

  it('puts each flush in the fleet and in the cohort of each cohort tag it has', () => {
    const tags: Array<Record<string, string>> = [
      { cohort: 'a' },
      { cohort: 'b', site: 'x' },
      { site: 'x' },
      {},
    ];
    const { flushes } = fleet(4, (i) => tags[i]!);
    const views = aggregateFlushes(flushes, profile, { cohortTags: ['cohort', 'site'] });
    const counts = Object.fromEntries([...views].map(([c, v]) => [c, v.flushes]));
    assert.deepEqual(counts, { '*': 4, 'cohort=a': 1, 'cohort=b': 1, 'site=x': 2 });
    assert.deepEqual(cohortsOf({ cohort: 'a', site: 'x', other: 'y' }, ['cohort']), [
      '*',
      'cohort=a',
    ]);
  });

  it('merges into an existing view without touching the flushes merged', () => {
    const { flushes } = fleet(2, () => ({}));
    const before = flushes[0]!.sketches.get('input.0')!;
    const n = before.kind === 'numeric' ? before.kll.n : -1;
    const views = aggregateFlushes(flushes.slice(0, 1), profile, { cohortTags: [] });
    aggregateFlushes(flushes.slice(1), profile, { cohortTags: [] }, views);
    assert.equal(views.get('*')!.sampled, 2000);
    assert.equal(before.kind === 'numeric' && before.kll.n, n);
  });
});
