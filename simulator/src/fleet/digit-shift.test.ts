import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DIGIT_SIDE, shiftDigits } from './digit-shift.ts';

/** A digit with one lit pixel at (x, y). */
function dot(x: number, y: number): Float32Array {
  const image = new Float32Array(DIGIT_SIDE * DIGIT_SIDE);
  image[y * DIGIT_SIDE + x] = 1;
  return image;
}
const litAt = (image: Float32Array) => {
  let best = 0;
  for (let i = 1; i < image.length; i++) if (image[i]! > image[best]!) best = i;
  return { x: best % DIGIT_SIDE, y: Math.floor(best / DIGIT_SIDE) };
};
const seeded = (seed: number) => () => (seed = (seed * 1_103_515_245 + 12_345) >>> 0) / 2 ** 32;

describe('shiftDigits', () => {
  it('leaves a digit as it was with no rotation and no noise', () => {
    const image = Float32Array.from({ length: 784 * 2 }, (_, i) => (i % 7) / 7);
    assert.deepEqual(shiftDigits(image, { rotateDegrees: 0, noiseSigma: 0 }, Math.random), image);
  });

  it('rotates about the centre: a quarter turn moves a pixel right of centre to above it', () => {
    // Centre is (13.5, 13.5); (20, 13) is right of it. Counter-clockwise, with y down, is upwards.
    const turned = shiftDigits(dot(20, 13), { rotateDegrees: 90, noiseSigma: 0 }, Math.random);
    assert.deepEqual(litAt(turned), { x: 13, y: 7 });
    const back = shiftDigits(turned, { rotateDegrees: -90, noiseSigma: 0 }, Math.random);
    assert.deepEqual(litAt(back), { x: 20, y: 13 });
  });

  it('adds noise of the given spread, clamped to [0, 1], and leaves the input untouched', () => {
    const grey = new Float32Array(784).fill(0.5);
    const noisy = shiftDigits(grey, { rotateDegrees: 0, noiseSigma: 0.1 }, seeded(7));
    const mean = noisy.reduce((a, b) => a + b, 0) / noisy.length;
    const sd = Math.sqrt(noisy.reduce((a, b) => a + (b - mean) ** 2, 0) / noisy.length);
    assert.ok(Math.abs(mean - 0.5) < 0.01, `mean ${mean}`);
    assert.ok(Math.abs(sd - 0.1) < 0.01, `sd ${sd}`);
    assert.ok(grey.every((v) => v === 0.5));
    const loud = shiftDigits(grey, { rotateDegrees: 0, noiseSigma: 5 }, seeded(8));
    assert.ok(loud.every((v) => v >= 0 && v <= 1));
  });

  it('refuses input that is not whole digits', () => {
    assert.throws(() =>
      shiftDigits(new Float32Array(100), { rotateDegrees: 0, noiseSigma: 0 }, Math.random),
    );
  });
});
