/**
 * Arithmetic over sets of named tensors for federated learning: the global
 * L2 norm of an update (all tensors together), clipping to an L2 bound, the
 * finiteness check, element-wise difference and sum of two sets with matching
 * names and dims, and the exact bound of int8 rounding error that the control
 * plane adds to the clip bound when it re-checks a decoded update.
 *
 * Sums run in float64; results are float32 like the tensors.
 */
import { FleetError } from '../errors.ts';
import type { DecodedTensorSet, NamedTensor } from './tensor-set.ts';

/** sqrt(sum of squares of every element of every tensor), in float64. */
export function globalL2Norm(tensors: readonly NamedTensor[]): number {
  let sum = 0;
  for (const t of tensors) for (const v of t.values) sum += v * v;
  return Math.sqrt(sum);
}

/** True when no element of any tensor is NaN or infinite. */
export function allFinite(tensors: readonly NamedTensor[]): boolean {
  for (const t of tensors) for (const v of t.values) if (!Number.isFinite(v)) return false;
  return true;
}

export interface ClipResult {
  /** The clipped tensors; the input tensors themselves when no clip was needed. */
  tensors: NamedTensor[];
  /** The global L2 norm of the input. */
  normBeforeClip: number;
  clipped: boolean;
  /** What every element was multiplied by (1 when not clipped). */
  factor: number;
}

/**
 * Float32 rounding of each scaled element can raise the norm by at most 2^-24
 * relative; scaling by this much less keeps the clipped norm at or under the bound.
 */
const CLIP_MARGIN = 1 - 2 ** -22;

/**
 * Scales all tensors by one factor so their global L2 norm is at most `bound`
 * (direction preserved); tensors already within it are returned as they are.
 * Throws NON_FINITE for a tensor with NaN or infinite elements, MALFORMED
 * for a bound that is not finite and positive.
 *
 * @example
 *   const { tensors, normBeforeClip, clipped } = clipToL2(delta, config.clipNorm);
 */
export function clipToL2(tensors: readonly NamedTensor[], bound: number): ClipResult {
  if (!(Number.isFinite(bound) && bound > 0)) {
    throw new FleetError('MALFORMED', `a clip bound is finite and positive, not ${bound}`);
  }
  if (!allFinite(tensors))
    throw new FleetError('NON_FINITE', 'cannot clip tensors with NaN or Inf');
  const normBeforeClip = globalL2Norm(tensors);
  if (normBeforeClip <= bound) {
    return { tensors: [...tensors], normBeforeClip, clipped: false, factor: 1 };
  }
  const factor = (bound / normBeforeClip) * CLIP_MARGIN;
  return {
    tensors: tensors.map((t) => ({
      name: t.name,
      dims: [...t.dims],
      values: t.values.map((v) => v * factor),
    })),
    normBeforeClip,
    clipped: true,
    factor,
  };
}

/** a - b, element-wise, for sets with the same tensor names and dims (in `a`'s order). */
export function subtractTensors(
  a: readonly NamedTensor[],
  b: readonly NamedTensor[],
): NamedTensor[] {
  return combine(a, b, (x, y) => x - y);
}

/** a + b, element-wise, for sets with the same tensor names and dims (in `a`'s order). */
export function addTensors(a: readonly NamedTensor[], b: readonly NamedTensor[]): NamedTensor[] {
  return combine(a, b, (x, y) => x + y);
}

function combine(
  a: readonly NamedTensor[],
  b: readonly NamedTensor[],
  op: (x: number, y: number) => number,
): NamedTensor[] {
  const byName = new Map(b.map((t) => [t.name, t]));
  if (byName.size !== b.length || new Set(a.map((t) => t.name)).size !== a.length) {
    throw new FleetError('MALFORMED', 'a tensor set lists a tensor name twice');
  }
  if (a.length !== b.length) {
    throw new FleetError('MALFORMED', `tensor sets of ${a.length} and ${b.length} tensors`);
  }
  return a.map((x) => {
    const y = byName.get(x.name);
    if (!y) throw new FleetError('MALFORMED', `tensor ${x.name} is missing from the other set`);
    if (x.dims.length !== y.dims.length || x.dims.some((d, i) => d !== y.dims[i])) {
      throw new FleetError(
        'MALFORMED',
        `tensor ${x.name} has dims [${x.dims.join(', ')}] and [${y.dims.join(', ')}]`,
      );
    }
    if (x.values.length !== y.values.length) {
      throw new FleetError(
        'MALFORMED',
        `tensor ${x.name} has ${x.values.length} and ${y.values.length} values`,
      );
    }
    const values = new Float32Array(x.values.length);
    for (let i = 0; i < values.length; i++) values[i] = op(x.values[i]!, y.values[i]!);
    return { name: x.name, dims: [...x.dims], values };
  });
}

/**
 * The most int8 rounding can have moved a decoded set's global L2 norm:
 * sqrt(sum over scale groups g of n_g x (scale_g / 2)^2), where a group is a
 * whole tensor (per-tensor scale) or one last-axis channel. All-zero groups
 * and float32 tensors contribute 0 (they are exact). The control plane accepts
 * an update when norm <= clipNorm x (1 + 1e-3) + this bound.
 */
export function quantizationErrorBound(decoded: DecodedTensorSet): number {
  let sum = 0;
  decoded.tensors.forEach((tensor, t) => {
    const quantization = decoded.quantization[t];
    if (!quantization || quantization.dtype !== 'int8') return;
    const groups = quantization.scales.length;
    const counts = new Float64Array(groups);
    const nonzero = new Uint8Array(groups);
    for (let i = 0; i < tensor.values.length; i++) {
      const g = i % groups;
      counts[g]!++;
      if (tensor.values[i] !== 0) nonzero[g] = 1;
    }
    for (let g = 0; g < groups; g++) {
      if (nonzero[g]) sum += counts[g]! * (quantization.scales[g]! / 2) ** 2;
    }
  });
  return Math.sqrt(sum);
}
