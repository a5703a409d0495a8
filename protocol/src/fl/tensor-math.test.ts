/**
 * Tensor-set arithmetic: the global norm, clipping (bound met, direction
 * kept, no-op under the bound), finiteness, difference and sum with matching
 * names and dims, and the int8 rounding bound the control plane's clip
 * re-check adds.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { assertRefused as refused } from '../__fixtures__/refusals.ts';
import { decodeTensorSet, encodeTensorSet, type NamedTensor } from './tensor-set.ts';
import {
  addTensors,
  allFinite,
  clipToL2,
  globalL2Norm,
  quantizationErrorBound,
  subtractTensors,
} from './tensor-math.ts';

const t = (name: string, values: number[], dims = [values.length]): NamedTensor => ({
  name,
  dims,
  values: Float32Array.from(values),
});

const tensorsArb = fc.array(
  fc.array(fc.float({ noNaN: true, noDefaultInfinity: true, min: -1e4, max: 1e4 }), {
    minLength: 1,
    maxLength: 40,
  }),
  { minLength: 1, maxLength: 4 },
);
const asTensors = (arrays: number[][]) => arrays.map((values, i) => t(`t${i}`, values));

describe('tensor math', () => {
  it('takes the L2 norm over all tensors together', () => {
    assert.equal(globalL2Norm([t('a', [3]), t('b', [0, -4])]), 5);
    assert.equal(globalL2Norm([t('a', [0, 0])]), 0);
  });

  it('clips to the bound: norm after <= bound, direction kept, factor and norm reported', () => {
    const result = clipToL2([t('a', [3]), t('b', [0, -4])], 1);
    assert.equal(result.clipped, true);
    assert.equal(result.normBeforeClip, 5);
    assert.ok(Math.abs(result.factor - 0.2) < 1e-6);
    assert.ok(globalL2Norm(result.tensors) <= 1);
    assert.ok(Math.abs(result.tensors[0]!.values[0]! - 0.6) < 1e-6);
    assert.ok(Math.abs(result.tensors[1]!.values[1]! + 0.8) < 1e-6);
  });

  it('clips any finite update to at most the bound and keeps its direction (property)', () => {
    fc.assert(
      fc.property(tensorsArb, fc.double({ min: 1e-3, max: 1e3, noNaN: true }), (arrays, bound) => {
        const tensors = asTensors(arrays);
        const { tensors: out, normBeforeClip, clipped, factor } = clipToL2(tensors, bound);
        const after = globalL2Norm(out);
        assert.ok(after <= bound, `${after} > ${bound}`);
        assert.equal(clipped, normBeforeClip > bound);
        if (!clipped) {
          assert.deepEqual(out, tensors);
          assert.equal(factor, 1);
          return;
        }
        assert.ok(after >= bound * (1 - 1e-5), `${after} well under ${bound}`);
        // same direction: cosine 1 (up to float32 rounding)
        let dot = 0;
        out.forEach((o, k) => o.values.forEach((v, i) => (dot += v * tensors[k]!.values[i]!)));
        assert.ok(Math.abs(dot / (after * normBeforeClip) - 1) < 1e-5);
      }),
      { seed: 11, numRuns: 300 },
    );
  });

  it('leaves an update under the bound unchanged', () => {
    const tensors = [t('a', [0.3, -0.4])];
    const result = clipToL2(tensors, 1);
    assert.equal(result.clipped, false);
    assert.equal(result.tensors[0], tensors[0]);
  });

  it('refuses to clip NaN or Inf, or to a bound that is not finite and positive', () => {
    refused(() => clipToL2([t('a', [1, NaN])], 1), 'NON_FINITE');
    refused(() => clipToL2([t('a', [Infinity])], 1), 'NON_FINITE');
    for (const bound of [0, -1, NaN, Infinity])
      refused(() => clipToL2([t('a', [1])], bound), 'MALFORMED');
    assert.equal(allFinite([t('a', [1, 2]), t('b', [-3])]), true);
    assert.equal(allFinite([t('a', [1, 2]), t('b', [-Infinity])]), false);
    assert.equal(allFinite([t('a', [NaN])]), false);
  });

  it('subtracts and adds by name, and refuses sets whose names or dims differ', () => {
    const a = [t('k', [1, 2, 3, 4], [2, 2]), t('b', [5])];
    const b = [t('b', [1]), t('k', [1, 1, 1, 1], [2, 2])]; // other order: matched by name
    const diff = subtractTensors(a, b);
    assert.deepEqual(diff, [t('k', [0, 1, 2, 3], [2, 2]), t('b', [4])]);
    assert.deepEqual(addTensors(diff, b), a);
    refused(
      () => subtractTensors(a, [t('k', [1, 1, 1, 1], [4]), t('b', [1])]),
      'MALFORMED',
      /dims \[2, 2\] and \[4\]/,
    );
    refused(
      () => subtractTensors(a, [t('k', [1, 1, 1, 1], [2, 2])]),
      'MALFORMED',
      /2 and 1 tensors/,
    );
    refused(
      () => addTensors(a, [t('x', [1, 1, 1, 1], [2, 2]), t('b', [1])]),
      'MALFORMED',
      /k is missing/,
    );
    refused(() => addTensors(a, [t('b', [1]), t('b', [1])]), 'MALFORMED', /twice/);
  });

  it('bounds int8 rounding: sqrt(sum n_g (s_g / 2)^2), zero groups and float32 exact', () => {
    const tensors = [t('k', [1.27, -0.5, 0, 0, 2.54, 0.1], [3, 2]), t('z', [0, 0, 0])];
    const perTensor = decodeTensorSet(encodeTensorSet(tensors, { encoding: 'int8' }));
    const s = Math.fround(2.54 / 127);
    assert.ok(Math.abs(quantizationErrorBound(perTensor) - Math.sqrt(6 * (s / 2) ** 2)) < 1e-12);
    const perChannel = decodeTensorSet(
      encodeTensorSet(tensors, { encoding: 'int8', scales: 'channel' }),
    );
    const [s0, s1] = [Math.fround(2.54 / 127), Math.fround(0.5 / 127)];
    assert.ok(
      Math.abs(
        quantizationErrorBound(perChannel) - Math.sqrt(3 * (s0 / 2) ** 2 + 3 * (s1 / 2) ** 2),
      ) < 1e-12,
    );
    assert.equal(
      quantizationErrorBound(decodeTensorSet(encodeTensorSet(tensors, { encoding: 'float32' }))),
      0,
    );
  });

  it('the bound covers the distance between an update and its int8 decoding (property)', () => {
    fc.assert(
      fc.property(tensorsArb, fc.boolean(), (arrays, channel) => {
        const tensors = arrays.map((values, i) =>
          t(`t${i}`, values, values.length % 2 ? [values.length] : [2, values.length / 2]),
        );
        const decoded = decodeTensorSet(
          encodeTensorSet(tensors, { encoding: 'int8', scales: channel ? 'channel' : 'tensor' }),
        );
        const distance = globalL2Norm(subtractTensors(decoded.tensors, tensors));
        const bound = quantizationErrorBound(decoded);
        assert.ok(distance <= bound * (1 + 1e-5) + 1e-30, `${distance} > ${bound}`);
        assert.ok(
          Math.abs(globalL2Norm(decoded.tensors) - globalL2Norm(tensors)) <=
            bound * (1 + 1e-5) + 1e-30,
        );
      }),
      { seed: 5, numRuns: 300 },
    );
  });
});
