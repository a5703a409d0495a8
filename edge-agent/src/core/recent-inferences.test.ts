/** The recent-inference ring: row ids, the count and age bounds, predictions as the service makes them. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BundleModelRef } from '@fleet/protocol';
import { createRecentInferences } from './recent-inferences.ts';

const T0 = Date.parse('2026-11-27T10:00:00Z');
const ref: BundleModelRef = { name: 'm', version: '1.0.0', release: 1, bundleId: 'a'.repeat(64) };
/** `batch` rows of width 2; outputs of 3 classes with the top class r % 3 (ties go to the first). */
function request(batch: number) {
  const inputs = Float32Array.from({ length: batch * 2 }, (_, i) => i);
  const outputs = new Float32Array(batch * 3);
  for (let r = 0; r < batch; r++) outputs[r * 3 + (r % 3)] = 1;
  return { inputs, outputs };
}

test('rows are found by `${id}:${row}`, with their copied input, prediction and classes', () => {
  const ring = createRecentInferences({ maxRows: 10, maxAgeMs: 1000 });
  const { inputs, outputs } = request(3);
  ring.record('req', ref, inputs, outputs, 3, T0);
  inputs.fill(-1); // the ring holds a copy
  const row = ring.find('req:2', T0)!;
  assert.deepEqual(Array.from(row.features), [4, 5]);
  assert.deepEqual([row.prediction, row.classes, row.inferenceTs, row.labelled], [2, 3, T0, false]);
  assert.equal(ring.find('req', T0), null, 'a bare id names only a one-row request');
  for (const id of ['req:3', 'req:01', 'req:-1', 'req:', 'other:0'])
    assert.equal(ring.find(id, T0), null, id);
  ring.setLabelled('req:2', true);
  assert.equal(ring.find('req:2', T0)!.labelled, true);
  const tie = createRecentInferences({ maxRows: 10, maxAgeMs: 1000 });
  tie.record('t', ref, new Float32Array(2), new Float32Array([0.5, 0.5, 0]), 1, T0);
  assert.equal(tie.find('t', T0)!.prediction, 0, 'a tie goes to the first class');
});

test('bounded by rows (oldest requests first, a big request keeps its first rows) and by age', () => {
  const ring = createRecentInferences({ maxRows: 4, maxAgeMs: 1000 });
  ring.record('a', ref, request(3).inputs, request(3).outputs, 3, T0);
  ring.record('b', ref, request(2).inputs, request(2).outputs, 2, T0 + 10);
  assert.equal(ring.find('a:0', T0 + 10), null);
  assert.equal(ring.rows(), 2);
  ring.record('c', ref, request(6).inputs, request(6).outputs, 6, T0 + 20);
  assert.equal(ring.rows(), 4);
  assert.ok(ring.find('c:3', T0 + 20));
  assert.equal(ring.find('c:4', T0 + 20), null);
  assert.ok(ring.find('c:0', T0 + 1020), 'exactly maxAgeMs old is kept');
  assert.equal(ring.find('c:0', T0 + 1021), null);
  assert.equal(ring.rows(), 0);
  const off = createRecentInferences({ maxRows: 0, maxAgeMs: 1000 });
  off.record('x', ref, request(1).inputs, request(1).outputs, 1, T0);
  assert.equal(off.find('x', T0), null);
});

test('the circular buffer wraps: rows stay right across the end, evicted ones are gone', () => {
  const ring = createRecentInferences({ maxRows: 5, maxAgeMs: 1000 });
  for (let k = 0; k < 7; k++) {
    const inputs = Float32Array.from({ length: 6 }, (_, i) => k * 100 + i); // 3 rows of 2
    ring.record(`r${k}`, ref, inputs, new Float32Array(9).fill(0.1), 3, T0);
    for (let r = 0; r < 3; r++)
      assert.deepEqual(Array.from(ring.find(`r${k}:${r}`, T0)!.features), [
        k * 100 + 2 * r,
        k * 100 + 2 * r + 1,
      ]);
    if (k > 0) assert.equal(ring.find(`r${k - 1}:0`, T0), null);
  }
  // A model of another row width starts afresh.
  ring.record('w', ref, new Float32Array(4), new Float32Array(3), 1, T0);
  assert.equal(ring.find('r6:0', T0), null);
  assert.equal(ring.find('w', T0)!.features.length, 4);
});
