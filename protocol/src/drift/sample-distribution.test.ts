import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertRefused as refused } from '../__fixtures__/refusals.ts';
import { createSampleDistribution as view } from './sample-distribution.ts';

describe('sample distribution', () => {
  it('has an inclusive cdf and the smallest-item-at-rank quantile', () => {
    const d = view([3, 1, 2, 2]);
    assert.deepEqual([d.n, d.min, d.max], [4, 1, 3]);
    assert.deepEqual(d.cdf([0, 1, 2, 2.5, 3]), [0, 0.25, 0.75, 0.75, 1, 1]);
    assert.deepEqual(
      [0, 0.25, 0.26, 0.5, 0.75, 0.76, 1].map((r) => d.quantile(r)),
      [1, 1, 2, 2, 2, 3, 3],
    );
    assert.equal(view([...Array(10).keys()]).quantile(0.3), 2); // 0.3·10 in floats is above 3
  });

  it('refuses non-finite samples, bad split points and ranks, and queries when empty', () => {
    refused(() => view([1, NaN]), 'MALFORMED', /sample 1 is NaN/);
    refused(() => view([Infinity]), 'MALFORMED', /sample 0 is Infinity/);
    const d = view([1, 2]);
    refused(() => d.cdf([2, 1]), 'MALFORMED', /split point 1 \(1\) does not increase/);
    refused(() => d.cdf([0, 0]), 'MALFORMED', /does not increase/);
    refused(() => d.cdf([NaN]), 'MALFORMED', /split point 0 is NaN/);
    refused(() => d.quantile(1.5), 'MALFORMED', /rank 1.5 is outside/);
    const empty = view([]);
    assert.equal(empty.n, 0);
    refused(() => empty.quantile(0.5), 'MALFORMED', /empty/);
  });
});
