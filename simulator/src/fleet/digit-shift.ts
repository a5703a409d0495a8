/**
 * A scripted input shift for a simulated cohort: MNIST digits (28 x 28,
 * pixels in [0, 1], row-major) rotated about their centre and given Gaussian
 * pixel noise, as a camera knocked askew in a dusty place would see them.
 * Used by the drift tests and the demo to make one cohort's inputs move away
 * from the training data while the others stay as they were.
 *
 * Rotation samples the source image bilinearly (pixels from outside it are
 * 0, the MNIST background); noise is added after, then clamped to [0, 1].
 */
export interface DigitShift {
  /** Rotation, counter-clockwise as the digit is seen (rows top to bottom), in degrees. */
  rotateDegrees: number;
  /** Standard deviation of the Gaussian noise added to each pixel. */
  noiseSigma: number;
}

export const DIGIT_SIDE = 28;
const PIXELS = DIGIT_SIDE * DIGIT_SIDE;

/** The rows of `input` (each one 784-pixel digit), shifted; `input` is left as it was. */
export function shiftDigits(
  input: Float32Array,
  shift: DigitShift,
  random: () => number,
): Float32Array {
  if (input.length % PIXELS !== 0) {
    throw new Error(`shiftDigits: ${input.length} values are not whole 28 x 28 digits`);
  }
  const out = new Float32Array(input.length);
  const angle = (shift.rotateDegrees * Math.PI) / 180;
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  const centre = (DIGIT_SIDE - 1) / 2;
  const gaussian = gaussianSource(random);
  for (let offset = 0; offset < input.length; offset += PIXELS) {
    for (let y = 0; y < DIGIT_SIDE; y++) {
      for (let x = 0; x < DIGIT_SIDE; x++) {
        // The source point that lands on (x, y). With y pointing down, turning
        // a point counter-clockwise on screen maps (dx, dy) to
        // (cos dx + sin dy, -sin dx + cos dy); this is its inverse.
        const dx = x - centre;
        const dy = y - centre;
        const sx = cos * dx - sin * dy + centre;
        const sy = sin * dx + cos * dy + centre;
        let value = bilinear(input, offset, sx, sy);
        if (shift.noiseSigma > 0) value += shift.noiseSigma * gaussian();
        out[offset + y * DIGIT_SIDE + x] = Math.min(1, Math.max(0, value));
      }
    }
  }
  return out;
}

function pixel(input: Float32Array, offset: number, x: number, y: number): number {
  if (x < 0 || y < 0 || x >= DIGIT_SIDE || y >= DIGIT_SIDE) return 0;
  return input[offset + y * DIGIT_SIDE + x]!;
}

function bilinear(input: Float32Array, offset: number, x: number, y: number): number {
  const x0 = Math.floor(x);
  const y0 = Math.floor(y);
  const fx = x - x0;
  const fy = y - y0;
  const top = pixel(input, offset, x0, y0) * (1 - fx) + pixel(input, offset, x0 + 1, y0) * fx;
  const bottom =
    pixel(input, offset, x0, y0 + 1) * (1 - fx) + pixel(input, offset, x0 + 1, y0 + 1) * fx;
  return top * (1 - fy) + bottom * fy;
}

/** Standard normal draws from a uniform source (Box-Muller, one of each pair kept for the next call). */
function gaussianSource(random: () => number): () => number {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const value = spare;
      spare = null;
      return value;
    }
    const u = Math.max(random(), Number.MIN_VALUE);
    const v = random();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}
