/**
 * The labelled-sample store's contract (core/labelled-samples.ts), run by
 * the filesystem and memory stores: round trips, training reads that are
 * deterministic for a seed, retention by count and by age against an
 * injected clock, and a restart on the same backing data. `backing()` gives
 * fresh backing data; its `store(nowMs, retention)` opens a store on it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type {
  LabelledSample,
  LabelledSampleStore,
  LabelRetention,
} from '../core/labelled-samples.ts';

export interface LabelStoreBacking {
  store(nowMs: () => number, retention?: Partial<LabelRetention>): LabelledSampleStore;
}

export const T0 = Date.parse('2026-11-27T10:00:00Z');
const DAY = 24 * 60 * 60 * 1000;
const MODEL = { name: 'mnist-2nn', version: '1.2.0', release: 3 };

/** Sample `n`: a row of `width` values derived from n, label n % 10, labelled at `labelTs`. */
export function sample(n: number, labelTs = T0 + n, width = 6): LabelledSample {
  const features = new Float32Array(width);
  for (let i = 0; i < width; i++) features[i] = n + i / 8;
  return { features, label: n % 10, model: MODEL, inferenceTs: labelTs - 5, labelTs };
}

const labelsOf = (samples: readonly LabelledSample[]) => samples.map((s) => s.label);

export function runLabelStoreContract(name: string, backing: () => LabelStoreBacking): void {
  describe(`labelled-sample store contract: ${name}`, () => {
    it('stores what it is given and reads it back, oldest first, as copies', async () => {
      const clock = { now: T0 + 100 };
      const store = backing().store(() => clock.now);
      assert.deepEqual(await store.open(), { corrupt: [], truncatedRecords: 0 });
      assert.equal(store.count(), 0);
      const given = [sample(1), sample(2), sample(3)];
      await store.append(given.slice(0, 2));
      await store.append(given.slice(2));
      assert.equal(store.count(), 3);
      const all = await store.all();
      assert.deepEqual(all, given);
      all[0]!.features[0] = 99;
      assert.equal((await store.all())[0]!.features[0], 1, 'a read is a copy');
      const set = await store.read();
      assert.equal(set.count, 3);
      assert.equal(set.featureCount, 6);
      assert.deepEqual(Array.from(set.labels), [1, 2, 3]);
      assert.deepEqual(Array.from(set.features.subarray(6, 12)), Array.from(given[1]!.features));
      assert.equal(store.stats().appended, 3);
    });

    it('a training read of fewer samples is the same for the same seed', async () => {
      const clock = { now: T0 + 1000 };
      const store = backing().store(() => clock.now);
      await store.open();
      await store.append(Array.from({ length: 40 }, (_, n) => sample(n)));
      const a = await store.read({ maxSamples: 10, seed: 7 });
      const b = await store.read({ maxSamples: 10, seed: 7 });
      const c = await store.read({ maxSamples: 10, seed: 8 });
      assert.equal(a.count, 10);
      assert.deepEqual(a, b);
      assert.notDeepEqual(Array.from(a.features), Array.from(c.features));
      // Distinct stored rows, in stored order.
      const firsts = Array.from({ length: 10 }, (_, i) => a.features[i * 6]!);
      assert.deepEqual(
        firsts,
        [...new Set(firsts)].sort((x, y) => x - y),
      );
      firsts.forEach((f, i) => assert.equal(a.labels[i], f % 10));
      assert.equal((await store.read({ maxSamples: 100 })).count, 40);
    });

    it('keeps at most maxSamples, dropping the oldest', async () => {
      const clock = { now: T0 + 1000 };
      const store = backing().store(() => clock.now, { maxSamples: 5 });
      await store.open();
      for (let n = 0; n < 4; n++) await store.append([sample(n)]);
      await store.append([4, 5, 6, 7].map((n) => sample(n)));
      assert.equal(store.count(), 5);
      assert.deepEqual(labelsOf(await store.all()), [3, 4, 5, 6, 7]);
      assert.equal(store.stats().dropped, 3);
      assert.equal(store.stats().stored, 5);
    });

    it('forgets samples older than maxAgeMs by the injected clock, on read and on append', async () => {
      const clock = { now: T0 };
      const store = backing().store(() => clock.now, { maxAgeMs: 7 * DAY });
      await store.open();
      await store.append([sample(1, T0), sample(2, T0 + DAY)]);
      clock.now = T0 + 7 * DAY;
      assert.equal(store.count(), 2, 'exactly maxAgeMs old is kept');
      clock.now = T0 + 7 * DAY + 1;
      assert.equal(store.count(), 1);
      assert.deepEqual(labelsOf(await store.all()), [2]);
      clock.now = T0 + 9 * DAY;
      await store.append([sample(3, clock.now)]);
      assert.deepEqual(labelsOf(await store.all()), [3]);
      assert.equal((await store.read()).count, 1);
      assert.equal(store.stats().dropped, 2);
    });

    it('a restart on the same data finds the samples', async () => {
      const data = backing();
      const clock = { now: T0 + 100 };
      const first = data.store(() => clock.now);
      await first.open();
      await first.append([sample(1), sample(2)]);
      const again = data.store(() => clock.now);
      await again.open();
      assert.deepEqual(await again.all(), [sample(1), sample(2)]);
      await again.append([sample(3)]);
      assert.deepEqual(labelsOf(await again.all()), [1, 2, 3]);
    });

    it('a training read takes one row width: the newest by default', async () => {
      const clock = { now: T0 + 100 };
      const store = backing().store(() => clock.now);
      await store.open();
      await store.append([sample(1, T0, 4), sample(2, T0 + 1, 6), sample(3, T0 + 2, 4)]);
      const newest = await store.read();
      assert.equal(newest.featureCount, 4);
      assert.deepEqual(Array.from(newest.labels), [1, 3]);
      const wide = await store.read({ featureCount: 6 });
      assert.deepEqual(Array.from(wide.labels), [2]);
    });

    it('refuses a sample with a non-integer label and stores nothing of it', async () => {
      const store = backing().store(() => T0 + 100);
      await store.open();
      await assert.rejects(store.append([sample(1), { ...sample(2), label: 1.5 }]));
      assert.equal(store.count(), 0);
    });
  });
}
