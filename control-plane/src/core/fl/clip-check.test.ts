import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { globalL2Norm, int8RoundingBound, withinClipBound } from './clip-check.ts';

describe('withinClipBound', () => {
  it('allows the 1e-3 relative float slack and nothing more without rounding', () => {
    assert.equal(withinClipBound(1, 1, 0), true);
    assert.equal(withinClipBound(1.0009, 1, 0), true);
    assert.equal(withinClipBound(1.0011, 1, 0), false);
  });

  it('allows exactly the int8 rounding bound on top', () => {
    const bound = int8RoundingBound([{ count: 100, scale: 0.02 }]); // sqrt(100 * 0.01^2) = 0.1
    assert.ok(Math.abs(bound - 0.1) < 1e-12);
    assert.equal(withinClipBound(1.1, 1, bound), true);
    assert.equal(withinClipBound(1.102, 1, bound), false);
  });

  it('refuses non-finite norms and nonsense bounds', () => {
    assert.equal(withinClipBound(NaN, 1, 0), false);
    assert.equal(withinClipBound(Infinity, 1, 0), false);
    assert.equal(withinClipBound(0.5, 1, -1), false);
    assert.equal(withinClipBound(0.5, -1, 0), false);
  });

  it('covers a real int8 round trip of a clipped delta', () => {
    const values = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i * 12.9898));
    const norm = globalL2Norm([{ values }]);
    const clipNorm = 2;
    const clipped = values.map((v) => (v * clipNorm) / norm);
    const maxAbs = clipped.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const scale = maxAbs / 127;
    const decoded = clipped.map((v) => Math.round(v / scale) * scale);
    const bound = int8RoundingBound([{ count: values.length, scale }]);
    assert.equal(withinClipBound(globalL2Norm([{ values: decoded }]), clipNorm, bound), true);
    // Scaled x100 after the "clip", it is refused.
    assert.equal(
      withinClipBound(globalL2Norm([{ values: decoded.map((v) => v * 100) }]), clipNorm, bound),
      false,
    );
  });
});
