/**
 * The data and model of the drift bench's detection runs (Part B):
 *
 * - the real MNIST digits of the `mnist` package, split as the bundle
 *   factory and the simulator split them (`mnistSplit` of @fleet/bundles:
 *   8,000 training digits, 2,000 held out);
 * - the simulator's reference model v1 (simulator/src/fleet/fleet-bundles.ts):
 *   a nearest-class-mean linear layer, logit_c = x . mu_c - |mu_c|^2 / 2, then
 *   softmax, computed here in float64 from the training digits. The bundle
 *   ships the same layer quantized to int8 and run by ONNX Runtime; this
 *   skips the quantization and the runtime (outputs differ by the int8
 *   rounding only);
 * - the cohort's input shift: a digit rotated about its centre (bilinear,
 *   0 outside the image) plus Gaussian pixel noise, clamped to [0, 1], the
 *   method of simulator/src/fleet/digit-shift.ts (the demo's shift).
 */
import { mnistSplit, type EvalData } from '@fleet/bundles';

export const DIGIT_SIDE = 28;
export const PIXELS = DIGIT_SIDE * DIGIT_SIDE;
const CLASSES = 10;

export interface DigitSets {
  train: EvalData;
  test: EvalData;
}

/** The fixed 8,000 / 2,000 split of the package's digits. */
export async function loadDigits(): Promise<DigitSets> {
  return mnistSplit();
}

/** The first `count` digits of `data` (views, not copies). */
export function firstDigits(data: EvalData, count: number): EvalData {
  if (count >= data.sampleCount) return data;
  return {
    ...data,
    sampleCount: count,
    features: data.features.subarray(0, count * PIXELS),
    labels: data.labels ? data.labels.subarray(0, count) : null,
  };
}

/** The i-th digit of `data`, a view of its 784 pixels. */
export function digitOf(data: EvalData, i: number): Float32Array {
  return data.features.subarray(i * PIXELS, (i + 1) * PIXELS);
}

/** Class probabilities of one digit. */
export type Classifier = (input: Float32Array) => Float32Array;

/** The class-mean model of the training digits (see the header). */
export function classMeanModel(train: EvalData): Classifier {
  const means = new Float64Array(CLASSES * PIXELS);
  const counts = new Float64Array(CLASSES);
  for (let i = 0; i < train.sampleCount; i++) {
    const label = train.labels![i]!;
    counts[label]! += 1;
    for (let p = 0; p < PIXELS; p++) means[label * PIXELS + p]! += train.features[i * PIXELS + p]!;
  }
  const bias = new Float64Array(CLASSES);
  for (let c = 0; c < CLASSES; c++) {
    let norm = 0;
    for (let p = 0; p < PIXELS; p++) {
      const mean = means[c * PIXELS + p]! / Math.max(1, counts[c]!);
      means[c * PIXELS + p] = mean;
      norm += mean * mean;
    }
    bias[c] = -0.5 * norm;
  }
  const logits = new Float64Array(CLASSES);
  return (input) => {
    let top = -Infinity;
    for (let c = 0; c < CLASSES; c++) {
      let sum = bias[c]!;
      for (let p = 0; p < PIXELS; p++) sum += input[p]! * means[c * PIXELS + p]!;
      logits[c] = sum;
      top = Math.max(top, sum);
    }
    let total = 0;
    for (let c = 0; c < CLASSES; c++) total += logits[c] = Math.exp(logits[c]! - top);
    return Float32Array.from(logits, (v) => v / total);
  };
}

export interface DigitShift {
  /** Counter-clockwise as the digit is seen, in degrees. */
  rotateDegrees: number;
  /** Standard deviation of the noise added to each pixel. */
  noiseSigma: number;
}

/** One digit rotated and noised (see the header); `digit` is left as it was. */
export function shiftDigit(
  digit: Float32Array,
  shift: DigitShift,
  gaussian: () => number,
): Float32Array {
  const out = new Float32Array(PIXELS);
  const angle = (shift.rotateDegrees * Math.PI) / 180;
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  const centre = (DIGIT_SIDE - 1) / 2;
  for (let y = 0; y < DIGIT_SIDE; y++) {
    for (let x = 0; x < DIGIT_SIDE; x++) {
      // The source point that lands on (x, y): the inverse of the rotation (y points down).
      const dx = x - centre;
      const dy = y - centre;
      const value = bilinear(digit, cos * dx - sin * dy + centre, sin * dx + cos * dy + centre);
      const noisy = shift.noiseSigma > 0 ? value + shift.noiseSigma * gaussian() : value;
      out[y * DIGIT_SIDE + x] = Math.min(1, Math.max(0, noisy));
    }
  }
  return out;
}

function pixel(digit: Float32Array, x: number, y: number): number {
  if (x < 0 || y < 0 || x >= DIGIT_SIDE || y >= DIGIT_SIDE) return 0;
  return digit[y * DIGIT_SIDE + x]!;
}

function bilinear(digit: Float32Array, x: number, y: number): number {
  const x0 = Math.floor(x);
  const y0 = Math.floor(y);
  const fx = x - x0;
  const fy = y - y0;
  const top = pixel(digit, x0, y0) * (1 - fx) + pixel(digit, x0 + 1, y0) * fx;
  const bottom = pixel(digit, x0, y0 + 1) * (1 - fx) + pixel(digit, x0 + 1, y0 + 1) * fx;
  return top * (1 - fy) + bottom * fy;
}
