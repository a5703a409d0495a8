import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encodeTensorSet, globalL2Norm, type NamedTensor } from '@fleet/protocol';
import { decodeUpdateContent, scaleTensors } from './update-content.ts';

const ARCH = {
  inputSize: 3,
  layers: [{ units: 2, activation: 'linear' as const }],
  softmaxOutput: true,
};

function delta(values: number[], bias: number[] = [0.5, -0.5]): NamedTensor[] {
  return [
    { name: 'dense_0/kernel', dims: [3, 2], values: Float32Array.from(values) },
    { name: 'dense_0/bias', dims: [2], values: Float32Array.from(bias) },
  ];
}

describe('decodeUpdateContent', () => {
  it('returns the tensors, their norm and scale 1 under the clip bound (float32: no rounding bound)', () => {
    const sent = delta([1, 2, 3, 4, 5, 6]);
    const content = decodeUpdateContent(encodeTensorSet(sent, { encoding: 'float32' }), ARCH, 100);
    assert.ok(content.ok);
    assert.equal(content.update.norm, globalL2Norm(sent));
    assert.equal(content.update.quantizationErrorBound, 0);
    assert.equal(content.update.scale, 1);
  });

  it('gives an int8 update its rounding bound, and an update over clipNorm the factor down to it', () => {
    const sent = delta([10, 0, 0, 0, 0, 0], [0, 0]);
    const content = decodeUpdateContent(encodeTensorSet(sent, { encoding: 'int8' }), ARCH, 2);
    assert.ok(content.ok);
    assert.ok(content.update.quantizationErrorBound > 0);
    assert.ok(Math.abs(content.update.scale - 2 / content.update.norm) < 1e-12);
    const scaled = scaleTensors(content.update.tensors, content.update.scale);
    assert.ok(Math.abs(globalL2Norm(scaled) - 2) < 1e-5);
  });

  it('refuses other tensors than the architecture, and bytes that are no tensor set, as malformed', () => {
    const wrongDims: NamedTensor[] = [
      { name: 'dense_0/kernel', dims: [2, 3], values: new Float32Array(6) },
      { name: 'dense_0/bias', dims: [2], values: new Float32Array(2) },
    ];
    const a = decodeUpdateContent(encodeTensorSet(wrongDims, { encoding: 'float32' }), ARCH, 5);
    assert.equal(a.ok ? 'ok' : a.reason, 'malformed');
    const b = decodeUpdateContent(new TextEncoder().encode('not a tensor set'), ARCH, 5);
    assert.equal(b.ok ? 'ok' : b.reason, 'malformed');
  });

  it('answers corrupted bytes with malformed or non-finite, never an exception (NaN itself: fl-intake.test.ts)', () => {
    const bytes = encodeTensorSet(delta([1, 2, 3, 4, 5, 6]), { encoding: 'float32' });
    for (let i = 0; i < bytes.length; i += 7) {
      const corrupt = bytes.slice();
      corrupt[i] = corrupt[i]! ^ 0xff;
      const result = decodeUpdateContent(corrupt, ARCH, 5);
      if (!result.ok) assert.ok(['malformed', 'non-finite'].includes(result.reason));
    }
  });
});
