/**
 * Symmetric int8 quantization of float32 tensors, one scale per tensor or per
 * last-axis channel, and the canonical form a tensor set accepts.
 *
 *   scale = fround(maxAbs / 127)            per scale group
 *   q     = clamp(round(x / scale), -127, 127)
 *   x'    = fround(q * scale)               what decoding gives back
 *
 * Error bound: |x - x'| <= scale / 2 for every element, plus the float32
 * rounding of q * scale (at most 2^-24 relative, under 8e-6 x scale). The
 * largest |x| of a group quantizes to exactly +-127, so every group that is not
 * all zero has max |q| = 127: decoding refuses any other, which keeps a sender
 * from pairing tiny q values with a huge scale to inflate the rounding bound
 * (`quantizationErrorBound`).
 *
 * An all-zero group has scale 1 (not 0: ONNX DequantizeLinear and the bundle
 * factory's quantizer use a positive scale there too) and all q = 0; it
 * contributes no rounding error. A group whose scale would fall below the
 * smallest normal float32 (maxAbs < 127 x 2^-126, about 1.5e-36) is flushed to
 * that all-zero form.
 */
import { FleetError } from '../errors.ts';

/** Largest |q| of the symmetric int8 range; -128 is never used. */
export const INT8_QMAX = 127;

/** Smallest normal float32, 2^-126: the smallest scale a quantizer emits. */
const MIN_NORMAL_FLOAT32 = 2 ** -126;

/** Scale of an all-zero group. */
export const ZERO_GROUP_SCALE = 1;

/** Scale groups of a tensor: 1 for a per-tensor scale, or dims[last] (its channels). */
export function channelCount(dims: readonly number[], scales: 'tensor' | 'channel'): number {
  return scales === 'channel' ? dims[dims.length - 1]! : 1;
}

/**
 * Quantizes finite `values` (row-major, last axis innermost) into `groups`
 * scale groups: element i belongs to group i % groups.
 */
export function quantizeInt8(
  values: Float32Array,
  groups: number,
): { values: Int8Array; scales: Float32Array } {
  const maxAbs = new Float64Array(groups);
  for (let i = 0; i < values.length; i++) {
    const g = i % groups;
    const a = Math.abs(values[i]!);
    if (a > maxAbs[g]!) maxAbs[g] = a;
  }
  const scales = new Float32Array(groups);
  const flushed = new Uint8Array(groups);
  for (let g = 0; g < groups; g++) {
    const scale = Math.fround(maxAbs[g]! / INT8_QMAX);
    flushed[g] = scale >= MIN_NORMAL_FLOAT32 ? 0 : 1;
    scales[g] = flushed[g] ? ZERO_GROUP_SCALE : scale;
  }
  const q = new Int8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const g = i % groups;
    if (flushed[g]) continue; // an all-zero group: q stays 0
    const v = Math.round(values[i]! / scales[g]!);
    q[i] = v > INT8_QMAX ? INT8_QMAX : v < -INT8_QMAX ? -INT8_QMAX : v;
  }
  return { values: q, scales };
}

/**
 * Checks int8 `q` values against their `scales` (`groups` = scales.length) in
 * the canonical form above; throws NON_FINITE for a NaN or infinite scale,
 * MALFORMED naming the tensor and group for anything else.
 */
export function checkInt8Groups(name: string, q: Int8Array, scales: Float32Array): void {
  const groups = scales.length;
  const maxQ = new Uint8Array(groups);
  for (let i = 0; i < q.length; i++) {
    const v = q[i]!;
    if (v === -128) {
      throw new FleetError('MALFORMED', `tensor ${name} holds -128; int8 values are -127..127`);
    }
    const a = v < 0 ? -v : v;
    const g = i % groups;
    if (a > maxQ[g]!) maxQ[g] = a;
  }
  for (let g = 0; g < groups; g++) {
    const scale = scales[g]!;
    const where = groups === 1 ? `tensor ${name}` : `tensor ${name} channel ${g}`;
    if (!Number.isFinite(scale)) {
      throw new FleetError('NON_FINITE', `${where} has scale ${scale}`);
    }
    if (maxQ[g] === 0) {
      if (scale !== ZERO_GROUP_SCALE) {
        throw new FleetError('MALFORMED', `${where} is all zero, so its scale is 1, not ${scale}`);
      }
    } else if (!(scale > 0) || maxQ[g] !== INT8_QMAX) {
      throw new FleetError(
        'MALFORMED',
        `${where} has scale ${scale} and max |q| ${maxQ[g]}: a nonzero group has a positive scale and max |q| 127`,
      );
    }
  }
}

/** x' = fround(q x scale), element i in group i % scales.length. */
export function dequantizeInt8(q: Int8Array, scales: Float32Array): Float32Array {
  const groups = scales.length;
  const out = new Float32Array(q.length);
  for (let i = 0; i < q.length; i++) out[i] = q[i]! * scales[i % groups]!;
  return out;
}
