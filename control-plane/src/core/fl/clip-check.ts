/**
 * The control plane's re-check of a device's clip (ARCHITECTURE "Federated
 * learning", THREATS 37): the agent scales its weight delta so the global L2
 * norm over all tensors is at most `clipNorm`, then quantizes it. After
 * decoding, the norm can exceed `clipNorm` only by the quantization error, so
 * the check allows exactly that and nothing more:
 *
 *   norm <= clipNorm * (1 + 1e-3) + sqrt(sum over scale groups of count * (scale / 2)^2)
 *
 * Int8 rounding moves each value by at most scale / 2, so the error vector's
 * norm is at most that square root (triangle inequality: ||q|| <= ||d|| + ||q - d||).
 * The 1e-3 relative slack covers the float32 arithmetic of scaling and summing
 * on the device. Float32 updates have a rounding bound of 0.
 */

/** Relative slack for float32 arithmetic in the agent's scaling and norm. */
export const CLIP_RELATIVE_TOLERANCE = 1e-3;

/** One group of values sharing an int8 scale: a whole tensor, or one last-axis channel. */
export interface ScaleGroup {
  count: number;
  scale: number;
}

/**
 * The exact worst-case L2 norm of the int8 rounding error: each of `count`
 * values in a group is off by at most `scale / 2`.
 *
 * @example
 *   int8RoundingBound([{ count: 100, scale: 0.02 }]) // sqrt(100 * 0.01^2) = 0.1
 */
export function int8RoundingBound(groups: readonly ScaleGroup[]): number {
  let sum = 0;
  for (const g of groups) sum += g.count * (g.scale / 2) ** 2;
  return Math.sqrt(sum);
}

/** The global L2 norm over all values of all tensors (accumulated in float64). */
export function globalL2Norm(tensors: readonly { values: Float32Array }[]): number {
  let sum = 0;
  for (const t of tensors) {
    const v = t.values;
    for (let i = 0; i < v.length; i++) sum += v[i]! * v[i]!;
  }
  return Math.sqrt(sum);
}

/**
 * True when a decoded update's norm is within the round's clip bound, allowing
 * the relative float slack and the quantization error bound (0 for float32).
 * False for a non-finite norm or bound, and for a negative or non-finite clipNorm.
 *
 * @example
 *   withinClipBound(1.0005, 1, 0)  // true: inside the 1e-3 slack
 *   withinClipBound(1.05, 1, 0.1)  // true: inside the rounding bound
 *   withinClipBound(1.2, 1, 0.1)   // false: over-clip
 */
export function withinClipBound(
  norm: number,
  clipNorm: number,
  quantizationErrorBound: number,
): boolean {
  if (!Number.isFinite(norm) || !Number.isFinite(clipNorm) || clipNorm < 0) return false;
  if (!Number.isFinite(quantizationErrorBound) || quantizationErrorBound < 0) return false;
  return norm <= clipNorm * (1 + CLIP_RELATIVE_TOLERANCE) + quantizationErrorBound;
}
