import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { it } from 'node:test';
import { encodeEvalData } from '../../core/data/eval-data.ts';
import { mnistSplit } from './mnist-split.ts';

it('the MNIST split is 8,000 / 2,000 real digits, identical on every call, every class in both', async () => {
  const a = await mnistSplit();
  const b = await mnistSplit();
  assert.equal(a.train.sampleCount, 8000);
  assert.equal(a.test.sampleCount, 2000);
  const digest = (d: typeof a.train) =>
    createHash('sha256').update(encodeEvalData(d)).digest('hex');
  assert.equal(digest(a.train), digest(b.train));
  assert.equal(digest(a.test), digest(b.test));
  for (const set of [a.train, a.test]) {
    const counts = new Array<number>(10).fill(0);
    for (const l of set.labels!) counts[l]!++;
    const min = set.sampleCount / 10 / 1.5;
    assert.ok(
      counts.every((c) => c > min),
      `class counts ${counts.join(',')}`,
    );
    // real digits: ink in [0, 1], mostly background
    const ink = set.features.reduce((s, v) => s + v, 0) / set.features.length;
    assert.ok(ink > 0.05 && ink < 0.3, `mean pixel ${ink}`);
  }
});
